#!/usr/bin/env python3
"""Scores a token-classification directory on the recipe's development sets with the recipe's
own evaluation (training/train_ner.py `evaluate`: strict micro-F1, KIND WN dev under
Postilla's convention and CoNLL-2003 German dev, sentences and whole documents), so that the
rebuilt models/ner-it-de can be compared with the scores logged during training.

    python3 training/eval_dev.py [MODEL_DIR] [--data ../shared/data]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_ner import ROOT, evaluate, load_data  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=os.path.join(ROOT, "models", "ner-it-de"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    args = ap.parse_args()
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    _, _, dev, _, _ = load_data(args.data, 0)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForTokenClassification.from_pretrained(args.model)
    print(json.dumps({"model": args.model, **evaluate(torch, model, tokenizer, dev, "cpu")}))


if __name__ == "__main__":
    main()
