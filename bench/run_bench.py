#!/usr/bin/env python3
"""`just bench`: Postilla and the Hugging Face pipeline on the same 300 documents, same model
directory, max length, stride, batch size and thread count; writes bench/results.json.
Peak RSS is each process's maximum resident set (getrusage), model loading included."""
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PY = os.path.join(ROOT, ".local", "venv", "bin", "python")
BATCH, MAX_LEN, STRIDE, THREADS = 16, 256, 64, 2


def main():
    work = os.path.join(ROOT, ".local", "bench")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "e5-ner-random")
    corpus = os.path.join(work, "corpus.jsonl")
    helper = os.path.join(ROOT, "bench", "hf_bench.py")
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        subprocess.run([PY, helper, "model", model], check=True)
    subprocess.run([PY, helper, "corpus", corpus], check=True)

    out = os.path.join(work, "postilla.jsonl")
    cmd = [os.path.join(ROOT, "target", "release", "postilla"), "annotate", corpus, "--no-topics", "--ner", model,
           "--batch-size", str(BATCH), "--max-length", str(MAX_LEN), "--stride", str(STRIDE),
           "--threads", str(THREADS), "-o", out]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    m = re.search(r"(\d+) documents, (\d+) entities, (\d+) errors in ([\d.]+) s", proc.stderr)
    docs, entities, seconds = int(m.group(1)), int(m.group(2)), float(m.group(4))
    hf = json.loads(subprocess.run([PY, helper, "hf", model, corpus, str(BATCH), str(MAX_LEN), str(STRIDE), str(THREADS)],
                                   capture_output=True, text=True, check=True).stdout)
    tokens = hf["tokens"]
    postilla = {"seconds": seconds, "wall_seconds_with_model_load": wall, "documents": docs,
                "docs_per_s": docs / seconds, "tokens_per_s": tokens / seconds, "entities": entities,
                "peak_rss_mb": max(rss, before) / 1024}
    results = {
        "task": "NER, aggregation first", "documents": docs, "tokens": tokens,
        "settings": {"batch_size": BATCH, "max_length": MAX_LEN, "stride": STRIDE, "threads": THREADS,
                     "model": "e5-small encoder + random 9-label head (bench/hf_bench.py model)"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "postilla": postilla, "hf_pipeline": hf,
        "ratio_docs_per_s": postilla["docs_per_s"] / hf["docs_per_s"],
        "ratio_peak_rss": postilla["peak_rss_mb"] / hf["peak_rss_mb"],
    }
    with open(os.path.join(ROOT, "bench", "results.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
