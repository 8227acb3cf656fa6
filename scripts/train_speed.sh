#!/usr/bin/env bash
# Training speed of `postilla train ner` on the default model's recipe data, per engine and
# precision: each configuration trains until step STEPS (default 150) of the recipe (news
# spacing 0.5, 2 threads) and its progress line there (tokens per second since the start of
# training, model set-up excluded) is printed; the run is then stopped. Run it on an otherwise
# idle machine: the figures are the README's, *Training a NER model*.
#   scripts/train_speed.sh DATA_DIR [STEPS]
# DATA_DIR: the imported gold of scripts/train_ner_postilla.sh (OUT_DIR/data).
set -euo pipefail
cd "$(dirname "$0")/.."
d=${1:?DATA_DIR (OUT_DIR/data of scripts/train_ner_postilla.sh)}
steps=${2:-150}
p=target/release/postilla
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source scripts/ner_recipe.sh
ner_recipe_args "$d" 2
for config in "fp32 rust-bert" "fp32 fused" "bf16 fused"; do
    read -r precision engine <<< "$config"
    out=$work/$precision-$engine
    log=$work/$precision-$engine.log
    $p "${recipe_args[@]}" --precision "$precision" --engine "$engine" -o "$out" > "$log" 2>&1 &
    pid=$!
    until grep -q "step $steps/" "$log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            exit 1
        fi
        sleep 2
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "$precision $engine: $(grep "step $steps/" "$log" | head -n 1)"
done
