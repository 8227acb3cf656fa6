#!/usr/bin/env python3
"""Tests of training/gpu_pack.py (run by `just test`): the pack fits the GPU upload budget,
unpacking gives back models/e5-small's weights bit for bit (trimmed to the kept pieces), the
unpacked directory loads in transformers, and the trimmed tokenizer picks the same pieces as the
full one on held-out Italian and German text."""
import csv
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from gpu_pack import kept_piece_ids, latin_char  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "..", "shared", "data")
E5 = os.path.join(ROOT, "models", "e5-small")


def held_out_texts():
    """Texts never used to build anything in the pack (the vocabulary is chosen by a rule):
    XGLUE-NC German articles, SIB-200 Italian and German dev sentences, the seeds."""
    texts = []
    with open(os.path.join(DATA, "topics", "xglue-nc-de", "dev.tsv"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 400:
                break
            title, body = line.split("\t")[:2]
            texts.append(title + "\n" + body)
    for lang in ("ita_Latn", "deu_Latn"):
        with open(os.path.join(DATA, "topics", "sib200", lang, "dev.tsv"), encoding="utf-8") as f:
            texts += [row["text"] for row in csv.DictReader(f, delimiter="\t")]
    seeds = os.path.join(ROOT, "seeds")
    texts += [open(os.path.join(seeds, n), encoding="utf-8").read() for n in sorted(os.listdir(seeds)) if n.endswith(".txt")]
    return texts


def test_pack_round_trip():
    """Pack, unpack: identical weights, a loadable model, the same tokens on Latin-script text."""
    with tempfile.TemporaryDirectory() as tmp:
        pack, out = os.path.join(tmp, "pack"), os.path.join(tmp, "out")
        py = sys.executable
        script = os.path.join(ROOT, "training", "gpu_pack.py")
        subprocess.run([py, script, "pack", "--out", pack], check=True, stdout=subprocess.DEVNULL)
        total = sum(os.path.getsize(os.path.join(pack, f)) for f in os.listdir(pack))
        assert total < 60 * 2**20, f"pack is {total / 2**20:.1f} MiB"
        subprocess.run([py, script, "unpack", pack, "--to", out], check=True, stdout=subprocess.DEVNULL)
        base = os.path.join(out, "e5-small-latin")

        # weights: bit for bit, embedding rows selected by the kept pieces
        full_tok = json.load(open(os.path.join(E5, "tokenizer.json"), encoding="utf-8"))
        keep = kept_piece_ids(full_tok)
        original, unpacked = load_file(os.path.join(E5, "model.safetensors")), load_file(os.path.join(base, "model.safetensors"))
        assert set(original) == set(unpacked), set(original) ^ set(unpacked)
        for name, t in original.items():
            if name.endswith("word_embeddings.weight"):
                t = t[torch.tensor(keep)]
            assert torch.equal(t, unpacked[name]), f"{name} differs after pack/unpack"
        print(f"gpu pack: {total / 2**20:.1f} MiB, {len(original)} tensors identical after unpacking, {len(keep)} pieces")

        # the unpacked directory is a model transformers loads (as train_ner.py does)
        from transformers import AutoModelForTokenClassification, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(base)
        model = AutoModelForTokenClassification.from_pretrained(base, num_labels=9)
        assert model.bert.embeddings.word_embeddings.weight.shape[0] == len(keep) == len(tok)

        # tokenization: same pieces as the full tokenizer on every Latin-script text
        full, trimmed = Tokenizer.from_file(os.path.join(E5, "tokenizer.json")), Tokenizer.from_file(os.path.join(base, "tokenizer.json"))
        latin, same_latin, other, same_other, tokens = 0, 0, 0, 0, 0
        for text in held_out_texts():
            a, b = full.encode(text), trimmed.encode(text)
            same = a.tokens == b.tokens and [keep[i] for i in b.ids] == a.ids and a.offsets == b.offsets
            tokens += len(a.ids)
            if all(latin_char(c) for c in text):
                latin += 1
                same_latin += same
                assert same, f"trimmed tokenizer differs on Latin-script text: {text[:80]!r}"
            else:
                other += 1
                same_other += same
        print(f"gpu pack: trimmed tokenizer identical on {same_latin}/{latin} Latin-script texts "
              f"and {same_other}/{other} texts with other scripts ({tokens} tokens)")
        assert latin > 500
