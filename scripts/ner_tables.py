#!/usr/bin/env python3
"""Markdown tables of scripts/ner_accuracy.sh's results (out/ner-accuracy/SPLIT/*.eval.json):
strict micro P/R/F1 with the bootstrap 95 % interval and F1 per type, for the README and the
model card.

    python3 scripts/ner_tables.py dev|test
"""
import glob
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

ORDER = ["KIND WN", "KIND FIC", "KIND ADG", "CoNLL-2003", "seeds"]


def main():
    split = sys.argv[1]
    rows = []
    for path in glob.glob(os.path.join(ROOT, "out", "ner-accuracy", split, "*.eval.json")):
        name = os.path.basename(path)[: -len(".eval.json")]
        r = json.load(open(path))
        s = r["entities"]["strict"]
        ci = r.get("bootstrap", {}).get("ci95", {}).get("entities.strict.micro.f1")
        per = ", ".join(f"{t} {v['scores']['f1']:.3f}" for t, v in sorted(s["per_type"].items()))
        key = next((i for i, o in enumerate(ORDER) if name.startswith(o)), len(ORDER))
        rows.append((key, name, s["micro"], ci, per, s["counts"], r["documents"]))
    rows.sort(key=lambda x: (x[0], x[1]))
    print("| set | docs | P | R | **F1** | 95 % CI | F1 per type |")
    print("|---|---|---|---|---|---|---|")
    for _, name, m, ci, per, counts, docs in rows:
        interval = f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else ""
        print(f"| {name} | {docs} | {m['precision']:.4f} | {m['recall']:.4f} | **{m['f1']:.4f}** | {interval} | {per} |")


if __name__ == "__main__":
    main()
