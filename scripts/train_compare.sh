#!/usr/bin/env bash
# Wall time and dev F1 of the default NER model's recipe run by training/train_ner.py (stage 1's
# settings, `just train-ner-stage1`, for 2 epochs, fp32) and by `postilla train ner`
# (scripts/train_ner_postilla.sh, the same recipe), back to back on this machine. Each wall
# time runs from the command's start to its end, data preparation, dev evaluations and saving
# included. Both models are scored by the recipe's own evaluation (training/train_ner.py
# `evaluate`: the Python run logs it for the model it selects; training/eval_dev.py computes it
# for Postilla's). Run it on an otherwise idle machine (about 2 × 50 minutes on 2 cores):
# the figures are the README's, *Training a NER model*.
#   scripts/train_compare.sh [OUT_ROOT]     (default .local/train-compare)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-.local/train-compare}
py=.local/venv/bin/python
mkdir -p "$root/python"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
$py training/train_ner.py --out "$root/python" --epochs 2 --lr 1e-4 --precision fp32 --compact > "$root/python/log" 2>&1
python_s=$(( $(date +%s) - start ))
echo "train_ner.py: $python_s s"
start=$(date +%s)
bash scripts/train_ner_postilla.sh "$root/postilla" > "$root/postilla.log" 2>&1
postilla_s=$(( $(date +%s) - start ))
echo "postilla train: $postilla_s s"
$py training/eval_dev.py "$root/postilla/model" > "$root/postilla-dev.json"
$py - "$root/python/log" "$root/postilla-dev.json" "$python_s" "$postilla_s" <<'PY'
import json, sys
selected = [json.loads(l)["selected"] for l in open(sys.argv[1]) if l.startswith('{"selected"')][-1]
ours = json.load(open(sys.argv[2]))
python_s, postilla_s = int(sys.argv[3]), int(sys.argv[4])
rows = {"train_ner.py": {"minutes": round(python_s / 60, 1), **{k: selected[k] for k in ("kind-wn", "conll-de", "conll-de-doc", "selection")}},
        "postilla train": {"minutes": round(postilla_s / 60, 1), **{k: ours[k] for k in ("kind-wn", "conll-de", "conll-de-doc", "selection")}}}
rows["difference"] = {k: round(rows["postilla train"][k] - rows["train_ner.py"][k], 4) for k in rows["train_ner.py"]}
print(json.dumps(rows, indent=1))
PY
