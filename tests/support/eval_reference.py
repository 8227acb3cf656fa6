#!/usr/bin/env python3
"""Reference scores for `postilla eval`, computed by the tools researchers cite (test-only).

  perturb GOLD.jsonl OUT.jsonl SEED
      Seeded predictions made from gold records: entities dropped, shifted by a token,
      relabelled, split in two, merged with a neighbour, and spurious ones added (token-level,
      so the result is valid IOB2); topics relabelled. Predictions carry no text.

  ner GOLD.jsonl PRED.jsonl
      JSON with seqeval's strict IOB2 classification_report (per type, micro avg, macro avg)
      and nervaluate's four schemas (overall and per type), on the same documents.

  topics GOLD.jsonl PRED.jsonl
      JSON with scikit-learn's classification_report and confusion_matrix.

  multilabel GOLD.jsonl PRED.jsonl
      JSON with scikit-learn's precision_recall_fscore_support over MultiLabelBinarizer sets.

Spans go to nervaluate as {"label", "start", "end"} with an inclusive end in code points (its
convention); to seqeval as IOB2 tags over the gold tokens.
"""
import json
import random
import sys


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def token_tags(record, spans):
    tokens = record["tokens"]
    tags = ["O"] * len(tokens)
    start_of = {t[0]: i for i, t in enumerate(tokens)}
    end_of = {t[1]: i for i, t in enumerate(tokens)}
    for s, e, label in spans:
        a, b = start_of[s], end_of[e]
        tags[a] = "B-" + label
        for i in range(a + 1, b + 1):
            tags[i] = "I-" + label
    return tags


def tags_to_token_spans(tags):
    spans, cur = [], None
    for i, t in enumerate(tags + ["O"]):
        if t == "O" or t.startswith("B-") or (cur and t[2:] != cur[2]):
            if cur:
                spans.append(tuple(cur))
                cur = None
        if t.startswith("B-") or (t.startswith("I-") and cur is None):
            cur = [i, i, t[2:]]
        elif t.startswith("I-"):
            cur[1] = i
    return spans


def perturb(gold_path, out_path, seed):
    rng = random.Random(seed)
    gold = read(gold_path)
    types = sorted({e["label"] for r in gold for e in r["entities"]}) or ["X"]
    topic_labels = sorted({t["label"] for r in gold for t in r.get("topics", [])})
    out = []
    for r in gold:
        pred = {"schema": "postilla/1", "id": r["id"], "text_sha256": r["text_sha256"], "entities": [], "topics": []}
        if r.get("tokens") is not None:
            tokens = r["tokens"]
            n = len(tokens)
            gold_tok = tags_to_token_spans(token_tags(r, [(e["start"], e["end"], e["label"]) for e in r["entities"]]))
            spans = []
            i = 0
            while i < len(gold_tok):
                a, b, lab = gold_tok[i]
                i += 1
                x = rng.random()
                if x < 0.08:
                    continue  # dropped
                if x < 0.16:
                    lab = rng.choice([t for t in types if t != lab] or types)  # relabelled
                elif x < 0.24:
                    a = min(n - 1, max(0, a + rng.choice([-1, 0, 1])))  # shifted
                    b = min(n - 1, max(0, b + rng.choice([-1, 0, 1])))
                    if a > b:
                        a, b = b, a
                elif x < 0.30 and b > a:
                    m = rng.randint(a, b - 1)  # split
                    spans.append((a, m, lab))
                    a = m + 1
                elif x < 0.36 and i < len(gold_tok) and gold_tok[i][0] - b <= 3:
                    b = gold_tok[i][1]  # merged with the next entity
                    i += 1
                spans.append((a, b, lab))
            for _ in range(1 if rng.random() < 0.3 else 0):  # spurious
                a = rng.randrange(n)
                spans.append((a, min(n - 1, a + rng.randint(0, 2)), rng.choice(types)))
            # resolve overlaps at token level: later spans overwrite earlier ones
            tags = ["O"] * n
            for (a, b, lab) in spans:
                tags[a] = "B-" + lab
                for i in range(a + 1, b + 1):
                    tags[i] = "I-" + lab
            for (a, b, lab) in tags_to_token_spans(tags):
                pred["entities"].append({"start": tokens[a][0], "end": tokens[b][1], "label": lab,
                                         "text": "x", "score": round(rng.random(), 6)})
        for t in r.get("topics", []):
            label = t["label"] if rng.random() > 0.3 else rng.choice(topic_labels)
            pred["topics"].append({"label": label, "score": 0.5})
        out.append(pred)
    with open(out_path, "w", encoding="utf-8") as f:
        for p in out:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")


def fix_surfaces(gold, pred):
    """Entity surfaces of predictions from the gold text (perturb writes placeholders)."""
    texts = {r["id"]: r["text"] for r in gold}
    for p in pred:
        for e in p["entities"]:
            e["text"] = texts[p["id"]][e["start"]:e["end"]]


def ner(gold_path, pred_path):
    from nervaluate import Evaluator
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    gold, pred = read(gold_path), read(pred_path)
    by_id = {p["id"]: p for p in pred}
    types = sorted({e["label"] for r in gold for e in r["entities"]})
    y_true, y_pred, n_true, n_pred = [], [], [], []
    for g in gold:
        p = by_id[g["id"]]
        gs = [(e["start"], e["end"], e["label"]) for e in g["entities"] if e["label"] in types]
        ps = [(e["start"], e["end"], e["label"]) for e in p["entities"] if e["label"] in types]
        y_true.append(token_tags(g, gs))
        y_pred.append(token_tags(g, ps))
        n_true.append([{"label": l, "start": s, "end": e - 1} for s, e, l in sorted(gs)])
        n_pred.append([{"label": l, "start": s, "end": e - 1} for s, e, l in sorted(ps)])
    report = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    seqeval = {k: {m: float(v[m]) for m in ("precision", "recall", "f1-score", "support")} for k, v in report.items()}
    results = Evaluator(n_true, n_pred, tags=types, loader="dict").evaluate()
    def dump(r):
        return {k: getattr(r, k) for k in ("correct", "incorrect", "partial", "missed", "spurious",
                                           "precision", "recall", "f1", "actual", "possible")}
    nerv = {"overall": {s: dump(r) for s, r in results["overall"].items()},
            "entities": {t: {s: dump(r) for s, r in d.items()} for t, d in results["entities"].items()}}
    json.dump({"seqeval": seqeval, "nervaluate": nerv}, sys.stdout)


def topics(gold_path, pred_path):
    from sklearn.metrics import classification_report, confusion_matrix
    gold, pred = read(gold_path), read(pred_path)
    by_id = {p["id"]: p for p in pred}
    y_true = [g["topics"][0]["label"] for g in gold]
    y_pred = [by_id[g["id"]]["topics"][0]["label"] if by_id[g["id"]]["topics"] else "<none>" for g in gold]
    labels = sorted(set(y_true) | set(y_pred))
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    json.dump({"report": report, "labels": labels, "confusion": cm}, sys.stdout)


def multilabel(gold_path, pred_path):
    from sklearn.metrics import precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer
    gold, pred = read(gold_path), read(pred_path)
    by_id = {p["id"]: p for p in pred}
    y_true = [[t["label"] for t in g["topics"]] for g in gold]
    y_pred = [[t["label"] for t in by_id[g["id"]]["topics"]] for g in gold]
    mlb = MultiLabelBinarizer()
    mlb.fit(y_true + y_pred)
    yt, yp = mlb.transform(y_true), mlb.transform(y_pred)
    out = {}
    for avg in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(yt, yp, average=avg, zero_division=0)
        out[avg] = {"precision": p, "recall": r, "f1": f}
    per = precision_recall_fscore_support(yt, yp, average=None, zero_division=0)
    out["per_class"] = {l: {"precision": per[0][i], "recall": per[1][i], "f1": per[2][i], "support": int(per[3][i])}
                        for i, l in enumerate(mlb.classes_)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "perturb":
        perturb(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        gold, pred = read(sys.argv[2]), read(sys.argv[3])
        fix_surfaces(gold, pred)
        with open(sys.argv[3], "w", encoding="utf-8") as f:
            for p in pred:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    elif cmd == "ner":
        ner(sys.argv[2], sys.argv[3])
    elif cmd == "topics":
        topics(sys.argv[2], sys.argv[3])
    elif cmd == "multilabel":
        multilabel(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
