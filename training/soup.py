#!/usr/bin/env python3
"""A greedy weight soup (Wortsman et al. 2022, "Model soups") of fine-tuned NER models that share
a starting point, chosen on the recipe's development sets.

    python3 training/soup.py --out OUT_DIR INGREDIENT [INGREDIENT ...] [--threads T]

An INGREDIENT is a packaged compact model directory (models/ner-it-de, or the --out of a
`train_ner.py --compact` run: its fp16 trained-*.safetensors) or a checkpoint-<stage>.pt of a
`train_ner.py` run (the fp32 weights after that epoch).

How the soup is made (the paper's greedy soup):
1. every ingredient is scored by the recipe's own scorer (`train_ner.evaluate`: strict
   micro-F1 on KIND WN dev under Postilla's convention and CoNLL-2003 German dev, decoded as
   Postilla decodes), and the ingredients are sorted by the recipe's `selection` (best first,
   ties in the order given);
2. the soup starts as the best ingredient; each next ingredient is added when the uniform
   average of the soup's ingredients and it scores a `selection` at least the soup's;
3. the soup is written like a `--compact` run (fp16 trained-*.safetensors, config.json) with a
   training-log.json holding every score, so `training/package_ner.py` packages it and
   `train_ner.py --init OUT_DIR` continues from it.
Only development sets are read: no test split takes part in any choice.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_ner import DATA, ROOT, evaluate, load_data, load_initial, load_state, new_model, save_compact  # noqa: E402


def average(states):
    """The uniform average of state dicts with the same names (fp32)."""
    names = states[0].keys()
    for state in states[1:]:
        if state.keys() != names:
            raise SystemExit("ingredients hold different parameters: they are not the same model")
    return {n: sum(state[n].float() for state in states) / len(states) for n in names}


def greedy_soup(ingredients, score):
    """The greedy soup of `ingredients` [(name, state)], `score(state)` giving a dict with
    `selection`: returns (soup state, names kept, the soup's scores, every score in order)."""
    scored = [(name, state, score(state)) for name, state in ingredients]
    history = [{"stage": "ingredient", "ingredient": name, **scores} for name, _, scores in scored]
    scored.sort(key=lambda item: -item[2]["selection"])
    kept, soup, best = [scored[0][0]], scored[0][1], scored[0][2]
    states = [scored[0][1]]
    for name, state, _ in scored[1:]:
        trial = average(states + [state])
        scores = score(trial)
        added = scores["selection"] >= best["selection"]
        history.append({"stage": "soup-trial", "ingredients": kept + [name], "added": added, **scores})
        if added:
            kept, soup, best, states = kept + [name], trial, scores, states + [state]
    return soup, kept, best, history


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ingredients", nargs="+", help="packaged compact model directories or checkpoint-<stage>.pt files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=os.path.join(ROOT, "models", "e5-small"))
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--limit", type=int, default=0, help="score on a few dev sentences only (smoke run)")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = ap.parse_args()
    if len(args.ingredients) < 2:
        ap.error("a soup needs at least two ingredients")

    import torch
    from transformers import AutoTokenizer
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    _, _, dev, _, _ = load_data(args.data, args.limit)
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    model = new_model(args.base)
    model.eval()

    def score(state):
        load_state(torch, model, state)
        scores = evaluate(torch, model, tokenizer, dev, "cpu", args.max_length)
        print(json.dumps({"dev": scores, "minutes": round((time.time() - started) / 60, 1)}), flush=True)
        return scores

    ingredients = [(path, load_initial(torch, path)["state"]) for path in args.ingredients]
    soup, kept, best, history = greedy_soup(ingredients, score)
    load_state(torch, model, soup)
    os.makedirs(args.out, exist_ok=True)
    save_compact(torch, model, args.out)
    minutes = round((time.time() - started) / 60, 1)
    selected = {"stage": "soup", "step": 0, **best}
    print(json.dumps({"kept": kept, "selected": selected, "minutes": minutes}), flush=True)
    log = {"soup": {"ingredients": args.ingredients, "kept": kept}, "dev": history, "selected": selected,
           "minutes": minutes, "args": vars(args)}
    with open(os.path.join(args.out, "training-log.json"), "w", encoding="utf-8") as f:
        json.dump(log, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
