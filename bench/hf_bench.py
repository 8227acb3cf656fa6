#!/usr/bin/env python3
"""Benchmark support (`just bench`): builds the benchmark model and corpus, and times the
Hugging Face token-classification pipeline on them.

  model OUT_DIR          e5-small encoder (models/e5-small) + a random 9-label token
                         classification head, saved with save_pretrained (safetensors): a model
                         of the default model's size, for speed only (its labels are noise).
  corpus OUT.jsonl       300 documents: the 5 seeds, CoNLL-2003 German dev documents and
                         KIND WN dev sentences grouped 20 per document (news of realistic length).
  hf MODEL CORPUS BATCH MAX_LEN STRIDE THREADS [PRECISION]
                         pipeline("token-classification", aggregation_strategy="first") over
                         the corpus; prints JSON: seconds, documents/s, tokens/s, peak RSS.
                         PRECISION: fp32 (default, as users run it), int8 (the model through
                         torch.ao.quantization.quantize_dynamic, qint8 linear layers) or bf16
                         (the pipeline under torch.autocast("cpu", dtype=torch.bfloat16)).
  embed MODEL CORPUS TAXONOMY BATCH THREADS [ADAPTER]
                         the embedding topic method as a sentence-transformers-style loop:
                         "query: " prefix, the same windows of max_position_embeddings - 2
                         content tokens as Postilla, batches sorted by length, mean pooling,
                         L2 norm, then (with ADAPTER, a topic adapter file) normalise(x + x U V^T)
                         on documents and descriptions, cosine with each topic's mean
                         description embedding; prints JSON with the top topic of every document.
  zeroshot MODEL CORPUS TAXONOMY BATCH THREADS
                         pipeline("zero-shot-classification") with the taxonomy's labels and
                         template in each document's language (from its "lang" field).
"""
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training"))
import e5_common  # noqa: E402

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
            text = open(os.path.join(ROOT, "seeds", f), encoding="utf-8").read()
            words = text.lower().split()
            german = sum(words.count(w) for w in ("der", "die", "und")) > sum(words.count(w) for w in ("il", "che", "di"))
            docs.append({"id": "seed-" + f[:-4], "text": text, "lang": "de" if german else "it"})
    # CoNLL-2003 German dev: one document per -DOCSTART- block
    cur, sent, n = [], [], 0
    for line in open(os.path.join(data, "ner/de/conll2003/dev.tsv"), encoding="utf-8"):
        line = line.strip()
        if line.startswith("-DOCSTART-"):
            if cur:
                docs.append({"id": f"conll-de-{n:04}", "text": "\n".join(cur), "lang": "de"}); n += 1; cur = []
        elif not line:
            if sent:
                cur.append(" ".join(sent)); sent = []
        else:
            sent.append(line.split()[0])
    if cur:
        docs.append({"id": f"conll-de-{n:04}", "text": "\n".join(cur), "lang": "de"})
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
        docs.append({"id": f"kind-{i // 20:04}", "text": " ".join(sents[i:i + 20]), "lang": "it"})
    with open(out, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


def hf(model_dir, corpus_path, batch, max_len, stride, threads, precision="fp32"):
    import contextlib
    import torch
    from transformers import AutoTokenizer, pipeline
    torch.set_num_threads(threads)
    texts = [json.loads(l)["text"] for l in open(corpus_path, encoding="utf-8")]
    tok = AutoTokenizer.from_pretrained(model_dir, model_max_length=max_len)
    pipe = pipeline("token-classification", model=model_dir, tokenizer=tok, aggregation_strategy="first",
                    stride=stride, device="cpu")
    if precision == "int8":
        pipe.model = torch.ao.quantization.quantize_dynamic(pipe.model, {torch.nn.Linear}, dtype=torch.qint8)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    n_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
    start = time.perf_counter()
    with torch.inference_mode(), autocast:
        out = pipe(texts, batch_size=batch)
    seconds = time.perf_counter() - start
    entities = sum(len(o) for o in out)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "documents": len(texts), "docs_per_s": len(texts) / seconds,
                      "tokens": n_tokens, "tokens_per_s": n_tokens / seconds, "entities": entities,
                      "peak_rss_mb": rss_mb}))


def _taxonomy(path):
    import tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def _lang_of(doc):
    return doc["lang"]


def embed(model_dir, corpus_path, taxonomy_path, batch, threads, adapter_path=None):
    import torch
    from transformers import AutoModel, AutoTokenizer
    torch.set_num_threads(threads)
    docs = [json.loads(l) for l in open(corpus_path, encoding="utf-8")]
    tax = _taxonomy(taxonomy_path)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval()

    def encode(texts):
        # Postilla's windows, pooling and normalisation (training/e5_common.py)
        return torch.from_numpy(e5_common.embed((tok, model), texts, batch))

    adapt = lambda x: x  # noqa: E731
    if adapter_path:
        from safetensors.torch import load_file
        w = load_file(adapter_path)
        adapt = lambda x: torch.nn.functional.normalize(x + (x @ w["u"]) @ w["v"].T, dim=-1)  # noqa: E731
    protos = {}
    for lang in tax["languages"]:
        rows = []
        for t in tax["topics"]:
            d = t[lang]["description"]
            rows.append(torch.nn.functional.normalize(adapt(encode([d] if isinstance(d, str) else d)).mean(0), dim=0))
        protos[lang] = torch.stack(rows)
    ids = [t["id"] for t in tax["topics"]]
    n_tokens = sum(len(tok(d["text"], add_special_tokens=False)["input_ids"]) for d in docs)
    start = time.perf_counter()
    vecs = adapt(encode([d["text"] for d in docs]))
    top = [ids[int((protos[_lang_of(d)] @ v).argmax())] for d, v in zip(docs, vecs)]
    seconds = time.perf_counter() - start
    _report(seconds, len(docs), n_tokens, {"top": top})


def zeroshot(model_dir, corpus_path, taxonomy_path, batch, threads):
    import torch
    from transformers import AutoConfig, AutoTokenizer, pipeline
    torch.set_num_threads(threads)
    docs = [json.loads(l) for l in open(corpus_path, encoding="utf-8")]
    tax = _taxonomy(taxonomy_path)
    # truncate the premise at the model's length (the tiny model's tokenizer does not store it)
    length = AutoConfig.from_pretrained(model_dir).max_position_embeddings
    tok = AutoTokenizer.from_pretrained(model_dir, model_max_length=length)
    pipe = pipeline("zero-shot-classification", model=model_dir, tokenizer=tok, device="cpu")
    label_to_id = {t[lang]["label"]: t["id"] for t in tax["topics"] for lang in tax["languages"]}
    n_tokens = sum(len(pipe.tokenizer(d["text"], add_special_tokens=False)["input_ids"]) for d in docs)
    top = [None] * len(docs)
    start = time.perf_counter()
    for lang in tax["languages"]:
        idx = [i for i, d in enumerate(docs) if _lang_of(d) == lang]
        if not idx:
            continue
        labels = [t[lang]["label"] for t in tax["topics"]]
        with torch.inference_mode():
            out = pipe([docs[i]["text"] for i in idx], candidate_labels=labels,
                       hypothesis_template=tax["templates"][lang], batch_size=batch)
        for i, r in zip(idx, out):
            top[i] = label_to_id[r["labels"][0]]
    seconds = time.perf_counter() - start
    _report(seconds, len(docs), n_tokens, {"top": top})


def _report(seconds, n_docs, n_tokens, extra):
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "documents": n_docs, "docs_per_s": n_docs / seconds, "tokens": n_tokens,
                      "tokens_per_s": n_tokens / seconds, "peak_rss_mb": rss_mb, **extra}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "model":
        model(sys.argv[2])
    elif cmd == "corpus":
        corpus(sys.argv[2])
    elif cmd == "hf":
        hf(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), *sys.argv[8:9])
    elif cmd == "embed":
        embed(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), *sys.argv[7:8])
    elif cmd == "zeroshot":
        zeroshot(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(__doc__)
