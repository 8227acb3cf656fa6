#!/usr/bin/env python3
"""Unit tests of the training recipe's two choices (run by `just test`):
the place-name harmonisation rule and the partial-label loss for Italian O tokens."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from train_ner import LABELS, harmonise, loss_fn, place_gazetteer, strict_f1  # noqa: E402


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


if __name__ == "__main__":
    test_harmonisation()
    test_partial_label_loss()
    test_strict_f1_equals_seqeval()
    print("3 passed, 0 failed")
