#!/usr/bin/env python3
"""Train-only experiments behind the embedding topic method's choices (issue: SIB-200 German).

Runs in the test environment (`.local/venv/bin/python scripts/topics_train_experiments.py`)
after `just setup`. It embeds the SIB-200 Italian and German *train* sentences and the
descriptions of taxonomies/sib200.toml with models/e5-small exactly as Postilla's embedding
method does ("query: " prefix, mean pooling, L2 norm; cached in .local/topics-exp.npz), then
scores variants on train only. Dev is never read. Each variant is scored two ways:

  2-fold   whatever the variant learns from unlabelled texts (calibration means, refined
           prototypes) comes from one random half of train, accuracy is measured on the other
           half (5 random splits x 2 directions, mean), as dev is scored in `just
           topics-accuracy` with a calibration measured on train;
  trans    the same texts serve both (transductive).

Variants:
  raw, calibrated                  the shipped method without and with calibration
  aggregate=max|meancos            per-description cosines aggregated by max or mean, instead
                                   of the cosine with the mean description embedding
  self-training (it, lambda, T)    unsupervised prototype refinement: assign the unlabelled
                                   texts by calibrated cosine (hard, or softmax at temperature
                                   T), move each prototype to lambda * description prototype +
                                   (1 - lambda) * centroid of its texts, recalibrate; `it` rounds
  few-shot k                       k labelled train sentences per topic averaged into the
                                   prototype (20 random draws): what labelled examples would add
"""
import csv
import json
import os
import sys
import tomllib

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "training"))
import e5_common  # noqa: E402
DATA = os.path.join(ROOT, "..", "shared", "data", "topics", "sib200")
CACHE = os.path.join(ROOT, ".local", "topics-exp.npz")
LANGS = {"it": "ita_Latn", "de": "deu_Latn"}


def embed_all():
    import torch
    from transformers import AutoModel, AutoTokenizer
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(os.path.join(ROOT, "models", "e5-small"))
    model = AutoModel.from_pretrained(os.path.join(ROOT, "models", "e5-small"), add_pooling_layer=False).eval()

    def embed(texts):
        # Postilla's windows over the whole text, not a 512-token truncation
        return e5_common.embed((tok, model), texts, 32)

    arrays = {}
    taxonomy = tomllib.load(open(os.path.join(ROOT, "taxonomies", "sib200.toml"), "rb"))
    topics = [t["id"] for t in taxonomy["topics"]]
    for code, name in LANGS.items():
        rows = list(csv.DictReader(open(os.path.join(DATA, name, "train.tsv"), encoding="utf-8"), delimiter="\t"))
        arrays[f"{code}_x"] = embed([r["text"] for r in rows])
        arrays[f"{code}_y"] = np.array([topics.index(r["category"]) for r in rows])
        for i, t in enumerate(taxonomy["topics"]):
            d = t[code]["description"]
            arrays[f"{code}_desc_{i}"] = embed(d if isinstance(d, list) else [d])
    arrays["topics"] = np.array(topics)
    np.savez(CACHE, **arrays)


def norm(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def calibrated(P, pool, X):
    return X @ P.T - (pool @ P.T).mean(0)


def refine(P0, pool, rounds, lam, temp):
    P = P0
    for _ in range(rounds):
        S = calibrated(P, pool, pool)
        if temp == 0:
            W = np.eye(len(P0))[S.argmax(1)]
        else:
            W = np.exp((S - S.max(1, keepdims=True)) / temp)
            W /= W.sum(1, keepdims=True)
        P = norm(lam * P0 + (1 - lam) * norm(W.T @ pool + 1e-9))
    return P


def main():
    if not os.path.exists(CACHE):
        embed_all()
    E = np.load(CACHE)
    K = len(E["topics"])

    def scored(lang, method):
        X, y = E[f"{lang}_x"], E[f"{lang}_y"]
        D = [E[f"{lang}_desc_{i}"] for i in range(K)]
        rng = np.random.default_rng(0)
        folds = []
        for _ in range(5):
            idx = rng.permutation(len(y))
            a, b = idx[: len(y) // 2], idx[len(y) // 2:]
            folds += [(method(D, X[p], X[t]).argmax(1) == y[t]).mean() for p, t in ((a, b), (b, a))]
        return np.mean(folds), (method(D, X, X).argmax(1) == y).mean()

    protos = lambda D: norm(np.stack([d.mean(0) for d in D]))
    variants = {
        "raw": lambda D, pool, X: X @ protos(D).T,
        "calibrated (shipped)": lambda D, pool, X: calibrated(protos(D), pool, X),
        "calibrated, aggregate=max": lambda D, pool, X: (lambda S: S - S[: len(pool)].mean(0))(
            np.stack([np.concatenate([pool, X]) @ d.T for d in D], 1).max(2))[len(pool):],
        "calibrated, aggregate=meancos": lambda D, pool, X: (lambda S: S - S[: len(pool)].mean(0))(
            np.stack([np.concatenate([pool, X]) @ d.T for d in D], 1).mean(2))[len(pool):],
    }
    for rounds in (1, 3):
        for lam in (0.3, 0.5, 0.7):
            for temp in (0, 0.02):
                variants[f"self-training it={rounds} lambda={lam} T={temp}"] = (
                    lambda D, pool, X, r=rounds, l=lam, t=temp: calibrated(refine(protos(D), pool, r, l, t), pool, X))
    print(f"{'variant':44s} {'it 2-fold':>9s} {'trans':>6s} {'de 2-fold':>9s} {'trans':>6s}")
    for name, method in variants.items():
        (i2, it), (d2, dt) = scored("it", method), scored("de", method)
        print(f"{name:44s} {i2:9.3f} {it:6.3f} {d2:9.3f} {dt:6.3f}")
    for k in (2, 4, 8, 16):
        row = []
        for lang in ("it", "de"):
            X, y = E[f"{lang}_x"], E[f"{lang}_y"]
            accs = []
            for seed in range(20):
                rng = np.random.default_rng(seed)
                shots = [rng.permutation(np.where(y == c)[0])[:k] for c in range(K)]
                rest = np.setdiff1d(np.arange(len(y)), np.concatenate(shots))
                P = norm(np.stack([np.concatenate([E[f"{lang}_desc_{c}"], X[shots[c]]]).mean(0) for c in range(K)]))
                accs.append((calibrated(P, X, X[rest]).argmax(1) == y[rest]).mean())
            row.append(f"{np.mean(accs):9.3f} {np.std(accs):6.3f}")
        print(f"{'few-shot k=' + str(k) + ' (mean, sd over 20 draws)':44s} {row[0]} {row[1]}")


if __name__ == "__main__":
    main()
