#!/usr/bin/env python3
"""Postilla's recipe for the default Italian/German NER model (PER, ORG, LOC, MISC; IOB2),
fine-tuned from models/e5-small on the gold training sets of ../shared/data, on CPU.

    python3 training/train_ner.py --out OUT_DIR [--limit N] [--epochs E] [--threads T] [--device cuda]

The recipe (`just train-ner`, training/recipe.py): two runs of five epochs from scratch with
layer-wise learning-rate decay that differ only in their data seed, then their greedy weight
soup (training/soup.py), chosen on dev; `--precision auto` trains under bf16 autocast on AMD
processors with AVX512-BF16 and on AMX, in fp32 elsewhere:
    python3 training/train_ner.py --out .local/ner-train-a --epochs 5 --lr 3e-4 --layer-decay 0.8 --seed 13 \
        --precision auto --compact --threads 2 --data-seed 13
    python3 training/train_ner.py --out .local/ner-train-b ... --data-seed 29
    python3 training/soup.py --out .local/ner-train-soup --threads 2 .local/ner-train-a .local/ner-train-b
Earlier shipped models (stages 1-7: a five-epoch run, continuation epochs with `--init`, weight
soups, one fp32 run of these rates) and every command are in models/ner-it-de/README.md.
Continuing from the shipped model: --init models/ner-it-de. `--data-seed S` draws the data
(news spacing, windows, batches) from S while `--seed` keeps the classifier head's start: runs
that differ only in their data seed are ingredients a weight soup can average. `--ema DECAYS`
adds exponential moving averages of the weights as selection candidates.
CPU smoke run: just train-smoke

Data: KIND WN/FIC/ADG train, EVALITA-2009 train, CoNLL-2003 German train (gold); optionally a
first stage on a sample of the WikiNEuRal it/de silver sets (`--silver N` sentences);
`--languages de` (or `it`) trains on one language's gold sets only; `--extra-gold
kind-dev,germeval-dev` adds the gold sets that are neither selection nor test sets (KIND FIC and
ADG dev; GermEval 2014 dev under the CoNLL-2003 German convention); `--hyphen-joins SHARE`
writes a share of "NAME e NAME" pairs as glued compounds ("Cina-Russia", each name its own
tag); `--dev-in-training half` also trains on the first half of the selection sets and selects
on the second half (an honest measure of what training on them brings), `--dev-in-training
all` trains on them whole, with the weights to keep named beforehand (`--keep last|average`:
nothing is left to select on); model selection on KIND WN dev and CoNLL-2003 German dev (never a
test split). The extra gold sets and the hyphen joins are not in the shipped model's recipe
(measured, README: "The recipe").

Choices, each tested by training/test_recipe.py:
* Convention (docs/annotation-guidelines.md): names of countries, cities and regions are LOC
  whatever their role. KIND marks countries acting politically as ORG, so a KIND ORG span whose
  whole surface is a known place name (a surface annotated LOC more often than ORG across the
  training sets, e.g. "Cina", "Italia") becomes LOC; longer names such as "Comune di Roma"
  stay ORG.
* Italian gold has no MISC: a token labelled O in an Italian sentence may be a MISC name, so
  its loss is -log P(O or B-MISC or I-MISC) (a partial label) instead of -log P(O); tokens
  inside PER/ORG/LOC entities keep the ordinary cross-entropy.
* Word boundaries as Postilla's default word rule draws them (`punctuation`, see
  crates/core/src/ner/decode.rs): a token starts a word after whitespace, when it begins with
  punctuation or when punctuation precedes it. Each such word's first token carries the label
  (the gold word's tag on its first piece, I-X or O on the pieces a gold word splits into), the
  other tokens are ignored by the loss (-100): what inference with aggregation "first" reads.
* Raw text: half of the sentences are rebuilt with news spacing ("Putin, (AP)", "dell'Italia")
  instead of tokens joined by spaces, so that the model sees the pieces raw text gives.
* Document context: a share of the training examples (`--single-share`, default 0.3) are single
  sentences, the others windows of consecutive sentences of one document (up to
  `--max-length` tokens), like the windows Postilla predicts on.
* Length-bucketed batches of about `--batch-tokens` tokens; under `--precision auto`, bf16
  autocast on CPU (fp32 weights and optimiser) where it was measured faster (AMD processors with
  AVX512-BF16, processors with AMX; not an Intel Xeon with AVX512-BF16 alone); the tokenizer
  pass is done once.
Model selection: after every epoch, strict entity-level micro-F1 on KIND WN dev (under
Postilla's convention, PER/ORG/LOC) and CoNLL-2003 German dev (all four types), both sentence by
sentence and, for CoNLL (which has documents), through Postilla's document windows, decoded as
Postilla decodes by default (constrained Viterbi, `viterbi_tags`); the average
of the last two epochs' weights is scored too; the best `selection` is kept. Every epoch writes
a checkpoint (`--out/checkpoint-E.pt`). --compact saves only the trained weights (fp16, the
frozen word embeddings come from the base), which is what models/ner-it-de commits.

A run that is cut off (a session's end, a killed process) continues with the same command plus
`--resume`: every epoch also writes `--out/resume.pt` (weights, AdamW's moments, the schedule,
the random state, the dev history), and the continued run ends with the weights an
uninterrupted one ends with (a finished run removes resume.pt). `--max-stages K` stops after K
epochs of the schedule on purpose (e.g. to fit a session), leaving resume.pt; the log's
`minutes` adds up the segments.
"""
import argparse
import collections
import json
import math
import os
import random
import time
import unicodedata

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# the shared gold data beside the repository (`--data`)
DATA = os.path.join(ROOT, "..", "shared", "data")


def read_conll(path, sep=None, lang="it", docs=False):
    """Sentences of a CoNLL-style file as dicts {tokens, tags, lang, doc}. `doc` counts
    `-DOCSTART-` lines (files without them are one stream of consecutive sentences)."""
    sents, toks, tags, doc = [], [], [], 0
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("-DOCSTART-") or line.startswith("# "):
            if toks:
                sents.append({"tokens": toks, "tags": tags, "lang": lang, "doc": doc})
                toks, tags = [], []
            if line.startswith("-DOCSTART-"):
                doc += 1
            continue
        if not line.strip():
            if toks:
                sents.append({"tokens": toks, "tags": tags, "lang": lang, "doc": doc})
                toks, tags = [], []
            continue
        cols = line.split(sep) if sep else line.split()
        if sep and len(cols) == 3:  # WikiNEuRal / WikiANN: index<TAB>token<TAB>tag
            cols = cols[1:]
        elif sep and len(cols) == 4:  # GermEval 2014: index<TAB>token<TAB>outer<TAB>nested
            cols = cols[1:3]
        toks.append(cols[0])
        tags.append(cols[-1])
    if toks:
        sents.append({"tokens": toks, "tags": tags, "lang": lang, "doc": doc})
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


def normalise_tags(sentence):
    """IOB1-tolerant reading made IOB2, unknown types dropped (silver sets)."""
    tags = ["O"] * len(sentence["tags"])
    for a, b, label in spans(sentence["tags"]):
        if f"B-{label}" in LABELS:
            tags[a] = f"B-{label}"
            for i in range(a + 1, b):
                tags[i] = f"I-{label}"
    sentence["tags"] = tags
    return sentence


LANGUAGES = ("it", "de")

# Gold sets that are neither selection sets (KIND WN dev, CoNLL-2003 German dev) nor test sets,
# which `--extra-gold` adds to the training data.
EXTRA_GOLD = ("kind-dev", "germeval-dev")

# How much of the selection sets (KIND WN dev, CoNLL-2003 German dev) `--dev-in-training` trains
# on: none; the first half of each (the second half is then the selection set); all of it (no
# selection set is left: `--keep` says which candidate the run keeps).
DEV_IN_TRAINING = ("none", "half", "all")

# A tag whose token the loss ignores (label -100): GermEval's `*part` names, whose
# CoNLL-2003 label depends on the compound ("EU-Kommission" ORG, "SPD-Zeitschrift" MISC).
IGNORED_TAG = "IGN"


def germeval_tag(outer):
    """A GermEval 2014 outer-column tag under the CoNLL-2003 German convention: PER, ORG and
    LOC stay, OTH and the derivations (`LOCderiv`: "deutschen") become MISC, as CoNLL-2003
    German tags them; a part of a compound (`ORGpart`) is ignored by the loss."""
    if outer == "O":
        return "O"
    prefix, label = outer[:2], outer[2:]
    if label.endswith("part"):
        return IGNORED_TAG
    if label.endswith("deriv") or label == "OTH":
        label = "MISC"
    return prefix + label


def read_germeval(path):
    """GermEval 2014 (`index<TAB>token<TAB>outer<TAB>nested`; `read_conll` keeps the outer
    column) as sentences with CoNLL-2003 German tags; every sentence is its own document
    (GermEval samples single sentences)."""
    sents = []
    for i, s in enumerate(read_conll(path, "\t", "de")):
        s["tags"] = [germeval_tag(t) for t in s["tags"]]
        s["doc"] = i
        sents.append(s)
    return sents


def split_dev(dev):
    """(first halves, second halves) of the selection sets: KIND WN dev cut at its middle
    sentence (the file is one stream of articles in order), CoNLL-2003 German dev at its middle
    document (`-DOCSTART-` blocks stay whole). Both are dicts like `dev`; the sentences are the
    same objects."""
    kind, conll = dev["kind-wn"], dev["conll-de"]
    docs = sorted({s["doc"] for s in conll})
    cut = docs[len(docs) // 2]
    first = {"kind-wn": kind[: len(kind) // 2], "conll-de": [s for s in conll if s["doc"] < cut]}
    second = {"kind-wn": kind[len(kind) // 2:], "conll-de": [s for s in conll if s["doc"] >= cut]}
    return first, second


def load_data(data, limit, silver=0, seed=13, languages=LANGUAGES, extra_gold=(), dev_in_training="none"):
    """(train, silver, dev, harmonised count, gazetteer size). `languages` keeps the training
    sentences of those languages only (the place list and the dev sets stay whole);
    `extra_gold` (names of EXTRA_GOLD) adds those gold sets to the training sentences (the
    place list stays the training sets'). `dev_in_training` (DEV_IN_TRAINING) adds the first
    half of the selection sets to the training sentences and returns the second half as `dev`
    ("half"), or adds them whole and returns them as `dev` too ("all": its scores are then on
    trained-on data)."""
    d = os.path.join(data, "ner")
    kind = []
    for part in ("WN", "FIC", "ADG"):
        kind += read_conll(f"{d}/it/kind/{part}_train.tsv", "\t", "it")
    evalita = read_conll(f"{d}/it/evalita2009/train.tsv", None, "it")
    conll = read_conll(f"{d}/de/conll2003/train.tsv", None, "de")
    dev = {"kind-wn": read_conll(f"{d}/it/kind/WN_dev.tsv", "\t", "it"),
           "conll-de": read_conll(f"{d}/de/conll2003/dev.tsv", None, "de")}
    places = place_gazetteer(kind + evalita + conll)
    sources = [kind, evalita, conll]
    if "kind-dev" in extra_gold:
        # FIC and ADG dev: KIND's other two dev sets, not used for selection
        kind_dev = read_conll(f"{d}/it/kind/FIC_dev.tsv", "\t", "it")
        adg_dev = read_conll(f"{d}/it/kind/ADG_dev.tsv", "\t", "it")
        sources += [kind_dev, adg_dev]
        kind = kind + kind_dev + adg_dev
    if "germeval-dev" in extra_gold:
        sources.append(read_germeval(f"{d}/de/germeval2014/dev.tsv"))
    n = harmonise(kind, places)
    harmonise(dev["kind-wn"], places)  # model selection under Postilla's convention
    if dev_in_training != "none":
        trained, held_out = split_dev(dev) if dev_in_training == "half" else (dev, dev)
        # copies, with their own document ids below; KIND WN dev is harmonised like KIND train
        sources += [[dict(s) for s in trained["kind-wn"]], [dict(s) for s in trained["conll-de"]]]
        dev = held_out
    # documents: a distinct id per source file (and per -DOCSTART- block within it)
    for source, sents in enumerate(sources):
        for s in sents:
            s["doc"] = (source, s["doc"])
    train = [s for s in sum(sources, []) if s["lang"] in languages]
    silver_sents = []
    if silver:
        for lang in languages:
            path = f"{d}/silver/wikineural/{lang}/val.conllu"
            sents = [normalise_tags(s) for s in read_conll(path, "\t", lang)]
            for s in sents:
                s["doc"] = ("silver", lang, s["doc"])
                s["silver"] = True
            silver_sents += sents
        rng = random.Random(seed)
        # a sample of consecutive runs keeps some document order; here sentences are independent
        silver_sents = rng.sample(silver_sents, min(silver, len(silver_sents)))
    if limit:
        rng = random.Random(0)
        train = rng.sample(train, min(limit, len(train)))
        silver_sents = silver_sents[: limit // 4]
        dev = {k: v[: max(16, limit // 4)] for k, v in dev.items()}
    return train, silver_sents, dev, n, len(places)


# ---------------------------------------------------------------------------------------------
# Text and words

NO_SPACE_BEFORE = set(",.;:!?)]}%»”’…") | {"'s"}
NO_SPACE_AFTER = set("([{«„“‘")


def is_punct(ch):
    """Unicode general category P* (what Postilla's `punctuation` word rule splits at)."""
    return unicodedata.category(ch).startswith("P")


def build_text(tokens, news_spacing, glued=()):
    """The sentence as text and the code-point span of each token. With `news_spacing`,
    punctuation is glued the way news text writes it ("Putin, (AP)", "dell'Italia");
    otherwise tokens are joined by single spaces (what `postilla import` writes). A token whose
    index is in `glued` is written without a space on either side (a hyphen joining two names,
    see `join_names_with_hyphens`), in both spacings."""
    parts, offsets, pos, quote_open = [], [], 0, False
    for i, tok in enumerate(tokens):
        space = i > 0
        if i in glued or i - 1 in glued:
            space = False
        elif news_spacing and i > 0:
            prev = tokens[i - 1]
            if tok in NO_SPACE_BEFORE or prev in NO_SPACE_AFTER:
                space = False
            elif prev.endswith("'") and len(prev) > 1 and prev[-2].isalpha():  # dell' + Italia
                space = False
            elif tok == '"':
                space = not quote_open
            elif prev == '"' and quote_open:
                space = False
        if tok == '"':
            quote_open = not quote_open
        if space:
            parts.append(" ")
            pos += 1
        offsets.append((pos, pos + len(tok)))
        parts.append(tok)
        pos += len(tok)
    return "".join(parts), offsets


# Words that join two names of one type ("Cina e Russia", "Merkel und Macron", "Roma - Milano")
# and that `join_names_with_hyphens` may replace by a glued hyphen.
NAME_JOINERS = {"e", "ed", "und", "-", "–", "/"}


def join_names_with_hyphens(sentences, share, seed):
    """Raw news writes a relation between two names as a hyphenated compound ("relazioni
    Cina-Russia", "l'appello Putin-Xi"), which the gold sets hardly contain, while their
    single names with a hyphen ("Emilia-Romagna", "Baden-Württemberg") are one gold word whose
    pieces after the hyphen are trained as I-X. So, for a `share` of the places where a LOC or
    PER name is followed by a joining word (NAME_JOINERS) and a second name of the same type,
    the joining word becomes a hyphen glued to both names (tagged O): the second name then
    starts after a glued hyphen with its own B- tag. Changes `sentences` in place (their
    "glued" indices, for `build_text`); returns how many pairs were joined."""
    rng = random.Random(seed)
    joined = 0
    for s in sentences:
        found = spans(s["tags"])
        for (_, end, label), (start, _, label2) in zip(found, found[1:]):
            if (label == label2 and label in ("LOC", "PER") and start == end + 1
                    and s["tokens"][end].lower() in NAME_JOINERS and rng.random() < share):
                s["tokens"][end] = "-"
                s["tags"][end] = "O"
                s["glued"] = s.get("glued", set()) | {end}
                joined += 1
    return joined


def word_starts(text, token_offsets):
    """For each token, whether it starts a word under Postilla's `punctuation` word rule:
    at the start of the text, after whitespace, at a token that begins with whitespace or
    punctuation, or after a punctuation character."""
    starts = []
    for i, (s, e) in enumerate(token_offsets):
        ts = s
        while ts < e and text[ts].isspace():
            ts += 1
        if i == 0 or s == 0 or text[s - 1].isspace() or (s < len(text) and text[s].isspace()):
            starts.append(True)
        elif ts < e and is_punct(text[ts]):
            starts.append(True)
        elif ts > 0 and is_punct(text[ts - 1]):
            starts.append(True)
        else:
            starts.append(False)
    return starts


def token_word_labels(text, word_offsets, tags, token_offsets):
    """Per token: the index of the gold word its first non-space character lies in (or -1),
    and its training label (-1 = ignored): the tag of the gold word on the first rule word that
    starts in it, I-X / O on later rule words of the same gold word."""
    owner = [-1] * (len(text) + 1)
    for w, (a, b) in enumerate(word_offsets):
        for c in range(a, b):
            owner[c] = w
    starts = word_starts(text, token_offsets)
    words, labels, seen = [], [], set()
    for (s, e), start in zip(token_offsets, starts):
        ts = s
        while ts < e and text[ts].isspace():
            ts += 1
        w = owner[ts] if ts < e else -1
        words.append(w)
        if not start or w < 0:
            labels.append(-1)
            continue
        tag = tags[w]
        if tag == IGNORED_TAG:
            labels.append(-1)
            continue
        if w in seen:
            tag = "O" if tag == "O" else "I-" + tag[2:]
        seen.add(w)
        labels.append(LABELS.index(tag))
    return words, labels


def encode_sentences(tokenizer, sentences, seed, news_share=0.5):
    """Tokenizes every sentence once: ids, labels (-100 = ignored) and the Italian-O mask,
    with news spacing for a fixed random `news_share` of the sentences."""
    rng = random.Random(seed)
    texts, word_offsets = [], []
    for s in sentences:
        text, offs = build_text(s["tokens"], rng.random() < news_share, s.get("glued", ()))
        texts.append(text)
        word_offsets.append(offs)
    out = []
    for i in range(0, len(texts), 4096):
        enc = tokenizer(texts[i:i + 4096], add_special_tokens=False, return_offsets_mapping=True)
        for j, (ids, offsets) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
            s = sentences[i + j]
            _, labels = token_word_labels(texts[i + j], word_offsets[i + j], s["tags"], offsets)
            partial = s["lang"] == "it" and not s.get("silver")
            out.append({"ids": ids, "labels": [l if l >= 0 else -100 for l in labels],
                        "italian_o": [partial and l == 0 for l in labels], "doc": s["doc"]})
    return out


def make_examples(encoded, max_content, single_share, rng):
    """Training examples for one epoch: consecutive sentences of a document grouped into
    windows of random target length (64 to `max_content` tokens), or single sentences with
    probability `single_share`. Each sentence appears once; sentences over `max_content` tokens
    are cut."""
    examples, cur, target = [], None, 0

    def flush():
        if cur is not None:
            examples.append(cur)

    for e in encoded:
        n = len(e["ids"])
        fits = cur is not None and cur["doc"] == e["doc"] and len(cur["ids"]) + n <= target
        if not fits:
            flush()
            cur = {"ids": list(e["ids"][:max_content]), "labels": list(e["labels"][:max_content]),
                   "italian_o": list(e["italian_o"][:max_content]), "doc": e["doc"]}
            target = 0 if rng.random() < single_share else rng.randint(64, max_content)
        else:
            cur["ids"] += e["ids"]
            cur["labels"] += e["labels"]
            cur["italian_o"] += e["italian_o"]
    flush()
    return examples


def bucketed_batches(examples, batch_tokens, rng, max_rows=64):
    """Batches of similar length (padding stays small): shuffle, sort within pools of 100
    batches' worth, cut into batches of about `batch_tokens` tokens, shuffle the batches."""
    order = examples[:]
    rng.shuffle(order)
    pool_size = max(1, batch_tokens * 100)
    batches, pool, pool_tokens = [], [], 0

    def cut(pool):
        pool.sort(key=lambda e: len(e["ids"]))
        batch, longest = [], 0
        for e in pool:
            longest2 = max(longest, len(e["ids"]) + 2)
            if batch and (longest2 * (len(batch) + 1) > batch_tokens or len(batch) >= max_rows):
                batches.append(batch)
                batch, longest2 = [], len(e["ids"]) + 2
            batch.append(e)
            longest = longest2
        if batch:
            batches.append(batch)

    for e in order:
        pool.append(e)
        pool_tokens += len(e["ids"])
        if pool_tokens >= pool_size:
            cut(pool)
            pool, pool_tokens = [], 0
    if pool:
        cut(pool)
    rng.shuffle(batches)
    return batches


def collate(torch, batch, cls_id, sep_id, pad_id):
    width = max(len(e["ids"]) for e in batch) + 2
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    italian_o = torch.zeros((len(batch), width), dtype=torch.bool)
    for r, e in enumerate(batch):
        n = len(e["ids"])
        ids[r, : n + 2] = torch.tensor([cls_id] + e["ids"] + [sep_id])
        mask[r, : n + 2] = 1
        labels[r, 1: n + 1] = torch.tensor(e["labels"])
        italian_o[r, 1: n + 1] = torch.tensor(e["italian_o"])
    return ids, mask, labels, italian_o


# ---------------------------------------------------------------------------------------------
# Evaluation


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


def window_plan(n, capacity, stride):
    """Postilla's window plan (crates/core/src/ner/windows.rs): windows and the owner window
    of each token (the one where it has the most context, the earlier on ties)."""
    windows, start = [], 0
    while True:
        end = min(start + capacity, n)
        windows.append((start, end))
        if end >= n:
            break
        start += capacity - stride
    owner = []
    for t in range(n):
        best = None
        for w, (a, b) in enumerate(windows):
            if a <= t < b:
                context = min(t - a, b - 1 - t)
                if best is None or context > best[0]:
                    best = (context, w)
        owner.append(best[1])
    return windows, owner


def viterbi_tags(word_probs, breaks=()):
    """Postilla's default decoding (crates/core/src/ner/decode.rs, `Decoding::Viterbi`): the most
    probable IOB2 tag sequence (sum of log probabilities) over the words' label probabilities in
    which an I-X only follows B-X or I-X, and no I-X starts a word index in `breaks` (a
    sentence's first word: an entity does not run across the line between two sentences)."""
    n = len(LABELS)
    inside = [lab.startswith("I-") for lab in LABELS]
    allowed = [[not inside[j] or (LABELS[i] != "O" and LABELS[i][2:] == LABELS[j][2:]) for j in range(n)]
               for i in range(n)]
    score, back = None, []
    for probs in word_probs:
        logs = [math.log(max(p, 1e-30)) for p in probs]
        if not back or len(back) in breaks:  # nothing continues into the first word or a break
            logs = [-math.inf if inside[j] else logs[j] for j in range(n)]
        if score is None:
            score = logs
            back.append([0] * n)
            continue
        nxt, frm = [], []
        for j in range(n):
            best = max((score[i], i) for i in range(n) if allowed[i][j])
            nxt.append(best[0] + logs[j])
            frm.append(best[1])
        score = nxt
        back.append(frm)
    if score is None:
        return []
    tag = max(range(n), key=lambda j: score[j])
    path = [0] * len(word_probs)
    for k in range(len(word_probs) - 1, -1, -1):
        path[k] = tag
        tag = back[k][tag]
    return [LABELS[t] for t in path]


def predict_docs(torch, model, tokenizer, docs, device, max_length=256, stride=64, batch_size=32):
    """Word tags of each document (a list of sentences, text as `postilla import` writes it:
    tokens joined by spaces, sentences by newlines), predicted the way Postilla does: the whole
    document tokenized, windows of `max_length` tokens overlapping by `stride`, the gold tokens
    as words (each word read on its first piece, aggregation "first"), Viterbi decoding with no
    entity across two sentences (Postilla's line-break rule for pre-tokenised input)."""
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    prepared, jobs = [], []
    for d, sents in enumerate(docs):
        texts, offs, base, firsts = [], [], 0, set()
        for s in sents:
            firsts.add(len(offs))
            text, o = build_text(s["tokens"], False)
            offs += [(a + base, b + base) for a, b in o]
            texts.append(text)
            base += len(text) + 1
        text = "\n".join(texts)
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        words, _ = token_word_labels(text, offs, ["O"] * len(offs), enc["offset_mapping"])
        starts = word_starts(text, enc["offset_mapping"])
        windows, owner = window_plan(len(enc["input_ids"]), max_length - 2, stride)
        prepared.append({"ids": enc["input_ids"], "words": words, "starts": starts, "owner": owner,
                         "n_words": len(offs), "firsts": firsts, "pred": [None] * len(enc["input_ids"])})
        for w, (a, b) in enumerate(windows):
            if b > a:
                jobs.append((d, w, a, b))
    jobs.sort(key=lambda j: j[3] - j[2])
    model.eval()
    with torch.no_grad():
        for i in range(0, len(jobs), batch_size):
            chunk = jobs[i:i + batch_size]
            batch = [{"ids": prepared[d]["ids"][a:b], "labels": [0] * (b - a), "italian_o": [False] * (b - a)}
                     for d, w, a, b in chunk]
            ids, mask, _, _ = collate(torch, batch, cls_id, sep_id, pad_id)
            probs = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().softmax(-1).cpu()
            for r, (d, w, a, b) in enumerate(chunk):
                for k, t in enumerate(range(a, b)):
                    if prepared[d]["owner"][t] == w:
                        prepared[d]["pred"][t] = probs[r, k + 1].tolist()
    model.train()
    out = []
    certain_o = [1.0] + [0.0] * (len(LABELS) - 1)
    for p in prepared:
        word_probs = [certain_o] * p["n_words"]  # a word without a first piece stays O
        done = set()
        for t, w in enumerate(p["words"]):
            if w >= 0 and p["starts"][t] and w not in done:
                word_probs[w] = p["pred"][t]
                done.add(w)
        out.append(viterbi_tags(word_probs, p["firsts"]))
    return out


def evaluate(torch, model, tokenizer, dev, device, max_length=256, documents=True):
    """Strict micro-F1 on each development set: KIND WN (harmonised, PER/ORG/LOC: KIND has no
    MISC) and CoNLL-2003 German (all four types), each sentence a document; `selection` is their
    mean. With `documents`, CoNLL-2003 German dev also through whole-document windows
    (`conll-de-doc`)."""
    scores = {}
    for name, sentences in dev.items():
        types = {"PER", "ORG", "LOC"} if name == "kind-wn" else None
        pred = predict_docs(torch, model, tokenizer, [[s] for s in sentences], device, max_length)
        scores[name] = round(strict_f1([s["tags"] for s in sentences], pred, types)[2], 4)
    scores["selection"] = round(sum(scores.values()) / len(scores), 4)
    if documents and "conll-de" in dev:
        docs = collections.OrderedDict()
        for s in dev["conll-de"]:
            docs.setdefault(s["doc"], []).append(s)
        docs = list(docs.values())
        pred = predict_docs(torch, model, tokenizer, docs, device, max_length)
        gold = [[t for s in doc for t in s["tags"]] for doc in docs]
        scores["conll-de-doc"] = round(strict_f1(gold, pred)[2], 4)
    return scores


# ---------------------------------------------------------------------------------------------
# Saving


def save_compact(torch, model, out, max_bytes=15 * 2**20):
    """Saves only the trained parameters (everything but the frozen word embeddings, which the
    base model supplies) in fp16, in safetensors shards under `max_bytes` each: what
    models/ner-it-de commits."""
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


def new_model(base):
    """The recipe's token classifier: `base` with a new head over LABELS, its word embeddings
    frozen (the compact weights leave them out)."""
    from transformers import AutoModelForTokenClassification
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
        ignore_mismatched_sizes=True)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def loss_fn(torch, logits, labels, italian_o):
    """Cross-entropy; Italian O tokens get the partial label {O, B-MISC, I-MISC}."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    mask = labels != -100
    gold = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    misc = torch.logsumexp(logp[..., [0, 7, 8]], dim=-1)
    per_token = torch.where(italian_o, misc, gold)
    return -(per_token * mask).sum() / mask.sum().clamp(min=1)


def parameter_groups(model, lr, layer_decay):
    """AdamW's parameter groups: with `layer_decay` d < 1 (layer-wise learning-rate decay, as in
    ELECTRA and BEiT), encoder layer l of L gets lr * d**(L - l), the embeddings (position, type,
    layer norm) lr * d**(L + 1), and the classifier head lr; d = 1 is one group at lr. Biases and
    layer norms get no weight decay only in the grouped form (d = 1 keeps the original single
    group, weight decay 0.01 on everything trained)."""
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if layer_decay >= 1.0:
        return [{"params": [p for _, p in trained], "lr": lr, "weight_decay": 0.01}]
    n_layers = model.config.num_hidden_layers
    groups = {}
    for name, p in trained:
        if ".encoder.layer." in name:
            depth = n_layers - int(name.split(".encoder.layer.")[1].split(".")[0])
        elif ".embeddings." in name:
            depth = n_layers + 1
        else:
            depth = 0
        decay = 0.0 if name.endswith(".bias") or "LayerNorm" in name else 0.01
        group = groups.setdefault((depth, decay), {"params": [], "lr": lr * layer_decay ** depth, "weight_decay": decay})
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]


def bf16_supported(torch, device, cpuinfo=None):
    """Whether `--precision auto` trains under bf16 autocast: on GPUs that support it, and on
    processors where it was measured faster than fp32 (`cpuinfo`: /proc/cpuinfo's text). Those
    are AMD processors with AVX512-BF16 (a 2-core EPYC: 1,530 against 840 tokens/s; a
    2-core EPYC Zen 5: about 2,600 against 1,000) and
    processors with AMX; an Intel Xeon with AVX512-BF16 but no AMX ran bf16 slower (675 against
    941 tokens/s), so it trains in fp32."""
    if device != "cpu":
        return device.startswith("cuda") and torch.cuda.is_bf16_supported()
    if cpuinfo is None:
        try:
            cpuinfo = open("/proc/cpuinfo").read()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            break
    amd = "AuthenticAMD" in cpuinfo
    return "amx_bf16" in flags or ("avx512_bf16" in flags and amd)


def trained_state(model):
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


def parse_ema(text):
    """The decays of `--ema` ("0.999,0.9995") as floats, each in (0, 1); "" gives none."""
    decays = [float(x) for x in text.split(",") if x.strip()]
    if any(not 0.0 < d < 1.0 for d in decays):
        raise ValueError(f"--ema: decays between 0 and 1, not {text!r}")
    return decays


def ema_decay(decay, updates):
    """The decay of the `updates`-th update of an exponential moving average (counted from 1):
    `decay`, but at most (1 + updates) / (10 + updates), so that the starting weights do not
    linger in a long average (the warm-up of timm's ModelEmaV2)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


def ema_update(torch, averages, model, decay, updates):
    """One update of the exponential moving averages `averages` {name: fp32 tensor} towards the
    model's trained parameters: average <- d * average + (1 - d) * parameter, d = ema_decay."""
    d = ema_decay(decay, updates)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in averages:
                averages[n].mul_(d).add_(p.detach().to(averages[n].device, torch.float32), alpha=1.0 - d)


def load_state(torch, model, state):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in state:
                p.copy_(state[n])


def resume_options(args):
    """The options a continued run must share with the run it continues (all but where it runs
    and how it stops)."""
    return {k: v for k, v in vars(args).items() if k not in ("resume", "max_stages", "threads", "out")}


def save_resume(torch, path, payload):
    """Writes resume.pt whole or not at all (a temporary file renamed into place)."""
    tmp = path + ".tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_resume(torch, path, args, total):
    """resume.pt of the run being continued, refused when it is missing or made with other
    options."""
    if not os.path.exists(path):
        raise SystemExit(f"{path}: nothing to resume (no epoch of this run finished)")
    saved = torch.load(path, map_location="cpu")
    # a run started before --languages (--extra-gold, --hyphen-joins, --dev-in-training, --keep,
    # --ema, --data-seed) existed trained on both languages (no extra set, no hyphen joins, no
    # dev data, kept the best, no moving average, the data drawn by --seed)
    saved["options"] = {"languages": ",".join(LANGUAGES), "extra_gold": "", "hyphen_joins": 0.0,
                        "dev_in_training": "none", "keep": "select", "ema": "", "data_seed": None,
                        **saved["options"]}
    if saved["options"] != resume_options(args) or saved["steps"] != total:
        raise SystemExit(f"{path}: written by a run with other options ({saved['options']}); "
                         "resume with the same command")
    return saved


def load_initial(torch, path):
    """The starting point of `--init`: a checkpoint-<stage>.pt of an earlier run, or a packaged
    compact model directory (models/ner-it-de: its fp16 trained-*.safetensors shards and the
    dev scores its training-log.json selected)."""
    if not os.path.isdir(path):
        return torch.load(path, map_location="cpu")
    import glob
    from safetensors.torch import load_file
    shards = sorted(glob.glob(os.path.join(path, "trained-*.safetensors")))
    if not shards:
        raise SystemExit(f"{path}: no trained-*.safetensors shards (a --compact run or models/ner-it-de)")
    state = {}
    for shard in shards:
        state.update({n: t.float() for n, t in load_file(shard).items()})
    log = json.load(open(os.path.join(path, "training-log.json"), encoding="utf-8"))
    return {"stage": f"package:{log['selected']['stage']}", "state": state, "scores": log["selected"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=os.path.join(ROOT, "models", "e5-small"))
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=0, help="train on N sentences only (smoke run)")
    ap.add_argument("--silver", type=int, default=0, help="first stage: N WikiNEuRal it/de silver sentences")
    ap.add_argument("--epochs", type=int, default=3, help="epochs over the gold sets")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--layer-decay", type=float, default=1.0,
                    help="layer-wise learning-rate decay: encoder layer l of L learns at lr * d**(L - l) (1: one lr)")
    ap.add_argument("--batch-tokens", type=int, default=1024, help="tokens per batch, padding included")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--single-share", type=float, default=0.3, help="share of single-sentence examples")
    ap.add_argument("--news-share", type=float, default=0.5, help="share of sentences with news spacing")
    ap.add_argument("--languages", default=",".join(LANGUAGES),
                    help="train on the gold sentences of these languages only, comma-separated (it: KIND and "
                         "EVALITA, de: CoNLL-2003); the dev sets and the selection stay both languages'")
    ap.add_argument("--extra-gold", default="",
                    help="also train on these gold sets, comma-separated: kind-dev (KIND FIC and ADG dev, Italian) "
                         "and germeval-dev (GermEval 2014 dev, German, mapped to the CoNLL-2003 convention); "
                         "neither is a selection or test set")
    ap.add_argument("--dev-in-training", choices=DEV_IN_TRAINING, default="none",
                    help="also train on the selection sets: none; half (the first half of KIND WN dev and of "
                         "CoNLL-2003 German dev's documents; the second halves select); all (nothing is held out: "
                         "needs --keep last or average)")
    ap.add_argument("--keep", choices=("select", "last", "average"), default="select",
                    help="the weights the run saves: select (the candidate with the best dev selection), last (the "
                         "last epoch), average (the average of the last epoch with the one before, or with the "
                         "--init start)")
    ap.add_argument("--ema", default="",
                    help="comma-separated decays (e.g. 0.999,0.9995) of exponential moving averages of the "
                         "trained weights, updated after every step; after the last epoch each average is "
                         "scored on dev and competes in the selection as ema-<decay>")
    ap.add_argument("--hyphen-joins", type=float, default=0.0,
                    help="share of 'NAME e/und NAME' pairs (LOC, PER) written as glued hyphenated compounds "
                         "('Cina-Russia'), each name with its own tag (0: none)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=13,
                    help="seed of the classifier head's initialisation and dropout, and of the data "
                         "order unless --data-seed is given")
    ap.add_argument("--data-seed", type=int, default=None,
                    help="seed of the data alone (news spacing, windows, batches, their order): runs with "
                         "one --seed and other data seeds start from the same head (weight soups need that)")
    ap.add_argument("--init", default="",
                    help="continue from a checkpoint-<stage>.pt of an earlier run, or from a packaged compact model "
                         "directory such as models/ner-it-de (its trained weights; a new schedule)")
    ap.add_argument("--compact", action="store_true",
                    help="save only the trained weights in fp16 shards under 15 MiB")
    ap.add_argument("--resume", action="store_true",
                    help="continue the run in --out from its last finished epoch (resume.pt), same options")
    ap.add_argument("--max-stages", type=int, default=0,
                    help="stop after this many stages (epochs) of the schedule, counting the ones a resumed run "
                         "already did; continue later with --resume (0: run to the end)")
    args = ap.parse_args()
    if not args.languages or any(l not in LANGUAGES for l in args.languages.split(",")):
        ap.error(f"--languages: a comma-separated subset of {','.join(LANGUAGES)}, not {args.languages!r}")
    if not 0.0 <= args.hyphen_joins <= 1.0:
        ap.error(f"--hyphen-joins: a share between 0 and 1, not {args.hyphen_joins}")
    if args.dev_in_training == "all" and args.keep == "select":
        ap.error("--dev-in-training all leaves no selection set: name the weights to keep with --keep last or average")
    if args.keep == "average" and args.epochs < 2 and not args.init:
        ap.error("--keep average needs two epochs, or one and an --init start, to average")
    try:
        ema_decays = parse_ema(args.ema)
    except ValueError as err:
        ap.error(str(err))
    extra_gold = tuple(x for x in args.extra_gold.split(",") if x)
    if any(x not in EXTRA_GOLD for x in extra_gold):
        ap.error(f"--extra-gold: a comma-separated subset of {','.join(EXTRA_GOLD)}, not {args.extra_gold!r}")

    import torch
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_seed = args.seed if args.data_seed is None else args.data_seed
    rng = random.Random(data_seed)
    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    train, silver, dev, harmonised, n_places = load_data(args.data, args.limit, args.silver, data_seed,
                                                         tuple(args.languages.split(",")), extra_gold,
                                                         args.dev_in_training)
    joined = join_names_with_hyphens(train, args.hyphen_joins, data_seed) if args.hyphen_joins else 0
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    enc_train = encode_sentences(tokenizer, train, data_seed, args.news_share)
    enc_silver = encode_sentences(tokenizer, silver, data_seed + 1, args.news_share)
    n_tokens = sum(len(e["ids"]) for e in enc_train)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and bf16_supported(torch, args.device))
    print(json.dumps({"train_sentences": len(train), "train_tokens": n_tokens, "silver_sentences": len(silver),
                      "dev_sentences": {k: len(v) for k, v in dev.items()}, "dev_in_training": args.dev_in_training,
                      "hyphen_joined_pairs": joined,
                      "kind_org_to_loc": harmonised, "places": n_places, "bf16": bf16,
                      "threads": torch.get_num_threads(), "tokenize_seconds": round(time.time() - started, 1)}), flush=True)
    model = new_model(args.base)
    initial = None
    if args.init:
        initial = load_initial(torch, args.init)
        load_state(torch, model, initial["state"])
    model.to(args.device).train()
    autocast = torch.autocast("cpu" if args.device == "cpu" else "cuda", dtype=torch.bfloat16, enabled=bf16)
    if initial is not None:
        # the starting point competes in the selection, so it is scored by this recipe's own
        # scorer at the epochs' precision (the scores stored with it may come from an older
        # scorer, e.g. argmax-read)
        stored = initial["scores"]
        with autocast:
            initial["scores"] = {"stage": initial["stage"], "step": 0,
                                 **evaluate(torch, model, tokenizer, dev, args.device, args.max_length)}
        print(json.dumps({"init": args.init, "init_stage": initial["stage"], "init_dev_stored": stored,
                          "init_dev": initial["scores"]}), flush=True)
    params = [p for p in model.parameters() if p.requires_grad]
    # exponential moving averages of the trained weights (--ema), from the starting weights on
    emas = {d: {n: t.to(args.device) for n, t in trained_state(model).items()} for d in ema_decays}
    opt = torch.optim.AdamW(parameter_groups(model, args.lr, args.layer_decay))
    max_content = args.max_length - 2
    # stages: the silver pass (if any), then the gold epochs; batches are drawn per stage
    stages = (["silver"] if enc_silver else []) + [f"gold-{e + 1}" for e in range(args.epochs)]
    plans = {}
    for stage in stages:
        data = enc_silver if stage == "silver" else enc_train
        plans[stage] = bucketed_batches(make_examples(data, max_content, args.single_share, rng), args.batch_tokens, rng)
    total = sum(len(b) for b in plans.values())
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    pad_tokens = sum(len(b) * (max(len(e["ids"]) for e in b) + 2) for bs in plans.values() for b in bs)
    real_tokens = sum(len(e["ids"]) + 2 for bs in plans.values() for b in bs for e in b)
    print(json.dumps({"stages": {s: len(b) for s, b in plans.items()}, "steps": total,
                      "padding_share": round(1 - real_tokens / pad_tokens, 4)}), flush=True)
    step, losses, seen_tokens, start = 0, [], 0, time.time()
    history, best, best_state, states = [], None, None, []
    done_stages, earlier_minutes = 0, []
    if initial is not None:
        # the starting point is a candidate too (scored above by this recipe), and the last
        # epoch is averaged with it
        history.append(initial["scores"])
        best, best_state = initial["scores"], initial["state"]
        states.append(initial["state"])
    resume_path = os.path.join(args.out, "resume.pt")
    if args.resume:
        saved = load_resume(torch, resume_path, args, total)
        load_state(torch, model, saved["state"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        torch.set_rng_state(saved["rng"])
        step, losses, seen_tokens = saved["step"], saved["losses"], saved["seen_tokens"]
        history, best, best_state, states = saved["history"], saved["best"], saved["best_state"], saved["states"]
        done_stages, earlier_minutes = saved["done_stages"], saved["minutes"]
        emas = {d: {n: t.to(args.device) for n, t in avg.items()} for d, avg in saved.get("emas", {}).items()}
        print(json.dumps({"resumed": resume_path, "after_stage": stages[done_stages - 1], "step": step}), flush=True)
    seen_at_start = seen_tokens

    def score(name, state):
        """Loads `state` into the model and scores it on dev as candidate `name` (logged and
        added to the history)."""
        load_state(torch, model, state)
        with autocast:
            scores = {"stage": name, "step": step, **evaluate(torch, model, tokenizer, dev, args.device, args.max_length)}
        history.append(scores)
        print(json.dumps({"dev": scores}), flush=True)
        return scores

    for k, stage in enumerate(stages):
        if k < done_stages:
            continue
        if args.max_stages and k >= args.max_stages:
            print(json.dumps({"stopped_after_stage": stages[k - 1], "resume": resume_path}), flush=True)
            return
        for batch in plans[stage]:
            ids, mask, labels, italian_o = (t.to(args.device) for t in collate(
                torch, batch, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id))
            with autocast:
                logits = model(input_ids=ids, attention_mask=mask).logits
            loss = loss_fn(torch, logits, labels, italian_o)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            losses.append(loss.item()); step += 1
            for decay, averages in emas.items():
                ema_update(torch, averages, model, decay, step)
            seen_tokens += int(mask.sum())
            if step % 50 == 0 or step == total:
                elapsed = time.time() - start
                rate = (seen_tokens - seen_at_start) / elapsed
                remaining = (real_tokens - seen_tokens) / max(rate, 1e-9)
                print(json.dumps({"stage": stage, "step": step, "of": total, "loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
                                  "tokens_per_s": round(rate), "elapsed_min": round(elapsed / 60, 1),
                                  "eta_min": round(remaining / 60, 1)}), flush=True)
        # model selection on the development sets, after every stage (never a test set)
        with autocast:
            scores = {"stage": stage, "step": step, **evaluate(torch, model, tokenizer, dev, args.device, args.max_length)}
        state = trained_state(model)
        torch.save({"stage": stage, "state": state, "scores": scores}, os.path.join(args.out, f"checkpoint-{stage}.pt"))
        history.append(scores)
        print(json.dumps({"dev": scores}), flush=True)
        if best is None or scores["selection"] > best["selection"] or (args.keep == "last" and stage == stages[-1]):
            best, best_state = scores, state
        if stage.startswith("gold"):
            states.append(state)
        if len(states) >= 2 and stage == stages[-1]:
            # checkpoint averaging of the last two gold epochs
            averaged = {n: (states[-1][n] + states[-2][n]) / 2 for n in state}
            scores = score("average-last-2", averaged)
            if args.keep == "average" or (args.keep == "select" and scores["selection"] > best["selection"]):
                best, best_state = scores, averaged
        if emas and stage == stages[-1]:
            # the moving averages, scored after the last epoch; each is a candidate
            for decay, averages in emas.items():
                averaged = {n: t.to("cpu", copy=True) for n, t in averages.items()}
                scores = score(f"ema-{decay:g}", averaged)
                torch.save({"stage": scores["stage"], "state": averaged, "scores": scores},
                           os.path.join(args.out, f"checkpoint-{scores['stage']}.pt"))
                if args.keep == "select" and scores["selection"] > best["selection"]:
                    best, best_state = scores, averaged
        save_resume(torch, resume_path, {
            "options": resume_options(args), "steps": total, "done_stages": k + 1, "step": step,
            "state": trained_state(model), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "rng": torch.get_rng_state(), "losses": losses, "seen_tokens": seen_tokens, "history": history,
            "best": best, "best_state": best_state, "states": states[-2:],
            "emas": {d: {n: t.to("cpu", copy=True) for n, t in avg.items()} for d, avg in emas.items()},
            "minutes": earlier_minutes + [(time.time() - started) / 60]})
    load_state(torch, model, best_state)
    minutes = round(sum(earlier_minutes) + (time.time() - started) / 60, 1)
    print(json.dumps({"selected": best, "minutes": minutes,
                      "segments": [round(m, 1) for m in earlier_minutes + [(time.time() - started) / 60]]}), flush=True)
    if args.compact:
        save_compact(torch, model, args.out)
    else:
        model.save_pretrained(args.out, safe_serialization=True)
        tokenizer.save_pretrained(args.out)
    log = {"first_losses": losses[:10], "last_losses": losses[-10:], "steps": step, "dev": history,
           "selected": best, "minutes": minutes, "args": vars(args)}
    if earlier_minutes:
        log["segments_minutes"] = [round(m, 1) for m in earlier_minutes + [(time.time() - started) / 60]]
    json.dump(log, open(os.path.join(args.out, "training-log.json"), "w"), indent=1)
    if os.path.exists(resume_path):
        os.remove(resume_path)  # the run is finished: nothing left to resume


if __name__ == "__main__":
    main()
