#!/usr/bin/env bash
# Strict micro-F1 of a NER model (default: models/ner-it-de) through `postilla annotate` and
# `postilla eval`, the figures of the README and the model card.
#   scripts/ner_accuracy.sh dev  [MODEL_DIR]   development sets (model selection)
#   scripts/ner_accuracy.sh test [MODEL_DIR]   test sets: scored once, after every choice was made
#   scripts/ner_accuracy.sh dev MODEL_DIR --precision int8   further arguments go to `postilla
#                                              annotate`; the outputs then go to out/ner-accuracy/
#                                              dev+precision-int8 (one folder per flag set)
# The model's own figures are fp32: without a --precision flag the script passes --precision fp32
# (annotate's default, auto, may run int8; the pin keeps the figures fp32).
# Every set is read with annotate's default decoding: trailing function words cut and, for each
# document, its 4 neighbours in the file as context (`--context 0` reads each alone: KIND and
# CoNLL sentences sentence by sentence).
# KIND is scored under Postilla's place convention (training/harmonise_gold.py) and under its
# own, PER/ORG/LOC (KIND has no MISC); CoNLL-2003 German with all four types and PER/ORG/LOC,
# whole documents (-DOCSTART- blocks, Postilla's windows) and sentence by sentence.
set -euo pipefail
cd "$(dirname "$0")/.."
split=${1:?dev or test}
model=${2:-models/ner-it-de}
shift $(( $# < 2 ? $# : 2 ))
flags=("$@")
pin=(--precision fp32)
for f in "${flags[@]}"; do [ "$f" = --precision ] && pin=(); done
p=target/release/postilla
py=.local/venv/bin/python
data=../shared/data/ner
tag=$(printf '%s' "${flags[*]:-}" | tr -s ' -' '+-' | sed 's/^+*-*//')
out=out/ner-accuracy/$split${tag:+"+$tag"}
mkdir -p "$out"

score() { # name gold pred types...
    local name=$1 gold=$2 pred=$3 types=${4:-}
    local args=(--gold "$gold" --pred "$pred" --bootstrap 1000 --json)
    [ -n "$types" ] && args+=(--types "$types")
    $p eval "${args[@]}" > "$out/$name.eval.json"
    python3 - "$name" "$out/$name.eval.json" <<'PY'
import json, sys
name, path = sys.argv[1:]
r = json.load(open(path))
s = r["entities"]["strict"]
ci = r.get("bootstrap", {}).get("ci95", {}).get("entities.strict.micro.f1")
per = " ".join(f"{t} {v['scores']['f1']:.3f}" for t, v in sorted(s["per_type"].items()))
interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) and len(ci) == 2 else ""
print(f"{name:<34} strict micro P {s['micro']['precision']:.4f} R {s['micro']['recall']:.4f} F1 {s['micro']['f1']:.4f}{interval}   {per}")
PY
}

annotate() { # gold pred
    $p annotate "$1" --ner "$model" --no-topics "${pin[@]}" "${flags[@]}" -o "$2" 2>/dev/null
}

kind_set() { # part split
    local part=$1 s=$2
    $p import kind "$data/it/kind/${part}_$s.tsv" -o "$out/kind-$part.gold.jsonl" 2>/dev/null
    # same file name, so that the documents get the same ids
    mkdir -p "$out/postilla-convention"
    $py training/harmonise_gold.py "$data/it/kind/${part}_$s.tsv" "$out/postilla-convention/${part}_$s.tsv" 2>/dev/null
    $p import kind "$out/postilla-convention/${part}_$s.tsv" -o "$out/kind-$part.postilla.gold.jsonl" 2>/dev/null
    annotate "$out/kind-$part.gold.jsonl" "$out/kind-$part.pred.jsonl"
    score "KIND $part $s (Postilla convention)" "$out/kind-$part.postilla.gold.jsonl" "$out/kind-$part.pred.jsonl" PER,ORG,LOC
    score "KIND $part $s (KIND convention)" "$out/kind-$part.gold.jsonl" "$out/kind-$part.pred.jsonl" PER,ORG,LOC
}

conll_set() { # split
    local s=$1
    $p import conll "$data/de/conll2003/$s.tsv" -o "$out/conll-de.docs.gold.jsonl" 2>/dev/null
    $p import conll --doc-per-sentence "$data/de/conll2003/$s.tsv" -o "$out/conll-de.sents.gold.jsonl" 2>/dev/null
    annotate "$out/conll-de.docs.gold.jsonl" "$out/conll-de.docs.pred.jsonl"
    annotate "$out/conll-de.sents.gold.jsonl" "$out/conll-de.sents.pred.jsonl"
    score "CoNLL-2003 de $s, documents" "$out/conll-de.docs.gold.jsonl" "$out/conll-de.docs.pred.jsonl"
    score "CoNLL-2003 de $s, sentences" "$out/conll-de.sents.gold.jsonl" "$out/conll-de.sents.pred.jsonl"
    score "CoNLL-2003 de $s, documents, PER-ORG-LOC only" "$out/conll-de.docs.gold.jsonl" "$out/conll-de.docs.pred.jsonl" PER,ORG,LOC
}

echo "model: $model ($(sha256sum "$model/model.safetensors" | cut -c1-16)...)${flags[*]:+, annotate ${flags[*]}}"
if [ "$split" = dev ]; then
    kind_set WN dev
    conll_set dev
elif [ "$split" = test ]; then
    for part in WN FIC ADG; do kind_set "$part" test; done
    conll_set test
    annotate seeds/gold.jsonl "$out/seeds.pred.jsonl"
    score "seeds (hand annotation)" seeds/gold.jsonl "$out/seeds.pred.jsonl" PER,ORG,LOC
    score "seeds (hand annotation), with MISC" seeds/gold.jsonl "$out/seeds.pred.jsonl"
else
    echo "usage: $0 dev|test [MODEL_DIR [ANNOTATE_ARGS...]]" >&2
    exit 2
fi
