#!/usr/bin/env bash
# The default NER model's recipe run by `postilla train ner` instead of training/train_ner.py:
# the same gold sets imported as postilla/1 (KIND under Postilla's place convention, as
# train_ner.py harmonises it), the same labels, partial label for Italian O (MISC), document
# windows over consecutive sentences, news spacing on half of the sentences (train_ner.py's
# --news-share 0.5), 2 epochs at lr 1e-4, selection on KIND WN dev and CoNLL-2003 German dev
# (sentence by sentence, as train_ner.py's `selection`); the arguments are scripts/ner_recipe.sh's.
#   scripts/train_ner_postilla.sh [OUT_DIR] [EXTRA postilla train ARGS...]
# EPOCHS=N (environment) trains N epochs instead of 2 (the 1-epoch wall-time comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.local/ner-train-postilla}
shift $(( $# < 1 ? $# : 1 ))
p=target/release/postilla
py=.local/venv/bin/python
data=../shared/data/ner
d=$out/data
mkdir -p "$d"
for part in WN FIC ADG; do
    $py training/harmonise_gold.py "$data/it/kind/${part}_train.tsv" "$d/${part}_train.tsv"
    $p import kind "$d/${part}_train.tsv" -o "$d/kind-$part-train.jsonl"
done
$py training/harmonise_gold.py "$data/it/kind/WN_dev.tsv" "$d/WN_dev.tsv"
$p import kind "$d/WN_dev.tsv" -o "$d/kind-WN-dev.jsonl"
$p import conll "$data/it/evalita2009/train.tsv" -o "$d/evalita-train.jsonl"
$p import conll "$data/de/conll2003/train.tsv" -o "$d/conll-de-train.jsonl"
$p import conll --doc-per-sentence "$data/de/conll2003/dev.tsv" -o "$d/conll-de-dev.jsonl"
source scripts/ner_recipe.sh
ner_recipe_args "$d" "${EPOCHS:-2}"
time $p "${recipe_args[@]}" -o "$out/model" "$@"
