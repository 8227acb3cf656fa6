#!/usr/bin/env python3
"""Postilla's recipe for the default Italian/German NER model (PER, ORG, LOC, MISC; IOB2),
fine-tuned from models/e5-small on the gold training sets of ../shared/data.

    python3 training/train_ner.py --out OUT_DIR [--limit N] [--epochs E] [--device cuda]

Full run (GPU): python3 training/train_ner.py --out models/ner-it-de/build --epochs 6 --lr 5e-5 \
                --batch-size 16 --max-length 256 --device cuda
CPU smoke run:  just train-smoke

Data: KIND WN/FIC/ADG train, EVALITA-2009 train, CoNLL-2003 German train; model selection on
KIND WN dev and CoNLL-2003 German dev (never a test split).

Two principled choices, both tested by training/test_recipe.py:
* Convention (docs/annotation-guidelines.md): names of countries, cities and regions are LOC
  whatever their role. KIND marks countries acting politically as ORG, so a KIND ORG span whose
  whole surface is a known place name (a surface annotated LOC more often than ORG across the
  training sets, e.g. "Cina", "Italia") becomes LOC; longer names such as
  "Comune di Roma" stay ORG.
* Italian gold has no MISC: a token labelled O in an Italian sentence may be a MISC name, so
  its loss is -log P(O or B-MISC or I-MISC) (a partial label) instead of -log P(O); tokens
  inside PER/ORG/LOC entities keep the ordinary cross-entropy.

Subword handling: the first piece of each word carries the word's label, the others are
ignored by the loss (-100), which matches inference with aggregation "first".
Model selection: after every epoch, strict entity-level micro-F1 on KIND WN dev (under
Postilla's convention, PER/ORG/LOC) and CoNLL-2003 German dev (all four types); the epoch with
the best mean is kept. --compact saves only the trained weights (fp16 shards under 15 MiB, the
frozen word embeddings come from the base), which is what a GPU run brings back.
The word embeddings stay frozen (they are 250k x 384 and the training data cannot improve them).
"""
import argparse
import collections
import json
import math
import os
import random
import time

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def read_conll(path, sep=None, lang="it"):
    sents, toks, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("-DOCSTART-"):
            if toks:
                sents.append({"tokens": toks, "tags": tags, "lang": lang})
                toks, tags = [], []
            continue
        cols = line.split(sep) if sep else line.split()
        toks.append(cols[0])
        tags.append(cols[-1])
    if toks:
        sents.append({"tokens": toks, "tags": tags, "lang": lang})
    return sents


def spans(tags, strict=False):
    """Entities of a tag sequence as half-open (start, end, type). An entity continues over
    I-X of its type. With strict=True only B-X starts one (seqeval's mode="strict" with the
    IOB2 scheme, for scoring); otherwise an I-X that continues nothing starts one too (IOB1,
    tolerant reading of training data)."""
    out, cur = [], None
    for i, t in enumerate(list(tags) + ["O"]):
        if cur is not None and not (t.startswith("I-") and t[2:] == cur[1]):
            out.append((cur[0], i, cur[1]))
            cur = None
        if t.startswith("B-") or (not strict and t.startswith("I-") and cur is None):
            cur = (i, t[2:])
    return out


def place_gazetteer(sentences):
    """Surfaces annotated LOC more often than ORG across the training sets."""
    counts = collections.defaultdict(collections.Counter)
    for s in sentences:
        for a, b, label in spans(s["tags"]):
            counts[" ".join(s["tokens"][a:b])][label] += 1
    return {surface for surface, c in counts.items() if c["LOC"] > c["ORG"]}


def harmonise(sentences, places):
    """KIND ORG spans whose whole surface is a place name become LOC; returns the count."""
    changed = 0
    for s in sentences:
        for a, b, label in spans(s["tags"]):
            if label == "ORG" and " ".join(s["tokens"][a:b]) in places:
                s["tags"][a] = "B-LOC"
                for i in range(a + 1, b):
                    s["tags"][i] = "I-LOC"
                changed += 1
    return changed


def load_data(data, limit):
    d = os.path.join(data, "ner")
    kind = []
    for part in ("WN", "FIC", "ADG"):
        kind += read_conll(f"{d}/it/kind/{part}_train.tsv", "\t", "it")
    evalita = read_conll(f"{d}/it/evalita2009/train.tsv", None, "it")
    conll = read_conll(f"{d}/de/conll2003/train.tsv", None, "de")
    dev = {"kind-wn": read_conll(f"{d}/it/kind/WN_dev.tsv", "\t", "it"),
           "conll-de": read_conll(f"{d}/de/conll2003/dev.tsv", None, "de")}
    places = place_gazetteer(kind + evalita + conll)
    n = harmonise(kind, places)
    harmonise(dev["kind-wn"], places)  # model selection under Postilla's convention
    train = kind + evalita + conll
    if limit:
        rng = random.Random(0)
        train = rng.sample(train, min(limit, len(train)))
        dev = {k: v[: max(16, limit // 4)] for k, v in dev.items()}
    return train, dev, n, len(places)


def encode(tokenizer, sentences, max_length):
    enc = tokenizer([s["tokens"] for s in sentences], is_split_into_words=True, truncation=True,
                    max_length=max_length, padding=True, return_tensors="pt")
    labels, italian_o = [], []
    for i, s in enumerate(sentences):
        prev, row, io = None, [], []
        for w in enc.word_ids(i):
            if w is None or w == prev:
                row.append(-100); io.append(False)
            else:
                row.append(LABELS.index(s["tags"][w])); io.append(s["lang"] == "it" and s["tags"][w] == "O")
            prev = w
        labels.append(row); italian_o.append(io)
    return enc, labels, italian_o


def strict_f1(gold, pred, types=None):
    """Strict entity-level micro P, R, F1 over lists of tag sequences."""
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, pred):
        gs, ps = ({x for x in spans(tags, strict=True) if types is None or x[2] in types} for tags in (g, p))
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def predict_tags(torch, model, tokenizer, sentences, max_length, device, batch_size=64):
    """Word tags from the first sub-word of each word (aggregation "first"); words cut off by
    max_length are O."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(sentences), batch_size):
            batch = sentences[i:i + batch_size]
            enc = tokenizer([s["tokens"] for s in batch], is_split_into_words=True, truncation=True,
                            max_length=max_length, padding=True, return_tensors="pt")
            best = model(**{k: v.to(device) for k, v in enc.items()}).logits.argmax(-1).cpu()
            for j, s in enumerate(batch):
                tags, prev = ["O"] * len(s["tokens"]), None
                for k, w in enumerate(enc.word_ids(j)):
                    if w is not None and w != prev:
                        tags[w] = LABELS[int(best[j, k])]
                    prev = w
                out.append(tags)
    model.train()
    return out


def evaluate(torch, model, tokenizer, dev, max_length, device):
    """Strict micro-F1 on each development set: KIND WN (harmonised, PER/ORG/LOC: KIND has no
    MISC) and CoNLL-2003 German (all four types); `selection` is their mean."""
    scores = {}
    for name, sentences in dev.items():
        types = {"PER", "ORG", "LOC"} if name == "kind-wn" else None
        pred = predict_tags(torch, model, tokenizer, sentences, max_length, device)
        scores[name] = round(strict_f1([s["tags"] for s in sentences], pred, types)[2], 4)
    scores["selection"] = round(sum(scores.values()) / len(scores), 4)
    return scores


def save_compact(torch, model, out, max_bytes=15 * 2**20):
    """Saves only the trained parameters (everything but the frozen word embeddings, which the
    base model supplies) in fp16, in safetensors shards under `max_bytes` each: what a GPU run
    can bring back (files of at most 16 MiB) and what models/ner-it-de commits."""
    from safetensors.torch import save_file
    trained = {n: p.detach().to("cpu", torch.float16).contiguous() for n, p in model.named_parameters() if p.requires_grad}
    shards, current, size = [], {}, 0
    for name, t in trained.items():
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > max_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = t
        size += nbytes
    shards.append(current)
    for i, shard in enumerate(shards):
        save_file(shard, os.path.join(out, f"trained-{i + 1:02d}-of-{len(shards):02d}.safetensors"), metadata={"format": "pt"})
    model.config.to_json_file(os.path.join(out, "config.json"))
    return len(shards)


def loss_fn(torch, logits, labels, italian_o):
    """Cross-entropy; Italian O tokens get the partial label {O, B-MISC, I-MISC}."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    mask = labels != -100
    gold = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    misc = torch.logsumexp(logp[..., [0, 7, 8]], dim=-1)
    per_token = torch.where(italian_o, misc, gold)
    return -(per_token * mask).sum() / mask.sum().clamp(min=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=os.path.join(ROOT, "models", "e5-small"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=0, help="train on N sentences only (CPU smoke run)")
    ap.add_argument("--epochs", type=float, default=6)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--compact", action="store_true",
                    help="save only the trained weights in fp16 shards under 15 MiB (for a GPU run's $OUT)")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    train, dev, harmonised, n_places = load_data(args.data, args.limit)
    print(json.dumps({"train_sentences": len(train), "kind_org_to_loc": harmonised, "places": n_places}), flush=True)
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    model = AutoModelForTokenClassification.from_pretrained(
        args.base, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    model.to(args.device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total = max(1, int(steps_per_epoch * args.epochs))
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    step, losses, start = 0, [], time.time()
    history, best, best_state = [], None, None
    while step < total:
        random.shuffle(train)
        for i in range(0, len(train), args.batch_size):
            batch = train[i:i + args.batch_size]
            enc, labels, italian_o = encode(tokenizer, batch, args.max_length)
            enc = {k: v.to(args.device) for k, v in enc.items()}
            logits = model(**enc).logits
            loss = loss_fn(torch, logits, torch.tensor(labels, device=args.device),
                           torch.tensor(italian_o, device=args.device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            losses.append(loss.item()); step += 1
            if step % max(1, total // 20) == 0 or step == total:
                print(json.dumps({"step": step, "of": total, "loss": sum(losses[-20:]) / len(losses[-20:]),
                                  "seconds": round(time.time() - start, 1)}), flush=True)
            if step % steps_per_epoch == 0 or step >= total:
                # model selection on the development sets, after every epoch (never a test set)
                scores = {"step": step, "epoch": round(step / steps_per_epoch, 2),
                          **evaluate(torch, model, tokenizer, dev, args.max_length, args.device)}
                history.append(scores)
                print(json.dumps({"dev": scores}), flush=True)
                if best is None or scores["selection"] > best["selection"]:
                    best = scores
                    best_state = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}
            if step >= total:
                break
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in best_state:
                p.copy_(best_state[n])
    print(json.dumps({"selected": best}), flush=True)
    os.makedirs(args.out, exist_ok=True)
    if args.compact:
        save_compact(torch, model, args.out)
    else:
        model.save_pretrained(args.out, safe_serialization=True)
        tokenizer.save_pretrained(args.out)
    json.dump({"first_losses": losses[:10], "last_losses": losses[-10:], "steps": step, "dev": history,
               "selected": best, "args": vars(args)},
              open(os.path.join(args.out, "training-log.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
