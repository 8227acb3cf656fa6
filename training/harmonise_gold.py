#!/usr/bin/env python3
"""Writes a KIND file under Postilla's place convention (docs/annotation-guidelines.md): ORG
spans whose whole surface is a place name become LOC, with the place list learned from the
training sets exactly as training/train_ner.py learns it (never from the file converted).

    python3 training/harmonise_gold.py IN.tsv OUT.tsv [--data ../shared/data]

Used by scripts/ner_accuracy.sh to score KIND dev/test "under Postilla's convention"; the
same files unconverted are scored "under KIND's own".
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_ner import ROOT, harmonise, place_gazetteer, read_conll  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    args = ap.parse_args()
    d = os.path.join(args.data, "ner")
    train = []
    for part in ("WN", "FIC", "ADG"):
        train += read_conll(f"{d}/it/kind/{part}_train.tsv", "\t", "it")
    train += read_conll(f"{d}/it/evalita2009/train.tsv", None, "it")
    train += read_conll(f"{d}/de/conll2003/train.tsv", None, "de")
    places = place_gazetteer(train)
    sentences = read_conll(args.input, "\t", "it")
    changed = harmonise(sentences, places)
    with open(args.output, "w", encoding="utf-8") as f:
        for s in sentences:
            for token, tag in zip(s["tokens"], s["tags"]):
                f.write(f"{token}\t{tag}\n")
            f.write("\n")
    print(f"{args.input}: {changed} ORG spans made LOC ({len(places)} places)", file=sys.stderr)


if __name__ == "__main__":
    main()
