#!/usr/bin/env python3
"""Tests of the topic adapter (run under pytest by `just test`, after `just setup`):

1. the shipped models/topic-adapters/e5-small.safetensors is what training/topic_adapter.py
   trains from the SIB-200 train split (retrained here; float noise between CPUs allowed, no
   more), and it names the encoder it was trained on;
2. `postilla annotate` applies it exactly as the training code does: its topic scores on SIB-200
   train sentences equal softmax(cosine / 0.05, the adapter's temperature) over the adapted
   prototypes computed here in PyTorch, and differ from the scores without the adapter
   (`--no-topic-adapter`: softmax(cosine / 0.02) over the plain prototypes, also checked).
"""
import json
import os
import subprocess
import sys
import tempfile
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

import topic_adapter as ta  # noqa: E402

E5 = os.path.join(ta.ROOT, "models", "e5-small")
SHIPPED = os.path.join(ta.ROOT, "models", "topic-adapters", "e5-small.safetensors")
POSTILLA = os.path.join(ta.ROOT, "target", "release", "postilla")


def load_shipped():
    with safe_open(SHIPPED, "pt") as f:
        meta = f.metadata()
        u, v = f.get_tensor("u"), f.get_tensor("v")
        adapter = ta.Adapter(*u.shape)
        adapter.u.data, adapter.v.data = u, v
    return adapter.eval(), meta


@pytest.fixture(scope="module")
def encoder():
    torch.set_num_threads(2)
    return ta.load_encoder(E5)


@pytest.fixture(scope="module")
def shipped():
    return load_shipped()[0]


@pytest.fixture(scope="module")
def meta():
    return load_shipped()[1]


def test_shipped_adapter_is_reproduced(encoder, shipped, meta):
    assert meta["schema"] == ta.SCHEMA, meta
    assert meta["encoder_sha256"] == ta.encoder_sha256(E5), "adapter trained on another encoder than models/e5-small"
    sets, ids = ta.sib_training_sets(encoder)
    retrained = ta.train(sets)
    threshold = ta.held_out_threshold(sets, ids)
    assert abs(threshold - float(meta["threshold"])) < 0.02, (threshold, meta["threshold"])
    assert float(meta["temperature"]) == ta.TEMPERATURE, meta
    with torch.no_grad():
        d_shipped, d_new = shipped.delta(), retrained.delta()
        drift = ((d_shipped - d_new).abs().max() / d_shipped.abs().max()).item()
        agree = np.mean([(ta.cosines(shipped, d, x).argmax(1) == ta.cosines(retrained, d, x).argmax(1)).float().mean()
                         for x, _, d in sets])
    print(f"retrained adapter: max |U V^T| difference {drift:.2e} of the largest entry; same top topic on "
          f"{agree:.4f} of SIB train")
    assert drift < 1e-2 and agree > 0.995, "the shipped adapter is not what training/topic_adapter.py trains"


def annotate(records, extra):
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            for i, text in records:
                f.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
        subprocess.run([POSTILLA, "annotate", src, "-o", out, "--no-ner", "--topics",
                        os.path.join(ta.ROOT, "taxonomies", "sib200.toml")] + extra,
                       check=True, cwd=ta.ROOT, capture_output=True)
        return [json.loads(line) for line in open(out, encoding="utf-8")]


def test_postilla_applies_it_as_trained(encoder, shipped):
    taxonomy = tomllib.load(open(os.path.join(ta.ROOT, "taxonomies", "sib200.toml"), "rb"))
    topics = [t["id"] for t in taxonomy["topics"]]
    docs = []
    for lang in ta.LANGS:
        texts, _, ids = ta.read_sib("train", lang, topics)
        docs += [(f"{lang}-{i}", t) for i, t in zip(ids[:25], texts[:25])]
    adapted = annotate(docs, [])
    plain = annotate(docs, ["--no-topic-adapter"])
    assert adapted[0]["provenance"]["params"]["topic_adapter"]["rank"] == ta.RANK
    assert "topic_adapter" not in plain[0]["provenance"]["params"]
    texts = dict(docs)
    worst, moved = 0.0, 0
    for rec, rec_plain in zip(adapted, plain):
        lang = rec["lang"].get("topic_language") or rec["lang"]["code"]
        descs = [torch.tensor(ta.embed(encoder, d)) for d in ta.descriptions(taxonomy, lang)]
        x = torch.tensor(ta.embed(encoder, [texts[rec["id"]]]))
        for adapter, r in ((shipped, rec), (None, rec_plain)):
            with torch.no_grad():
                temperature = ta.TEMPERATURE if adapter is not None else 0.02
                want = torch.softmax(ta.cosines(adapter, descs, x)[0].double() / temperature, 0).numpy()
            got = np.array([{s["label"]: s["score"] for s in r["topics"]}[t] for t in topics])
            worst = max(worst, float(np.abs(got - want).max()))
        moved += {s["label"]: s["score"] for s in rec["topics"]} != {s["label"]: s["score"] for s in rec_plain["topics"]}
    print(f"postilla vs PyTorch on {len(adapted)} SIB train sentences: max score difference {worst:.2e}; "
          f"scores changed by the adapter on {moved}")
    assert worst < 1e-4, worst
    assert moved == len(adapted), "the adapter must change every document's scores"
