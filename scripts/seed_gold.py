#!/usr/bin/env python3
"""Builds seeds/gold.jsonl (postilla/1 gold records) from the hand annotation seeds/gold.tsv.

Each TSV line names a document, a label and a surface, in text order; the surface is searched
after the end of the previous entity of the same document, on word boundaries (the characters
around it are not letters or digits). Offsets are code points. Fails loudly when a surface is
not found. Also lists capitalised words that no entity covers, for the annotator to review.

Usage: python3 scripts/seed_gold.py [--check]   (--check: compare with the committed file)
"""
import hashlib
import json
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def build():
    seeds = os.path.join(ROOT, "seeds")
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(seeds, "gold.tsv"), encoding="utf-8")
            if l.strip() and not l.startswith("#")]
    docs = sorted(f[:-4] for f in os.listdir(seeds) if f.endswith(".txt"))
    out, review = [], []
    for doc in docs:
        text = open(os.path.join(seeds, doc + ".txt"), encoding="utf-8").read()
        pos, entities = 0, []
        for d, label, surface in rows:
            if d != doc:
                continue
            while True:
                i = text.find(surface, pos)
                if i < 0:
                    sys.exit(f"{doc}: {surface!r} ({label}) not found after offset {pos}")
                before = text[i - 1] if i > 0 else " "
                after = text[i + len(surface)] if i + len(surface) < len(text) else " "
                if not before.isalnum() and not after.isalnum():
                    break
                pos = i + 1
            entities.append({"start": i, "end": i + len(surface), "label": label, "text": surface})
            pos = i + len(surface)
        covered = set()
        for e in entities:
            covered.update(range(e["start"], e["end"]))
        for m in re.finditer(r"\b[A-ZÄÖÜ][\w’'-]*", text):
            if m.start() not in covered and m.start() > 0 and text[m.start() - 2:m.start()] not in (". ", "\n\n"):
                review.append(f"{doc}: uncovered capitalised {m.group()!r} at {m.start()}")
        out.append({"schema": "postilla/1", "id": doc, "source": f"seeds/{doc}.txt",
                    "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "text": text,
                    "entities": entities, "topics": [{"label": "politics"}]})
    return out, review


def main():
    records, review = build()
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path = os.path.join(ROOT, "seeds", "gold.jsonl")
    if "--check" in sys.argv:
        if open(path, encoding="utf-8").read() != lines:
            sys.exit("seeds/gold.jsonl is out of date: run python3 scripts/seed_gold.py")
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(lines)
    for r in review:
        print(r, file=sys.stderr)
    print(f"wrote {sum(len(r['entities']) for r in records)} entities in {len(records)} documents", file=sys.stderr)


if __name__ == "__main__":
    main()
