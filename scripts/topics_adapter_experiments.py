#!/usr/bin/env python3
"""Train-only experiments: does a small learned adapter on e5-small's embedding space help the
embedding topic method, and does it carry over to a taxonomy it was not trained on?

Runs in the test environment after `just setup` (`.local/venv/bin/python
scripts/topics_adapter_experiments.py`). SIB-200 *dev* and the first 300 XGLUE-NC articles (the
reported evaluation sets) are never read.

Embeddings are computed as Postilla's embedding method does ("query: " prefix, mean pooling over
windows of 510 content tokens weighted by their token counts, L2 norm) and cached in
.local/topics-adapter-exp.npz:
  SIB-200 train, it and de (701 parallel sentences each: same ids, same labels) and the
  descriptions of taxonomies/sib200.toml;
  XGLUE-NC de articles 300..999 (never reported) and the descriptions of taxonomies/xglue-nc.toml.

The adapter and its training are training/topic_adapter.py's (normalise(x + x U V^T) on
documents and descriptions, rank r, cross-entropy against the prototypes, decay on U V^T); the
grid below varies rank, decay and epochs. Scoring uses calibration as shipped (offsets = mean
cosine of the pool of unlabelled texts).

Measures:
  SIB 2-fold   ids split in halves (it and de of one id always on the same side, since the
               sentences are translations), adapter trained on one half (both languages),
               accuracy on the other, 5 splits x 2 directions, mean;
  XGLUE 300+   adapter trained on all of SIB train, applied to XGLUE-NC articles 300..999 with
               the xglue-nc taxonomy (another taxonomy, another domain): does it generalise?
"""
import os
import sys
import tomllib

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "training"))
from topic_adapter import LANGS, cosines, descriptions, embed, load_encoder, read_sib, train  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared", "data", "topics")
CACHE = os.path.join(ROOT, ".local", "topics-adapter-exp.npz")


def embed_all():
    torch.set_num_threads(2)
    encoder = load_encoder(os.path.join(ROOT, "models", "e5-small"))
    arrays = {}
    sib = tomllib.load(open(os.path.join(ROOT, "taxonomies", "sib200.toml"), "rb"))
    topics = [t["id"] for t in sib["topics"]]
    for code in LANGS:
        texts, arrays[f"sib_{code}_y"], arrays[f"sib_{code}_id"] = read_sib("train", code, topics)
        arrays[f"sib_{code}_x"] = embed(encoder, texts)
        for i, d in enumerate(descriptions(sib, code)):
            arrays[f"sib_{code}_desc_{i}"] = embed(encoder, d)
    xg = tomllib.load(open(os.path.join(ROOT, "taxonomies", "xglue-nc.toml"), "rb"))
    xtopics = [t["id"] for t in xg["topics"]]
    rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(SHARED, "xglue-nc-de", "dev.tsv"),
                                                            encoding="utf-8")][300:]
    print(f"embedding {len(rows)} XGLUE articles", file=sys.stderr)
    arrays["xg_x"] = embed(encoder, [f"{r[0].strip()}\n\n{r[1].strip()}" for r in rows])
    arrays["xg_y"] = np.array([xtopics.index(r[2]) for r in rows])
    for i, d in enumerate(descriptions(xg, "de")):
        arrays[f"xg_desc_{i}"] = embed(encoder, d)
    arrays["sib_k"] = np.array(len(topics))
    arrays["xg_k"] = np.array(len(xtopics))
    np.savez(CACHE, **arrays)


def scores(adapter, descs, pool, x):
    """Calibrated cosines (offsets measured on `pool`; no calibration when `pool` is None)."""
    s = cosines(adapter, descs, x)
    return s if pool is None else s - cosines(adapter, descs, pool).mean(0)


def main():
    if not os.path.exists(CACHE):
        embed_all()
    E = {k: v for k, v in np.load(CACHE).items()}
    t = lambda a: torch.tensor(a)
    K, XK = int(E["sib_k"]), int(E["xg_k"])
    sib = {c: (t(E[f"sib_{c}_x"]), t(E[f"sib_{c}_y"]), [t(E[f"sib_{c}_desc_{i}"]) for i in range(K)]) for c in LANGS}
    assert (E["sib_it_id"] == E["sib_de_id"]).all()
    xg = (t(E["xg_x"]), t(E["xg_y"]), [t(E[f"xg_desc_{i}"]) for i in range(XK)])
    n = len(E["sib_it_y"])

    def acc(adapter, data, pool_idx, eval_idx):
        x, y, d = data
        with torch.no_grad():
            s = scores(adapter, d, None if pool_idx is None else x[pool_idx], x[eval_idx])
        return (s.argmax(1) == y[eval_idx]).float().mean().item()

    configs = [None] + [(r, wd, ep, lr) for r in (8, 32, 64) for wd in (0.0, 0.03, 0.1, 0.3, 1.0) for ep in (50, 200)
                        for lr in (1e-2,)]
    print(f"{'adapter (rank, decay, epochs, lr)':36s} {'it 2-fold':>9s} {'de 2-fold':>9s} {'XGLUE 300+ raw':>14s} {'cal':>6s}")
    every = np.arange(n)
    for cfg in configs:
        folds = {"it": [], "de": []}
        rng = np.random.default_rng(0)
        for _ in range(5):
            idx = rng.permutation(n)
            a, b = idx[: n // 2], idx[n // 2:]
            for tr, ev in ((a, b), (b, a)):
                ad = None if cfg is None else train(
                    [(sib[c][0][tr], sib[c][1][tr], sib[c][2]) for c in LANGS], *cfg)
                for c in LANGS:
                    folds[c].append(acc(ad, sib[c], tr, ev))
        ad = None if cfg is None else train([sib[c] for c in LANGS], *cfg)
        xall = np.arange(len(xg[1]))
        name = "none (shipped)" if cfg is None else str(cfg)
        print(f"{name:36s} {np.mean(folds['it']):9.3f} {np.mean(folds['de']):9.3f} {acc(ad, xg, None, xall):14.3f} {acc(ad, xg, xall, xall):6.3f}",
              flush=True)
    print()
    print("Trained on XGLUE-NC articles 300..999 (xglue-nc taxonomy, German), applied to all of SIB train")
    print("(labels never used in training: zero-shot for SIB's taxonomy); calibrated on SIB train texts.")
    print(f"{'adapter (rank, decay, epochs, lr)':36s} {'SIB it':>9s} {'SIB de':>9s}")
    for cfg in configs:
        ad = None if cfg is None else train([xg], *cfg)
        name = "none (shipped)" if cfg is None else str(cfg)
        print(f"{name:36s} {acc(ad, sib['it'], every, every):9.3f} {acc(ad, sib['de'], every, every):9.3f}", flush=True)


if __name__ == "__main__":
    main()
