#!/usr/bin/env python3
"""`just bench`: Postilla side by side with the Python reference implementations, on the same
documents, model directories, batch size and thread count; writes bench/results.json.

Tasks:
  ner               300 news documents (bench/hf_bench.py corpus), the default NER model
                    models/ner-it-de; Postilla vs pipeline("token-classification",
                    aggregation_strategy="first") on the same directory, max length 256, stride 64,
                    at each precision this processor runs: fp32 and int8 always (Hugging Face
                    int8: torch.ao.quantization.quantize_dynamic), bf16 where the processor has
                    bf16 instructions (Hugging Face bf16: torch.autocast). Per precision: speed
                    and memory on both sides, the share of Postilla's entity spans identical to
                    its fp32 spans, and the strict F1 on KIND WN dev and CoNLL-2003 German dev
                    (scripts/ner_accuracy.sh dev; POSTILLA_BENCH_ACCURACY=0 skips it). Headline
                    ratios: Postilla at its default precision against the fp32 pipeline (as
                    users run it) and against the pipeline at the same precision. Postilla runs
                    with --context 0, reading each document alone as the pipeline does.
  topics_embedding  the same 300 documents, news taxonomy; Postilla's embedding method vs a
                    sentence-transformers-style loop over the same model and windows.
  topics_nli        SIB-200 Italian + German train sentences (1,402), news taxonomy; Postilla's NLI
                    method vs pipeline("zero-shot-classification"), tiny random NLI model
                    (tests/support/hf_nli_reference.py): this measures the pipelines' overhead.

Timings exclude model loading on both sides (Postilla's own summary line, the Python side's
timer starts after its pipeline is built). Each side runs REPEATS times, alternating with the
other side, and its fastest run is reported (all run times are kept in `runs_s`): shared
virtual machines slow a whole run down by 10-25 % at random, and alternating best-of-N treats
both sides alike. Peak RSS is each process's maximum resident set (getrusage), model loading
included, the largest over the runs. `top_topic_agreement` checks that both sides computed the
same thing.
"""
import csv
import json
import os
import platform
import re
import resource
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PY = os.path.join(ROOT, ".local", "venv", "bin", "python")
POSTILLA = os.path.join(ROOT, "target", "release", "postilla")
HELPER = os.path.join(ROOT, "bench", "hf_bench.py")
NEWS = os.path.join(ROOT, "taxonomies", "news.toml")
ADAPTER = os.path.join(ROOT, "models", "topic-adapters", "e5-small.safetensors")
BATCH, MAX_LEN, STRIDE, THREADS = 16, 256, 64, 2
REPEATS = int(os.environ.get("POSTILLA_BENCH_REPEATS", "2"))
ACCURACY = os.environ.get("POSTILLA_BENCH_ACCURACY", "1") != "0"


def postilla(args, out):
    """Runs `postilla annotate`; returns its timing, peak RSS and records."""
    cmd = [POSTILLA, "annotate", *args, "--batch-size", str(BATCH), "--threads", str(THREADS), "-o", out]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr}")
    m = re.search(r"(\d+) documents, (\d+) entities, (\d+) errors in ([\d.]+) s", stderr)
    docs, seconds = int(m.group(1)), float(m.group(4))
    records = [json.loads(l) for l in open(out, encoding="utf-8")]
    return {"seconds": seconds, "documents": docs, "docs_per_s": docs / seconds,
            "entities": int(m.group(2)),
            # the maximum over this interpreter's children: measure() runs each side in a fresh one
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}, records


def python(*args):
    out = subprocess.run([PY, HELPER, *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"hf_bench.py {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def measure(task):
    """Runs one side of one task in its own Python process so that peak RSS is its own."""
    out = subprocess.run([PY, __file__, "--one", json.dumps(task)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)


def best_of(python_task, postilla_task):
    """Runs the two sides REPEATS times, alternating; per side, the fastest run with every
    run's seconds (`runs_s`) and the largest peak RSS."""
    runs = {"python": [], "postilla": []}
    for _ in range(REPEATS):
        runs["python"].append(measure(python_task))
        runs["postilla"].append(measure(postilla_task))
    best = {}
    for side, results in runs.items():
        fastest = dict(min(results, key=lambda r: r["seconds"]))
        fastest["runs_s"] = [round(r["seconds"], 2) for r in results]
        fastest["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
        best[side] = fastest
    return best["postilla"], best["python"]


def bf16_native():
    """Whether this processor has bf16 instructions (Postilla refuses bf16 elsewhere)."""
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def entity_spans(path):
    return {(r["id"], e["start"], e["end"], e["label"]) for r in map(json.loads, open(path, encoding="utf-8"))
            for e in r.get("entities", [])}


def dev_f1(precision):
    """Strict micro-F1 on the development sets through scripts/ner_accuracy.sh."""
    flags = [] if precision == "fp32" else ["--precision", precision]  # the script pins fp32 itself
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "ner_accuracy.sh"), "dev", "models/ner-it-de", *flags],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    out = os.path.join(ROOT, "out", "ner-accuracy", "dev" + ("" if precision == "fp32" else f"+precision+{precision}"))
    scores = {}
    for key, name in (("kind_wn_dev", "KIND WN dev (Postilla convention)"), ("conll_de_dev", "CoNLL-2003 de dev, documents")):
        report = json.load(open(os.path.join(out, f"{name}.eval.json"), encoding="utf-8"))
        scores[key] = round(report["entities"]["strict"]["micro"]["f1"], 4)
    return scores


def default_precision():
    """The precision Postilla's default (no `--precision` flag) runs on this machine: what the
    provenance of a default run on the seeds records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "seeds.jsonl")
        subprocess.run([POSTILLA, "annotate", os.path.join(ROOT, "seeds"), "--no-topics", "-o", out],
                       check=True, cwd=ROOT, capture_output=True)
        record = json.loads(open(out, encoding="utf-8").readline())
    return record["provenance"]["params"]["precision"]


def cpu_model():
    """The processor's model name and vendor (Linux), for results.json."""
    info = {}
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "vendor_id") and key.strip() not in info:
                info[key.strip()] = value.strip()
    except OSError:
        pass
    return info


def one(task):
    kind = task["kind"]
    if kind == "postilla":
        result, records = postilla(task["args"], task["out"])
        result["top"] = [r["topics"][0]["label"] if r.get("topics") else None for r in records]
        return result
    return python(kind, *task["args"])


def sib_corpus(path):
    data = os.path.join(ROOT, "..", "shared", "data", "topics", "sib200")
    with open(path, "w", encoding="utf-8") as f:
        for lang, code in (("ita_Latn", "it"), ("deu_Latn", "de")):
            for row in csv.DictReader(open(os.path.join(data, lang, "train.tsv"), encoding="utf-8"), delimiter="\t"):
                f.write(json.dumps({"id": f"{code}-{row['index_id']}", "text": row["text"], "lang": code},
                                   ensure_ascii=False) + "\n")


def side_by_side(name, ours, theirs, tokens=None):
    result = {"postilla": ours, "python": theirs,
              "ratio_docs_per_s": ours["docs_per_s"] / theirs["docs_per_s"],
              "ratio_peak_rss": ours["peak_rss_mb"] / theirs["peak_rss_mb"]}
    if tokens:
        ours["tokens_per_s"] = tokens / ours["seconds"]
    a, b = ours.pop("top", None), theirs.pop("top", None)
    if a and b and any(a):
        result["top_topic_agreement"] = sum(x == y for x, y in zip(a, b)) / len(a)
    print(f"{name}: Postilla {ours['docs_per_s']:.2f} docs/s, {ours['peak_rss_mb']:.0f} MB; "
          f"Python {theirs['docs_per_s']:.2f} docs/s, {theirs['peak_rss_mb']:.0f} MB; "
          f"ratio {result['ratio_docs_per_s']:.2f}x speed, {result['ratio_peak_rss']:.2f}x memory")
    return result


def main():
    work = os.path.join(ROOT, ".local", "bench")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(ROOT, "models", "ner-it-de")
    nli = os.path.join(work, "nli")
    corpus = os.path.join(work, "corpus.jsonl")
    sib = os.path.join(work, "sib200-train.jsonl")
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        raise SystemExit(f"{model} is not built: run `just setup`")
    if not os.path.exists(os.path.join(nli, "entail-last", "model.safetensors")):
        subprocess.run([PY, os.path.join(ROOT, "tests", "support", "hf_nli_reference.py"), "make-models", nli], check=True)
    subprocess.run([PY, HELPER, "corpus", corpus], check=True)
    sib_corpus(sib)
    e5 = os.path.join(ROOT, "models", "e5-small")
    nli_model = os.path.join(nli, "entail-last")

    precisions = ["fp32", "int8"] + (["bf16"] if bf16_native() else [])
    default = default_precision()
    per_precision = {}
    for precision in precisions:
        out = os.path.join(work, f"ner.{precision}.jsonl")
        ours, theirs = best_of(
            {"kind": "hf", "args": [model, corpus, BATCH, MAX_LEN, STRIDE, THREADS, precision]},
            # --context 0: each document read alone, as the pipeline reads it (the same work;
            # the default context's cost is measured apart, README *Speed*)
            {"kind": "postilla", "out": out, "args": [
                corpus, "--no-topics", "--ner", model, "--max-length", str(MAX_LEN), "--stride", str(STRIDE),
                "--precision", precision, "--context", "0"]})
        per_precision[precision] = side_by_side(f"ner {precision}", ours, theirs, tokens=theirs["tokens"])
    fp32_spans = entity_spans(os.path.join(work, "ner.fp32.jsonl"))
    for precision, result in per_precision.items():
        spans = entity_spans(os.path.join(work, f"ner.{precision}.jsonl"))
        result["spans_identical_to_fp32"] = round(len(spans & fp32_spans) / max(len(fp32_spans), 1), 4)
        if ACCURACY:
            result["dev_f1"] = dev_f1(precision)
        print(f"ner {precision}: {result['spans_identical_to_fp32']:.4f} of the fp32 spans identical"
              + (f", dev F1 {result['dev_f1']}" if ACCURACY else ""))
    ours = per_precision[default]["postilla"]
    ner = {"default_precision": default,
           "ratio_docs_per_s_vs_fp32_pipeline": ours["docs_per_s"] / per_precision["fp32"]["python"]["docs_per_s"],
           "ratio_docs_per_s_vs_same_precision_pipeline": per_precision[default]["ratio_docs_per_s"],
           "ratio_peak_rss_vs_fp32_pipeline": ours["peak_rss_mb"] / per_precision["fp32"]["python"]["peak_rss_mb"],
           "precisions": per_precision}
    print(f"ner, Postilla at its default precision ({default}): {ner['ratio_docs_per_s_vs_fp32_pipeline']:.2f}x the "
          f"fp32 pipeline, {ner['ratio_docs_per_s_vs_same_precision_pipeline']:.2f}x the {default} pipeline, "
          f"{ner['ratio_peak_rss_vs_fp32_pipeline']:.2f}x its memory")
    emb_ours, emb_py = best_of(
        {"kind": "embed", "args": [e5, corpus, NEWS, BATCH, THREADS, ADAPTER]},
        {"kind": "postilla", "out": os.path.join(work, "emb.jsonl"), "args": [corpus, "--no-ner", "--topics", NEWS]})
    emb = side_by_side("topics_embedding", emb_ours, emb_py, tokens=emb_py["tokens"])
    zs_ours, zs_py = best_of(
        {"kind": "zeroshot", "args": [nli_model, sib, NEWS, BATCH, THREADS]},
        {"kind": "postilla", "out": os.path.join(work, "nli.jsonl"), "args": [
            sib, "--no-ner", "--topics", NEWS, "--topic-method", "nli", "--topic-model", nli_model]})
    zs = side_by_side("topics_nli", zs_ours, zs_py, tokens=zs_py["tokens"])

    results = {
        "command": "just bench",
        "settings": {"batch_size": BATCH, "max_length": MAX_LEN, "stride": STRIDE, "threads": THREADS,
                     "repeats": REPEATS, "reported": "fastest run per side"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), **cpu_model(), "bf16_native": bf16_native()},
        "ner": {"documents": per_precision["fp32"]["python"]["documents"], "tokens": per_precision["fp32"]["python"]["tokens"],
                "model": "models/ner-it-de (the default NER model)",
                "postilla_engine": "fused forward, --matmul auto (oneDNN on AMD processors, MKL elsewhere)",
                "reference": "transformers 4.46.3 pipeline('token-classification', aggregation_strategy='first'); "
                             "int8: torch.ao.quantization.quantize_dynamic (qint8 linear layers); bf16: torch.autocast",
                "bf16": "measured" if "bf16" in precisions else "skipped: this processor has no avx512_bf16/amx_bf16 (Postilla refuses bf16 here)",
                "dev_f1": "strict micro-F1, scripts/ner_accuracy.sh dev: KIND WN dev (Postilla's place convention, PER/ORG/LOC) and CoNLL-2003 German dev (whole documents, four types)",
                **ner},
        "topics_embedding": {"documents": emb_py["documents"], "model": "models/e5-small",
                             "adapter": "models/topic-adapters/e5-small.safetensors (the default, on both sides)",
                             "taxonomy": "taxonomies/news.toml",
                             "reference": "sentence-transformers-style loop (bench/hf_bench.py embed)", **emb},
        "topics_nli": {"documents": zs_py["documents"], "model": "tiny random BERT NLI (entail-last)",
                       "taxonomy": "taxonomies/news.toml",
                       "reference": "transformers 4.46.3 pipeline('zero-shot-classification')", **zs},
    }
    with open(os.path.join(ROOT, "bench", "results.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one(json.loads(sys.argv[2]))))
    else:
        main()
