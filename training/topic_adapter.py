#!/usr/bin/env python3
"""The topic adapter: a rank-r map on e5-small's embedding space, learned from labelled topic data,
that the embedding topic method applies to documents and descriptions alike.

    adapted(x) = normalise(x + (x U) V^T)        U, V: dim x rank; V = 0 is the identity

A topic's prototype is the normalised mean of its adapted description embeddings; a document's
cosine with it is then calibrated and scored as before (crates/core/src/topics/adapter.rs is the
Rust side). Training: cross-entropy over cosine / TEMPERATURE against the prototypes of the
document's language, full batch, Adam with the learning rate annealed to 0 (cosine schedule), plus
DECAY * |U V^T|^2 so that the map stays close to the identity and keeps what e5 knows about
topics it was not trained on.

The shipped adapter (models/topic-adapters/e5-small.safetensors) is trained on the SIB-200 *train*
split, Italian and German (701 parallel sentences each, seven topics, the descriptions of
taxonomies/sib200.toml); SIB-200 dev and XGLUE-NC are never read. Rank, decay and epochs were
chosen by scripts/topics_adapter_experiments.py (SIB train 2-fold, and the transfer to XGLUE-NC
articles 300..999 under another taxonomy).

    .local/venv/bin/python training/topic_adapter.py --out models/topic-adapters/e5-small.safetensors

Embeddings are computed as Postilla's embedding method does ("query: " prefix, mean pooling over
windows of 510 content tokens weighted by their token counts, L2 norm).
"""
import argparse
import csv
import json
import os
import sys
import tomllib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e5_common  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SIB = os.path.join(ROOT, "..", "shared", "data", "topics", "sib200")
LANGS = {"it": "ita_Latn", "de": "deu_Latn"}
SCHEMA = "postilla-topic-adapter/1"
# chosen on SIB train only (scripts/topics_adapter_experiments.py)
RANK, DECAY, EPOCHS, LR, TEMPERATURE, SEED = 32, 0.03, 50, 0.01, 0.05, 0


def load_encoder(model_dir):
    return e5_common.load_encoder(model_dir)


def embed(encoder, texts, batch=16):
    """Postilla's sentence embedding of each text (training/e5_common.py)."""
    return e5_common.embed(encoder, texts, batch)


def descriptions(taxonomy, lang):
    """One list of description sentences per topic, taxonomy order."""
    out = []
    for t in taxonomy["topics"]:
        d = t[lang]["description"]
        out.append(d if isinstance(d, list) else [d])
    return out


def read_sib(split, lang, topics):
    rows = list(csv.DictReader(open(os.path.join(SIB, LANGS[lang], f"{split}.tsv"), encoding="utf-8"),
                               delimiter="\t"))
    return [r["text"] for r in rows], np.array([topics.index(r["category"]) for r in rows]), \
        np.array([int(r["index_id"]) for r in rows])


def norm(x):
    return x / x.norm(dim=-1, keepdim=True)


class Adapter(torch.nn.Module):
    """normalise(x + (x U) V^T); V starts at zero (the identity)."""

    def __init__(self, dim, rank=RANK, seed=SEED):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.u = torch.nn.Parameter(torch.randn(dim, rank, generator=g) / dim ** 0.5)
        self.v = torch.nn.Parameter(torch.zeros(dim, rank))

    def forward(self, x):
        return norm(x + (x @ self.u) @ self.v.T)

    def delta(self):
        return self.u @ self.v.T


def prototypes(adapter, descs):
    """Normalised mean of each topic's (adapted) description embeddings."""
    return norm(torch.stack([(adapter(d) if adapter is not None else d).mean(0) for d in descs]))


def cosines(adapter, descs, x):
    p = prototypes(adapter, descs)
    return (adapter(x) if adapter is not None else x) @ p.T


def train(sets, rank=RANK, decay=DECAY, epochs=EPOCHS, lr=LR, seed=SEED):
    """sets: (x, y, descs) per language, tensors. Full-batch Adam, cosine-annealed; returns the adapter in eval mode."""
    torch.manual_seed(seed)
    adapter = Adapter(sets[0][0].shape[1], rank, seed)
    opt = torch.optim.Adam(adapter.parameters(), lr=lr)
    # annealed to 0: at a constant rate Adam keeps oscillating around the minimum, and where the
    # last step lands then depends on float rounding (another CPU gives another adapter)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        opt.zero_grad()
        loss = sum(torch.nn.functional.cross_entropy(cosines(adapter, d, x) / TEMPERATURE, y)
                   for x, y, d in sets) / len(sets)
        loss = loss + decay * adapter.delta().pow(2).sum()
        loss.backward()
        opt.step()
        schedule.step()
    return adapter.eval()


def best_threshold(cos, y):
    """The cosine cut-off that maximises micro F1 of multi-label assignment (topics whose cosine
    reaches it) against the single gold topic of each text."""
    gold = torch.zeros_like(cos, dtype=torch.bool)
    gold[torch.arange(len(y)), y] = True
    best = (-1.0, 0.0)
    for th in torch.unique(cos.flatten().round(decimals=3)).tolist():
        pred = cos >= th
        tp = (pred & gold).sum().item()
        f1 = 2 * tp / (pred.sum().item() + gold.sum().item())
        best = max(best, (f1, th))
    return best[1]


def held_out_threshold(sets, ids):
    """Multi-label threshold for the adapted cosines, measured where the adapter was not
    trained: 2 folds of SIB train split by sentence id (an id's it and de sentences are
    translations, so they stay on one side), the F1-best cut-off of each held-out half, mean."""
    rng = np.random.default_rng(SEED)
    unique = rng.permutation(np.unique(ids))
    halves = [np.isin(ids, unique[: len(unique) // 2]), np.isin(ids, unique[len(unique) // 2:])]
    found = []
    for train_mask, test_mask in (halves, halves[::-1]):
        tr, te = torch.tensor(train_mask), torch.tensor(test_mask)
        adapter = train([(x[tr], y[tr], d) for x, y, d in sets])
        with torch.no_grad():
            cos = torch.cat([cosines(adapter, d, x[te]) for x, _, d in sets])
        found.append(best_threshold(cos, torch.cat([y[te] for _, y, _ in sets])))
    return float(np.mean(found))


def encoder_sha256(model_dir):
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    return manifest["files"]["model.safetensors"]["sha256"]


def sib_training_sets(encoder):
    """(x, y, descs) per language for SIB-200 train, and the sentence ids (same in both)."""
    taxonomy = tomllib.load(open(os.path.join(ROOT, "taxonomies", "sib200.toml"), "rb"))
    topics = [t["id"] for t in taxonomy["topics"]]
    sets, ids = [], None
    for lang in LANGS:
        texts, y, lang_ids = read_sib("train", lang, topics)
        assert ids is None or (ids == lang_ids).all(), "SIB-200 train splits are not parallel"
        ids = lang_ids
        descs = [torch.tensor(embed(encoder, d)) for d in descriptions(taxonomy, lang)]
        sets.append((torch.tensor(embed(encoder, texts)), torch.tensor(y), descs))
    return sets, ids


def save(adapter, path, model_dir, n_texts, threshold):
    from safetensors.torch import save_file
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    metadata = {
        "schema": SCHEMA,
        "encoder_sha256": encoder_sha256(model_dir),
        # the scoring defaults that go with the adapted cosines (softmax temperature = the
        # training temperature; multi-label cut-off measured on held-out halves of train)
        "temperature": repr(TEMPERATURE),
        "threshold": f"{threshold:.3f}",
        "trained_on": f"SIB-200 train, it and de ({n_texts} sentences), taxonomies/sib200.toml descriptions",
        "recipe": f"training/topic_adapter.py: rank {RANK}, decay {DECAY}, {EPOCHS} full-batch Adam steps, "
                  f"lr {LR} cosine-annealed, temperature {TEMPERATURE}, seed {SEED}",
    }
    save_file({"u": adapter.u.detach().contiguous(), "v": adapter.v.detach().contiguous()}, path, metadata)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "e5-small"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "topic-adapters", "e5-small.safetensors"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    sets, ids = sib_training_sets(load_encoder(args.model))
    adapter = train(sets)
    threshold = held_out_threshold(sets, ids)
    print(f"multi-label threshold (held-out halves of train): {threshold:.3f}", file=sys.stderr)
    with torch.no_grad():
        for lang, (x, y, d) in zip(LANGS, sets):
            before = (cosines(None, d, x).argmax(1) == y).float().mean().item()
            after = (cosines(adapter, d, x).argmax(1) == y).float().mean().item()
            print(f"SIB train {lang}: accuracy {before:.3f} -> {after:.3f} (uncalibrated, training data)",
                  file=sys.stderr)
    save(adapter, args.out, args.model, sum(len(s[1]) for s in sets), threshold)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
