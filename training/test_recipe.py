#!/usr/bin/env python3
"""Unit tests of the training recipe's choices (run by `just test`): the place-name
harmonisation rule, the partial-label loss for Italian O tokens, news spacing and the
punctuation word rule's labels, document windows and length-bucketed batches, a cut run
resumed to the weights of an uninterrupted one, the training-language filter, the extra gold
sets (`--extra-gold`, GermEval mapped to the CoNLL convention), names joined by glued hyphens
(`--hyphen-joins`), training on the selection sets (`--dev-in-training`) and the weights a run
keeps (`--keep`), the moving averages of the weights (`--ema`), the data seed apart from the
head's (`--data-seed`), the greedy weight soup (training/soup.py), and the recipe's orchestration
of two runs and their soup (training/recipe.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402

from train_ner import (DATA, IGNORED_TAG, bf16_supported, ema_decay, ema_update, parse_ema, split_dev, LABELS, germeval_tag, join_names_with_hyphens, load_data, read_conll, load_resume, resume_options, viterbi_tags, bucketed_batches, parameter_groups, build_text, harmonise, loss_fn, make_examples,  # noqa: E402
                       place_gazetteer, strict_f1, token_word_labels, window_plan, word_starts)


def sent(tokens, tags, lang="it"):
    return {"tokens": tokens.split(), "tags": tags.split(), "lang": lang}


def test_harmonisation():
    train = [sent("la Cina e la Russia", "O B-LOC O O B-LOC"), sent("la Cina", "O B-ORG"), sent("Cina", "B-LOC"),
             sent("la Russia", "O B-LOC"), sent("il Comune di Roma", "O B-ORG I-ORG I-ORG"),
             sent("Roma", "B-LOC"), sent("Fiat", "B-ORG"), sent("Fiat", "B-LOC")]
    places = place_gazetteer(train)
    assert {"Cina", "Russia", "Roma"} <= places and "Comune di Roma" not in places
    kind = [sent("la Cina ha detto", "O B-ORG O O"), sent("il Comune di Roma", "O B-ORG I-ORG I-ORG"),
            sent("la Fiat", "O B-ORG")]
    assert "Fiat" not in places, "a tie is not a place"
    assert harmonise(kind, places) == 1
    assert kind[0]["tags"] == ["O", "B-LOC", "O", "O"]
    assert kind[1]["tags"] == ["O", "B-ORG", "I-ORG", "I-ORG"], "a longer organisation name stays ORG"
    assert kind[2]["tags"] == ["O", "B-ORG"]


def test_partial_label_loss():
    logits = torch.zeros(1, 2, len(LABELS))
    logits[0, :, LABELS.index("B-MISC")] = 5.0  # the model says MISC on both tokens
    labels = torch.tensor([[0, 0]])  # gold O
    italian = loss_fn(torch, logits, labels, torch.tensor([[True, True]]))
    german = loss_fn(torch, logits, labels, torch.tensor([[False, False]]))
    assert italian < 0.1 < german, (italian, german)  # MISC is not punished on Italian O tokens
    logits2 = torch.zeros(1, 2, len(LABELS))
    logits2[0, :, LABELS.index("B-PER")] = 5.0
    assert loss_fn(torch, logits2, labels, torch.tensor([[True, True]])) > 1.0  # other types still are
    ignored = loss_fn(torch, logits, torch.tensor([[0, -100]]), torch.tensor([[False, False]]))
    assert abs(ignored.item() - german.item()) < 1e-6


def test_strict_f1_equals_seqeval():
    """The recipe's model-selection score (the GPU machine has no seqeval) against seqeval's
    strict IOB2 micro P/R/F1 on random tag sequences, invalid ones included."""
    import random
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2
    rng = random.Random(7)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 25))] for _ in range(400)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in g] for g in gold]
    ours = strict_f1(gold, pred)
    theirs = (precision_score(gold, pred, mode="strict", scheme=IOB2), recall_score(gold, pred, mode="strict", scheme=IOB2),
              f1_score(gold, pred, mode="strict", scheme=IOB2))
    assert all(abs(a - b) < 1e-12 for a, b in zip(ours, theirs)), (ours, theirs)
    assert 0.2 < ours[2] < 0.9, ours  # a comparison that can fail


def test_news_spacing():
    tokens = ["Un", "gruppo", "dell'", "università", "(", "AP", ")", ",", '"', "Ciao", '"', "detto", "."]
    text, offsets = build_text(tokens, True)
    assert text == 'Un gruppo dell\'università (AP), "Ciao" detto.', text
    assert [text[a:b] for a, b in offsets] == tokens
    plain, offsets = build_text(tokens, False)
    assert plain == " ".join(tokens) and [plain[a:b] for a, b in offsets] == tokens


def test_word_rule_labels():
    """Tokens as a SentencePiece tokenizer cuts "(AP) Putin, AP.Putin" (gold words "(" "AP" ")"
    "Putin" "," "AP" "." "Putin"): every piece that starts a word under the punctuation rule
    is labelled, the glued piece "AP." takes its first word's tag."""
    text = "(AP) Putin, AP.Putin"
    words = [(0, 1), (1, 3), (3, 4), (5, 10), (10, 11), (12, 14), (14, 15), (15, 20)]
    tags = ["O", "B-ORG", "O", "B-PER", "O", "B-ORG", "O", "B-PER"]
    pieces = [(0, 1), (1, 3), (3, 4), (4, 10), (10, 11), (11, 15), (15, 20)]
    assert word_starts(text, pieces) == [True] * 7
    owner, labels = token_word_labels(text, words, tags, pieces)
    assert owner == [0, 1, 2, 3, 4, 5, 7]
    assert [LABELS[x] for x in labels] == ["O", "B-ORG", "O", "B-PER", "O", "B-ORG", "B-PER"]
    # a gold word cut into two words by the rule: "Baden-Württemberg" -> B-LOC, I-LOC (the
    # hyphen) and I-LOC; a continuation piece without punctuation is ignored (-1)
    text = "Baden-Württemberg liegt"
    words, tags = [(0, 17), (18, 23)], ["B-LOC", "O"]
    pieces = [(0, 5), (5, 6), (6, 10), (10, 17), (17, 23)]
    _, labels = token_word_labels(text, words, tags, pieces)
    assert labels == [LABELS.index("B-LOC"), LABELS.index("I-LOC"), LABELS.index("I-LOC"), -1, 0], labels


def test_document_windows_and_buckets():
    rng = random.Random(3)
    enc = [{"ids": [1] * n, "labels": [0] * n, "italian_o": [False] * n, "doc": d}
           for d, n in [(0, 30), (0, 40), (0, 50), (1, 20), (1, 300), (1, 10)]]
    examples = make_examples(enc, 254, 0.0, rng)
    assert sum(len(e["ids"]) for e in examples) == 30 + 40 + 50 + 20 + 254 + 10  # each sentence once, long ones cut
    assert all(len(e["ids"]) <= 254 for e in examples)
    assert len({e["doc"] for e in examples}) == 2 and len(examples) < 6, "windows group sentences of one document"
    singles = make_examples(enc, 254, 1.0, rng)
    assert len(singles) == 6
    many = [{"ids": [1] * rng.randint(5, 80), "labels": [], "italian_o": [], "doc": 0} for _ in range(5000)]
    batches = bucketed_batches(many, 1024, rng)
    assert sorted(id(e) for b in batches for e in b) == sorted(id(e) for e in many)
    padded = sum(len(b) * (max(len(e["ids"]) for e in b) + 2) for b in batches)
    real = sum(len(e["ids"]) + 2 for e in many)
    assert 1 - real / padded < 0.05, 1 - real / padded
    assert all(len(b) * (max(len(e["ids"]) for e in b) + 2) <= 1024 for b in batches)


def test_window_plan_matches_postilla():
    """The doc test of crates/core/src/ner/windows.rs."""
    windows, owner = window_plan(10, 6, 2)
    assert windows == [(0, 6), (4, 10)]
    assert owner == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]


def smoke_train(out, *extra):
    """A two-epoch compact smoke run of train_ner.py on 48 real sentences into `out` (its
    stdout); `extra` options are added to (or override) the command."""
    import subprocess
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_ner.py")
    cmd = [sys.executable, script, "--out", str(out), "--limit", "48", "--epochs", "2", "--max-length", "128",
           "--batch-tokens", "256", "--precision", "fp32", "--threads", "2", "--compact", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def written_weights(out):
    """The trained weights a run or a soup wrote to `out` (its `trained-*` safetensors files),
    merged into one name -> tensor map."""
    from safetensors.torch import load_file
    weights = {}
    for name in sorted(os.listdir(out)):
        if name.startswith("trained-"):
            weights.update(load_file(str(out / name)))
    return weights


def test_a_cut_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    """A two-epoch smoke run on the real data and base model, against the same run stopped after
    its first epoch (`--max-stages 1`) and continued with `--resume`: same dev history, same
    selection, byte-identical weights."""
    import subprocess
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    base = os.path.join(root, "models", "e5-small")
    data = DATA
    assert os.path.exists(os.path.join(base, "model.safetensors")), "models/e5-small is not built: run `just setup`"
    assert os.path.isdir(os.path.join(data, "ner")), f"{data}/ner is missing"
    script = os.path.join(root, "training", "train_ner.py")
    train = smoke_train

    train(tmp_path / "whole", "--ema", "0.9")
    cut = train(tmp_path / "cut", "--max-stages", "1", "--ema", "0.9")
    assert '"stopped_after_stage": "gold-1"' in cut and not (tmp_path / "cut" / "training-log.json").exists()
    # other options are refused, naming the file
    refused = subprocess.run([sys.executable, script, "--out", str(tmp_path / "cut"), "--limit", "48", "--epochs", "3",
                              "--max-length", "128", "--batch-tokens", "256", "--precision", "fp32", "--compact",
                              "--resume"], capture_output=True, text=True)
    assert refused.returncode != 0 and "resume.pt" in refused.stderr and "other options" in refused.stderr
    resumed = train(tmp_path / "cut", "--resume", "--ema", "0.9")
    assert '"resumed"' in resumed and '"after_stage": "gold-1"' in resumed

    whole, again = written_weights(tmp_path / "whole"), written_weights(tmp_path / "cut")
    assert whole.keys() == again.keys() and whole
    for name in whole:
        assert torch.equal(whole[name], again[name]), name
    log_whole = json.load(open(tmp_path / "whole" / "training-log.json"))
    log_again = json.load(open(tmp_path / "cut" / "training-log.json"))
    assert log_whole["dev"] == log_again["dev"] and log_whole["selected"] == log_again["selected"]
    assert len(log_again["segments_minutes"]) == 2
    # the moving average (--ema) is carried across the cut too, and scored as a candidate
    assert [d["stage"] for d in log_whole["dev"]] == ["gold-1", "gold-2", "average-last-2", "ema-0.9"]
    ema_whole = torch.load(tmp_path / "whole" / "checkpoint-ema-0.9.pt")["state"]
    ema_again = torch.load(tmp_path / "cut" / "checkpoint-ema-0.9.pt")["state"]
    assert ema_whole.keys() == whole.keys()
    for name in ema_whole:
        assert torch.equal(ema_whole[name], ema_again[name]), name
    assert not (tmp_path / "cut" / "resume.pt").exists(), "a finished run removes resume.pt"

    # a continuation (`--init` a finished compact run) scores its starting point anew before
    # training: it is the first dev entry (step 0) and a candidate of the selection
    cont = train(tmp_path / "cont", "--init", str(tmp_path / "whole"), "--epochs", "1", "--seed", "17")
    init = next(json.loads(line) for line in cont.splitlines() if line.startswith('{"init"'))
    assert init["init_dev_stored"] == log_whole["selected"]
    log_cont = json.load(open(tmp_path / "cont" / "training-log.json"))
    start = log_cont["dev"][0]
    assert start == init["init_dev"]
    assert start["stage"] == "package:" + log_whole["selected"]["stage"] and start["step"] == 0
    assert {"kind-wn", "conll-de", "selection", "conll-de-doc"} <= start.keys()
    assert [d["stage"] for d in log_cont["dev"]] == [start["stage"], "gold-1", "average-last-2"]
    best = max(log_cont["dev"], key=lambda d: d["selection"])
    assert log_cont["selected"]["selection"] == best["selection"]


def test_viterbi_tags_is_the_best_well_formed_sequence():
    """Postilla's default decoding: against brute force over every IOB2 sequence of up to three
    words (an I-X only after B-X or I-X), on random and peaked probabilities."""
    import itertools
    import math
    from train_ner import spans

    def well_formed(tags):
        return all(not t.startswith("I-") or (i > 0 and tags[i - 1] != "O" and tags[i - 1][2:] == t[2:])
                   for i, t in enumerate(tags))

    rng = random.Random(5)
    for _ in range(60):
        n = rng.randint(1, 3)
        probs = []
        for _ in range(n):
            raw = [rng.random() ** 4 for _ in LABELS]
            probs.append([p / sum(raw) for p in raw])
        best = max((seq for seq in itertools.product(LABELS, repeat=n) if well_formed(seq)),
                   key=lambda seq: sum(math.log(probs[k][LABELS.index(t)]) for k, t in enumerate(seq)))
        assert viterbi_tags(probs) == list(best)
    # "Anna Rossi": Anna leans O but may begin PER, Rossi is I-PER: Viterbi opens the entity at Anna
    o, b_per, i_per = (LABELS.index(t) for t in ("O", "B-PER", "I-PER"))
    anna, rossi = [0.01] * len(LABELS), [0.01] * len(LABELS)
    anna[o], anna[b_per] = 0.55, 0.38
    rossi[i_per] = 0.92
    tags = viterbi_tags([anna, rossi])
    assert tags == ["B-PER", "I-PER"] and spans(tags, strict=True) == [(0, 2, "PER")]
    assert viterbi_tags([]) == []
    # the same words as two sentences ("Anna" ends one, "Rossi" opens the next): no entity runs
    # across the break, so Rossi takes its best opening tag
    rossi[b_per] = 0.05
    assert viterbi_tags([anna, rossi]) == ["B-PER", "I-PER"]
    assert viterbi_tags([anna, rossi], breaks={1}) == ["O", "B-PER"]


def test_ema_averages_the_trained_weights_with_a_warm_up():
    """`--ema d`: after update t the average is d_t * average + (1 - d_t) * weights, with
    d_t = min(d, (1 + t) / (10 + t)); frozen parameters are not averaged; bad decays refused."""
    assert ema_decay(0.999, 1) == 2 / 11 and ema_decay(0.999, 10**6) == 0.999
    assert parse_ema("") == [] and parse_ema("0.999, 0.9995") == [0.999, 0.9995]
    for bad in ("1.0", "0", "-0.5"):
        try:
            parse_ema(bad)
        except ValueError:
            continue
        raise AssertionError(f"--ema {bad} accepted")
    model = torch.nn.Linear(2, 1)
    model.bias.requires_grad_(False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    averages = {"weight": torch.zeros(1, 2)}
    ema_update(torch, averages, model, 0.5, 1)  # d_1 = min(0.5, 2/11) = 2/11
    assert torch.allclose(averages["weight"], torch.tensor([[9 / 11, 18 / 11]]))
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 0.0]]))
    ema_update(torch, averages, model, 0.5, 100)  # d = 0.5
    assert torch.allclose(averages["weight"], torch.tensor([[0.5 * 9 / 11 + 1.5, 9 / 11]]))
    assert set(averages) == {"weight"}


def test_data_seed_changes_the_data_order_but_not_the_head_start(tmp_path):
    """`--data-seed`: with lr 0 the weights a run writes are its starting weights. One --seed
    with two data seeds starts from the same classifier head and sees other batches (other
    losses); another --seed starts from another head."""
    runs = {}
    for name, extra in (("a", ["--seed", "13"]), ("b", ["--seed", "13", "--data-seed", "99"]),
                        ("c", ["--seed", "14"])):
        smoke_train(tmp_path / name, "--lr", "0", "--epochs", "1", "--keep", "last", *extra)
        runs[name] = (written_weights(tmp_path / name),
                      json.load(open(tmp_path / name / "training-log.json"))["first_losses"])
    (head_a, losses_a), (head_b, losses_b), (head_c, _) = runs["a"], runs["b"], runs["c"]
    assert torch.equal(head_a["classifier.weight"], head_b["classifier.weight"])
    assert not torch.equal(head_a["classifier.weight"], head_c["classifier.weight"])
    assert losses_a != losses_b


def test_layer_decay_groups_learning_rates_by_depth():
    """`--layer-decay d`: the head learns at lr, encoder layer l of L at lr * d**(L - l), the
    embeddings at lr * d**(L + 1); biases and layer norms without weight decay; every trained
    parameter in exactly one group, the frozen word embeddings in none. d = 1 keeps one group."""
    from transformers import BertConfig, BertForTokenClassification
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=16, num_labels=len(LABELS))
    model = BertForTokenClassification(config)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    trained = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    lr_of, decay_of = {}, {}
    for group in parameter_groups(model, 1e-3, 0.5):
        for p in group["params"]:
            assert id(p) not in lr_of, f"{trained[id(p)]} in two groups"
            lr_of[id(p)], decay_of[id(p)] = group["lr"], group["weight_decay"]
    assert set(lr_of) == set(trained)
    by_name = {trained[i]: (lr_of[i], decay_of[i]) for i in lr_of}
    assert by_name["classifier.weight"] == (1e-3, 0.01)
    assert by_name["classifier.bias"] == (1e-3, 0.0)
    assert by_name["bert.encoder.layer.2.output.dense.weight"] == (1e-3 * 0.5, 0.01)
    assert by_name["bert.encoder.layer.0.attention.self.query.weight"] == (1e-3 * 0.5 ** 3, 0.01)
    assert by_name["bert.encoder.layer.0.output.LayerNorm.weight"] == (1e-3 * 0.5 ** 3, 0.0)
    assert by_name["bert.embeddings.position_embeddings.weight"] == (1e-3 * 0.5 ** 4, 0.01)
    single = parameter_groups(model, 1e-3, 1.0)
    assert len(single) == 1 and single[0]["lr"] == 1e-3 and len(single[0]["params"]) == len(trained)


def test_languages_keep_the_training_sentences_of_those_languages_only():
    both, _, dev, harmonised, places = load_data(DATA, 0)
    german, _, dev_de, harmonised_de, places_de = load_data(DATA, 0, languages=("de",))
    italian, _, _, _, _ = load_data(DATA, 0, languages=("it",))
    assert {s["lang"] for s in both} == {"it", "de"}
    assert {s["lang"] for s in german} == {"de"} and {s["lang"] for s in italian} == {"it"}
    assert len(german) + len(italian) == len(both) == 50861
    assert german == [s for s in both if s["lang"] == "de"], "the same sentences, harmonised the same way"
    # the dev sets, the place list and the harmonisation do not depend on the training languages
    assert dev_de == dev and (harmonised_de, places_de) == (harmonised, places)


def test_extra_gold_adds_kind_dev_and_germeval_dev_under_the_conll_convention():
    assert [germeval_tag(t) for t in ("O", "B-PER", "I-ORG", "B-LOC", "B-OTH", "I-OTH", "B-LOCderiv", "I-LOCderiv",
                                      "B-ORGpart", "I-PERpart")] == \
        ["O", "B-PER", "I-ORG", "B-LOC", "B-MISC", "I-MISC", "B-MISC", "I-MISC", IGNORED_TAG, IGNORED_TAG]
    base, _, dev, harmonised, places = load_data(DATA, 0)
    extra, _, dev_x, harmonised_x, places_x = load_data(DATA, 0, extra_gold=("kind-dev", "germeval-dev"))
    d = os.path.join(DATA, "ner")
    kind_dev = read_conll(f"{d}/it/kind/FIC_dev.tsv", "\t", "it") + read_conll(f"{d}/it/kind/ADG_dev.tsv", "\t", "it")
    germeval = [s for s in extra if s["doc"][0] == 5]
    assert len(extra) == len(base) + len(kind_dev) + len(germeval)
    assert extra[:len(base)] == base, "the training sets come first, unchanged"
    assert [s["tokens"] for s in extra if s["doc"][0] in (3, 4)] == [s["tokens"] for s in kind_dev]
    assert len(germeval) == 2200 and germeval[0]["tokens"][7:9] == ["Ecce", "homo"]
    assert germeval[0]["tags"][7:9] == ["B-MISC", "I-MISC"], "GermEval OTH is CoNLL's MISC"
    assert len({s["doc"] for s in germeval}) == len(germeval), "GermEval sentences are single sentences"
    # the selection sets and the place list do not change; KIND's extra sets are harmonised too
    assert dev_x == dev and places_x == places and harmonised_x > harmonised
    assert {t for s in germeval for t in s["tags"]} == set(LABELS) | {IGNORED_TAG}
    # a compound part (GermEval ORGpart: "EU-Kommission") is ignored by the loss
    text, offs = build_text(["Die", "EU-Kommission", "tagt"], False)
    toks = [(0, 3), (4, 6), (6, 7), (7, 17), (18, 22)]
    _, labels = token_word_labels(text, offs, ["O", IGNORED_TAG, "O"], toks)
    assert labels == [LABELS.index("O"), -1, -1, -1, LABELS.index("O")]


def test_dev_in_training_half_trains_on_the_first_halves_and_selects_on_the_second():
    base, _, dev, harmonised, places = load_data(DATA, 0)
    half, _, held_out, harmonised_h, places_h = load_data(DATA, 0, dev_in_training="half")
    whole, _, dev_all, _, _ = load_data(DATA, 0, dev_in_training="all")
    kind, conll = dev["kind-wn"], dev["conll-de"]
    assert (len(kind), len(conll)) == (2594, 2867)
    assert half[:len(base)] == base and whole[:len(base)] == base, "the training sets come first, unchanged"
    assert places_h == places and harmonised_h == harmonised, "the place list is the training sets' alone"
    # half: KIND WN dev cut at its middle sentence, CoNLL dev at its middle document
    added = half[len(base):]
    assert [s["tokens"] for s in added] + [s["tokens"] for s in held_out["kind-wn"] + held_out["conll-de"]] == \
        [s["tokens"] for s in kind[:1297]] + [s["tokens"] for s in conll if s["doc"] < 101] + \
        [s["tokens"] for s in kind[1297:]] + [s["tokens"] for s in conll if s["doc"] >= 101]
    assert len(held_out["kind-wn"]) == 1297 and {s["doc"] for s in held_out["conll-de"]} == set(range(101, 202))
    trained_docs = {s["doc"][1] for s in added if s["lang"] == "de"}
    assert trained_docs == set(range(1, 101)), "a document is trained on or held out whole"
    # the trained KIND sentences carry Postilla's convention, as KIND train does
    assert [s["tags"] for s in added if s["lang"] == "it"] == [s["tags"] for s in kind[:1297]]
    raw = read_conll(os.path.join(DATA, "ner", "it", "kind", "WN_dev.tsv"), "\t", "it")[:1297]
    assert sum(a["tags"] != b["tags"] for a, b in zip(raw, added)) > 0, "KIND's ORG places became LOC"
    # the dev sets keep their own document numbers (Postilla's windows are per document)
    assert held_out["conll-de"][0]["doc"] == 101
    # all: both dev sets are trained on and still scored
    assert [s["tokens"] for s in whole[len(base):]] == [s["tokens"] for s in kind + conll] and dev_all == dev
    first, second = split_dev({"kind-wn": kind[:5], "conll-de": [dict(c, doc=d) for c, d in zip(conll, (1, 1, 2, 3, 3))]})
    assert len(first["kind-wn"]) == 2 and [s["doc"] for s in first["conll-de"]] == [1, 1]
    assert [s["doc"] for s in second["conll-de"]] == [2, 3, 3]


def test_keep_saves_the_last_epoch_or_the_average_whatever_the_dev_scores(tmp_path):
    """`--keep last` and `--keep average` write the last epoch's weights, or the average of the
    last two, even where the dev selection would pick another (what a run that trains on the
    dev sets must do); `--dev-in-training all` without them is refused."""
    for keep in ("last", "average"):
        out = tmp_path / keep
        smoke_train(out, "--keep", keep)
        states = [torch.load(out / f"checkpoint-gold-{e}.pt", map_location="cpu", weights_only=True)["state"]
                  for e in (1, 2)]
        expected = states[1] if keep == "last" else {n: (states[0][n] + states[1][n]) / 2 for n in states[0]}
        w = written_weights(out)
        assert w.keys() == expected.keys()
        for name, tensor in w.items():
            assert torch.equal(tensor, expected[name].half()), (keep, name)
        log = json.load(open(out / "training-log.json"))
        assert log["selected"]["stage"] == ("gold-2" if keep == "last" else "average-last-2")
    import subprocess
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_ner.py")
    refused = subprocess.run([sys.executable, script, "--out", str(tmp_path / "no"), "--dev-in-training", "all"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "--keep last or average" in refused.stderr


def test_hyphen_joins_write_two_names_as_a_glued_compound_with_their_own_tags():
    def batch():
        return [sent("le relazioni Cina e Russia", "O O B-LOC O B-LOC"),
                sent("Merkel und Macron", "B-PER O B-PER", "de"), sent("Fiat e Chrysler", "B-ORG O B-ORG"),
                sent("Putin e Cina", "B-PER O B-LOC"), sent("la Cina e la Russia", "O B-LOC O O B-LOC"),
                sent("Emilia-Romagna", "B-LOC")]
    unchanged = batch()
    assert join_names_with_hyphens(unchanged, 0.0, 1) == 0 and unchanged == batch()
    joined = batch()
    assert join_names_with_hyphens(joined, 1.0, 1) == 2
    assert joined[0]["tokens"] == ["le", "relazioni", "Cina", "-", "Russia"]
    assert joined[0]["tags"] == ["O", "O", "B-LOC", "O", "B-LOC"] and joined[0]["glued"] == {3}
    assert joined[1]["tokens"] == ["Merkel", "-", "Macron"]
    assert joined[2:] == batch()[2:], "ORG pairs, mixed types and non-adjacent names stay as they are"
    for news in (False, True):
        text, offs = build_text(joined[0]["tokens"], news, joined[0]["glued"])
        assert text == "le relazioni Cina-Russia"
        assert [text[a:b] for a, b in offs] == joined[0]["tokens"]
    # the name after the glued hyphen starts a word of its own, with its own B- tag
    text, offs = build_text(joined[0]["tokens"], False, joined[0]["glued"])
    toks = [(0, 2), (2, 12), (12, 17), (17, 18), (18, 24)]
    _, labels = token_word_labels(text, offs, joined[0]["tags"], toks)
    assert labels == [LABELS.index(t) for t in ("O", "O", "B-LOC", "O", "B-LOC")]
    # while one gold word with a hyphen continues across it, as before
    text, offs = build_text(["Emilia-Romagna"], False)
    _, labels = token_word_labels(text, offs, ["B-LOC"], [(0, 6), (6, 7), (7, 14)])
    assert labels == [LABELS.index("B-LOC"), LABELS.index("I-LOC"), LABELS.index("I-LOC")]


def test_a_resume_file_from_before_languages_resumes_as_both_languages(tmp_path):
    args = argparse.Namespace(out="o", resume=True, max_stages=0, threads=2, lr=1e-4, languages="it,de",
                              extra_gold="", hyphen_joins=0.0, dev_in_training="none", keep="select", ema="", data_seed=None)
    before = {k: v for k, v in resume_options(args).items()
              if k not in ("languages", "extra_gold", "hyphen_joins", "dev_in_training", "keep", "ema", "data_seed")}
    torch.save({"options": before, "steps": 7}, tmp_path / "resume.pt")
    assert load_resume(torch, str(tmp_path / "resume.pt"), args, 7)["steps"] == 7
    args.languages = "de"
    try:
        load_resume(torch, str(tmp_path / "resume.pt"), args, 7)
    except SystemExit as refused:
        assert "other options" in str(refused)
    else:
        raise AssertionError("a run over both languages resumed as a German-only one")


def test_auto_precision_picks_bf16_only_where_it_was_measured_faster():
    def cpu(vendor, flags):
        return f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n"
    assert bf16_supported(torch, "cpu", cpu("AuthenticAMD", "avx512f avx512_bf16 avx512_vnni"))
    assert not bf16_supported(torch, "cpu", cpu("GenuineIntel", "avx512f avx512_bf16 avx512_fp16 avx512_vnni"))
    assert bf16_supported(torch, "cpu", cpu("GenuineIntel", "avx512f avx512_bf16 amx_bf16 amx_tile"))
    assert not bf16_supported(torch, "cpu", cpu("AuthenticAMD", "avx512f avx2"))
    assert not bf16_supported(torch, "cpu", "")


def test_greedy_soup_adds_an_ingredient_only_when_the_dev_score_does_not_fall():
    """The greedy soup with a scorer whose best point is known: ingredients are tried best
    first, one that pulls the average away from the optimum is left out, the soup is the
    uniform average of those kept."""
    from soup import average, greedy_soup
    target = torch.tensor([1.0, 2.0])

    def score(state):
        return {"selection": round(1.0 - float((state["w"] - target).norm()), 4)}

    ingredients = [("far", {"w": torch.tensor([5.0, 5.0])}),
                   ("wide", {"w": torch.tensor([0.7, 2.6])}),
                   ("above", {"w": torch.tensor([1.2, 2.1])}),
                   ("below", {"w": torch.tensor([0.8, 1.9])})]
    soup, kept, best, history = greedy_soup(ingredients, score)
    # tried in order of their own score: above and below (tied: the order given), wide, far;
    # above and below each miss the optimum, their average hits it, wide and far pull it away
    assert kept == ["above", "below"]
    assert torch.allclose(soup["w"], target) and best == {"selection": 1.0} == score(soup)
    trials = [h for h in history if h["stage"] == "soup-trial"]
    assert [(t["ingredients"][-1], t["added"]) for t in trials] == [("below", True), ("wide", False), ("far", False)]
    assert [h["ingredient"] for h in history if h["stage"] == "ingredient"] == ["far", "wide", "above", "below"]
    # different parameter names are refused
    import pytest
    with pytest.raises(SystemExit):
        average([{"w": target}, {"v": target}])


def test_soup_of_a_smoke_run_packages_like_a_run(tmp_path):
    """soup.py on a real two-epoch smoke run's checkpoints: the written weights are the average
    of the kept ingredients (fp16), its log scores every ingredient and trial, and
    train_ner.py's --init reads it as a packaged model."""
    import subprocess
    from train_ner import load_initial
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    run = tmp_path / "run"
    smoke_train(run)
    ingredients = [str(run / "checkpoint-gold-2.pt"), str(run / "checkpoint-gold-1.pt")]
    out = tmp_path / "soup"
    done = subprocess.run([sys.executable, os.path.join(root, "training", "soup.py"), "--out", str(out), *ingredients,
                           "--limit", "48", "--max-length", "128", "--threads", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    log = json.load(open(out / "training-log.json"))
    assert [h["stage"] for h in log["dev"]] == ["ingredient", "ingredient", "soup-trial"]
    kept = log["soup"]["kept"]
    states = [torch.load(p, map_location="cpu", weights_only=True)["state"] for p in kept]
    written = written_weights(out)
    assert written.keys() == states[0].keys()
    for name, tensor in written.items():
        expected = (sum(s[name] for s in states) / len(states)).half()
        assert torch.equal(tensor, expected), name
    first, trial = next(h for h in log["dev"] if h.get("ingredient") == kept[0]), log["dev"][2]
    assert trial["added"] == (len(kept) == 2)
    # the soup's scores are the trial's when the second ingredient was added, else the first's
    expected = trial if trial["added"] else first
    assert all(log["selected"][k] == expected[k] for k in ("kind-wn", "conll-de", "selection", "conll-de-doc"))
    assert load_initial(torch, str(out))["stage"] == "package:soup"


def recipe_log(data_seed, **changes):
    """The logged `args` of one of the recipe's runs (training/recipe.py), with `changes`."""
    import recipe
    args = {**recipe.EXPECTED, "precision": "bf16", "data_seed": data_seed, "threads": 2, "out": "x"}
    return {**args, **changes}


def test_recipe_knows_its_runs_by_their_logged_options():
    import recipe
    assert recipe.differences(recipe_log(13), 13) == {}
    assert recipe.differences(recipe_log(None), 13) == {}  # no --data-seed: the seed, 13
    assert recipe.differences(recipe_log(29), 13) == {"data_seed": 29}
    assert recipe.differences(recipe_log(29, lr=2e-4), 29) == {"lr": 2e-4}
    assert recipe.differences(recipe_log(29, precision="int8"), 29) == {"precision": "int8"}
    assert recipe.differences(recipe_log(13, epochs=1, limit=48), 13) == {"epochs": 1, "limit": 48}


def test_recipe_trains_both_runs_then_soups_them_keeping_resuming_or_refusing_runs(tmp_path, monkeypatch, capsys):
    """training/recipe.py's orchestration with train_ner.py and soup.py replaced by a stand-in
    that records each command and writes the log a finished run writes."""
    import recipe
    runs = [(str(tmp_path / "a"), 13), (str(tmp_path / "b"), 29)]
    monkeypatch.setattr(recipe, "RUNS", runs)
    monkeypatch.setattr(recipe, "SOUP", str(tmp_path / "soup"))
    commands = []

    def stand_in(command, log_path):
        commands.append(command)
        out = command[command.index("--out") + 1]
        if command[1].endswith("train_ner.py"):
            seed = int(command[command.index("--data-seed") + 1])
            log = {"minutes": 50.0, "args": recipe_log(seed, precision="auto")}
        else:
            log = {"minutes": 7.5}
        json.dump(log, open(os.path.join(out, "training-log.json"), "w"))
        if os.path.exists(os.path.join(out, "resume.pt")):
            os.remove(os.path.join(out, "resume.pt"))  # a resumed run that ends removes it
        return 0

    monkeypatch.setattr(recipe, "tee", stand_in)
    recipe.train([])
    assert [c[1].rsplit("/", 1)[-1] for c in commands] == ["train_ner.py", "train_ner.py", "soup.py"]
    for command, (run, seed) in zip(commands, runs):
        assert command[2:4] == ["--out", run] and command[-2:] == ["--data-seed", str(seed)]
        assert command[4:4 + len(recipe.RUN_ARGS)] == recipe.RUN_ARGS
    assert commands[2][-2:] == [run for run, _ in runs]
    assert '"recipe_minutes": 107.5' in capsys.readouterr().out

    # Started again: finished runs are kept, a run with resume.pt resumes, then the soup.
    commands.clear()
    open(os.path.join(runs[1][0], "resume.pt"), "w").close()
    recipe.train(["--max-stages", "3"])
    assert len(commands) == 2 and commands[0][-3:] == ["--resume", "--max-stages", "3"]
    assert commands[0][3] == runs[1][0] and commands[1][1].endswith("soup.py")

    # A finished directory trained otherwise is refused, not soup material.
    json.dump({"minutes": 1.0, "args": recipe_log(13, lr=1e-4)}, open(os.path.join(runs[0][0], "training-log.json"), "w"))
    commands.clear()
    try:
        recipe.train([])
        raise AssertionError("a run with lr 1e-4 was kept")
    except SystemExit as refused:
        assert "lr" in str(refused)
    assert commands == []
