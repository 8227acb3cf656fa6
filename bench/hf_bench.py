#!/usr/bin/env python3
"""Benchmark support (`just bench`): builds the benchmark model and corpus, and times the
Hugging Face token-classification pipeline on them.

  model OUT_DIR          e5-small encoder (models/e5-small) + a random 9-label token
                         classification head, saved with save_pretrained (safetensors): a model
                         of the default model's size, for speed only (its labels are noise).
  corpus OUT.jsonl       300 documents: the 5 seeds, CoNLL-2003 German dev documents and
                         KIND WN dev sentences grouped 20 per document (news of realistic length).
  hf MODEL CORPUS BATCH MAX_LEN STRIDE THREADS
                         pipeline("token-classification", aggregation_strategy="first") over
                         the corpus; prints JSON: seconds, documents/s, tokens/s, peak RSS.
"""
import json
import os
import resource
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def model(out):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    torch.manual_seed(0)
    m = AutoModelForTokenClassification.from_pretrained(
        os.path.join(ROOT, "models", "e5-small"), num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    m.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(os.path.join(ROOT, "models", "e5-small")).save_pretrained(out)


def corpus(out):
    data = os.path.join(ROOT, "..", "shared", "data")
    docs = []
    for f in sorted(os.listdir(os.path.join(ROOT, "seeds"))):
        if f.endswith(".txt"):
            docs.append({"id": "seed-" + f[:-4], "text": open(os.path.join(ROOT, "seeds", f), encoding="utf-8").read()})
    # CoNLL-2003 German dev: one document per -DOCSTART- block
    cur, sent, n = [], [], 0
    for line in open(os.path.join(data, "ner/de/conll2003/dev.tsv"), encoding="utf-8"):
        line = line.strip()
        if line.startswith("-DOCSTART-"):
            if cur:
                docs.append({"id": f"conll-de-{n:04}", "text": "\n".join(cur)}); n += 1; cur = []
        elif not line:
            if sent:
                cur.append(" ".join(sent)); sent = []
        else:
            sent.append(line.split()[0])
    if cur:
        docs.append({"id": f"conll-de-{n:04}", "text": "\n".join(cur)})
    docs = docs[:170]
    # KIND WN dev: 20 sentences per document
    sents, sent = [], []
    for line in open(os.path.join(data, "ner/it/kind/WN_dev.tsv"), encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            if sent:
                sents.append(" ".join(sent)); sent = []
        else:
            sent.append(line.split("\t")[0])
    for i in range(0, len(sents), 20):
        if len(docs) >= 300:
            break
        docs.append({"id": f"kind-{i // 20:04}", "text": " ".join(sents[i:i + 20])})
    with open(out, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


def hf(model_dir, corpus_path, batch, max_len, stride, threads):
    import torch
    from transformers import AutoTokenizer, pipeline
    torch.set_num_threads(threads)
    texts = [json.loads(l)["text"] for l in open(corpus_path, encoding="utf-8")]
    tok = AutoTokenizer.from_pretrained(model_dir, model_max_length=max_len)
    pipe = pipeline("token-classification", model=model_dir, tokenizer=tok, aggregation_strategy="first",
                    stride=stride, device="cpu")
    n_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
    start = time.perf_counter()
    with torch.inference_mode():
        out = pipe(texts, batch_size=batch)
    seconds = time.perf_counter() - start
    entities = sum(len(o) for o in out)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "documents": len(texts), "docs_per_s": len(texts) / seconds,
                      "tokens": n_tokens, "tokens_per_s": n_tokens / seconds, "entities": entities,
                      "peak_rss_mb": rss_mb}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "model":
        model(sys.argv[2])
    elif cmd == "corpus":
        corpus(sys.argv[2])
    elif cmd == "hf":
        hf(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    else:
        sys.exit(__doc__)
