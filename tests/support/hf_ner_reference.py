#!/usr/bin/env python3
"""Hugging Face reference for Postilla's NER pipeline parity tests (test-only).

  make-models OUT_DIR
      Writes four tiny random token classifiers with `save_pretrained` (safetensors):
      OUT_DIR/tiny-bert  (BERT, the WordPiece vocabulary of tests/support/tiny-bert-vocab.txt)
      OUT_DIR/tiny-xlmr  (XLM-RoBERTa, max_position_embeddings 514, models/e5-small's tokenizer)
      OUT_DIR/tiny-distilbert, OUT_DIR/tiny-deberta (DistilBERT, DeBERTa-v2; the WordPiece vocabulary)
      Labels O B-PER I-PER B-ORG I-ORG B-LOC I-LOC B-MISC I-MISC. The classifier weights are
      scaled up so that predictions are decisive rather than near-uniform.

  make-vocab VOCAB_TXT
      Trains a 600-piece WordPiece vocabulary on the seeds and writes it, one piece per line in
      id order: how tests/support/tiny-bert-vocab.txt was made. The trainer breaks ties in hash
      order, so each run draws a slightly different vocabulary; the tiny models read the
      committed one, so that every test run (and CI) sees the same token ids.

  predict MODEL_DIR TEXTS_JSON AGGREGATION MAX_LENGTH STRIDE
      Prints, as JSON, one list of entities {start,end,label,score} per text.

How the reference is computed. Each text goes through transformers' own
TokenClassificationPipeline functions: preprocess (tokenizer with offsets), the model's forward
pass, the pipeline's softmax, `gather_pre_entities`, `aggregate` and its "O" filter. Texts
that fit in one window are also run through `pipeline(...)(text)` and must give the same
answer. Texts longer than one window are cut into the windows Postilla documents (capacity =
max_length - 2 content tokens, consecutive windows sharing STRIDE tokens; each token's scores
from the window where it has most context), because Hugging Face's own `stride` handling
merges per-chunk entities by a different rule.

Two documented differences are normalised before comparing, both in Postilla's favour:
* Hugging Face decides "is this token a subword?" by looking for an ASCII space before it, so
  a word after a newline, tab or other Unicode space is glued to the previous word. The model
  sees the original text; the pipeline's word heuristic is given the same text with every
  whitespace character replaced by a space (same length, so the same offsets).
* Offsets of SentencePiece tokens include the space that became "▁"; the reference span is
  trimmed of surrounding whitespace, as Postilla reports it; an "entity" that is only
  whitespace (a lone "▁" token) is dropped.
"""
import json
import os
import sys

import numpy as np
import torch


LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
VOCAB = os.path.join(ROOT, "tests", "support", "tiny-bert-vocab.txt")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_tokenizer(model):
    """A BERT-style tokenizer (cased normaliser, BERT pre-tokenizer) around a WordPiece model."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers

    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    return tok


def make_vocab(path):
    """Trains a 600-piece WordPiece vocabulary on the seeds and writes it in id order."""
    from tokenizers import models, trainers

    seeds = sorted(f for f in os.listdir(os.path.join(ROOT, "seeds")) if f.endswith(".txt"))
    corpus = [open(os.path.join(ROOT, "seeds", f), encoding="utf-8").read() for f in seeds]
    tok = wordpiece_tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=600, special_tokens=SPECIALS))
    pieces = sorted(tok.get_vocab().items(), key=lambda item: item[1])
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(piece + "\n" for piece, _ in pieces))


def make_models(out):
    from tokenizers import models, processors
    from transformers import (BertConfig, BertForTokenClassification, PreTrainedTokenizerFast,
                              XLMRobertaConfig, XLMRobertaForTokenClassification, AutoTokenizer)

    id2label = dict(enumerate(LABELS))
    label2id = {v: k for k, v in id2label.items()}

    # tiny BERT with the committed WordPiece vocabulary (trained on the seeds by make-vocab)
    with open(VOCAB, encoding="utf-8") as f:
        vocab = {piece: i for i, piece in enumerate(f.read().splitlines())}
    tok = wordpiece_tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(1234)
    cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, id2label=id2label, label2id=label2id,
                     pad_token_id=tok.token_to_id("[PAD]"))
    bert = BertForTokenClassification(cfg).eval()
    with torch.no_grad():
        bert.classifier.weight.mul_(40.0)
    bert.save_pretrained(os.path.join(out, "tiny-bert"), safe_serialization=True)
    fast.save_pretrained(os.path.join(out, "tiny-bert"))

    # tiny DistilBERT and DeBERTa-v2 with the same WordPiece vocabulary
    from transformers import DebertaV2Config, DebertaV2ForTokenClassification, DistilBertConfig, DistilBertForTokenClassification
    torch.manual_seed(4321)
    cfg = DistilBertConfig(vocab_size=tok.get_vocab_size(), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                           max_position_embeddings=128, id2label=id2label, label2id=label2id,
                           pad_token_id=tok.token_to_id("[PAD]"))
    distil = DistilBertForTokenClassification(cfg).eval()
    with torch.no_grad():
        distil.classifier.weight.mul_(40.0)
    distil.save_pretrained(os.path.join(out, "tiny-distilbert"), safe_serialization=True)
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]",
                            model_input_names=["input_ids", "attention_mask"]).save_pretrained(os.path.join(out, "tiny-distilbert"))
    torch.manual_seed(8765)
    cfg = DebertaV2Config(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=128, relative_attention=True,
                          position_buckets=32, max_relative_positions=-1, pos_att_type=["p2c", "c2p"],
                          position_biased_input=False, norm_rel_ebd="layer_norm", share_att_key=True,
                          type_vocab_size=0, id2label=id2label, label2id=label2id, pad_token_id=tok.token_to_id("[PAD]"))
    deberta = DebertaV2ForTokenClassification(cfg).eval()
    with torch.no_grad():
        deberta.classifier.weight.mul_(40.0)
    deberta.save_pretrained(os.path.join(out, "tiny-deberta"), safe_serialization=True)
    fast.save_pretrained(os.path.join(out, "tiny-deberta"))

    # tiny XLM-R with the e5-small tokenizer (XLM-R SentencePiece vocabulary)
    e5 = AutoTokenizer.from_pretrained(os.path.join(ROOT, "models", "e5-small"))
    torch.manual_seed(5678)
    cfg = XLMRobertaConfig(vocab_size=len(e5), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=514, id2label=id2label,
                           label2id=label2id, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    xlmr = XLMRobertaForTokenClassification(cfg).eval()
    with torch.no_grad():
        xlmr.classifier.weight.mul_(40.0)
    xlmr.save_pretrained(os.path.join(out, "tiny-xlmr"), safe_serialization=True)
    e5.save_pretrained(os.path.join(out, "tiny-xlmr"))


def windows(n, capacity, stride):
    """Postilla's WindowPlan (crates/core/src/ner/windows.rs)."""
    wins, start = [], 0
    while True:
        end = min(start + capacity, n)
        wins.append((start, end))
        if end >= n:
            break
        start += capacity - stride
    owner = []
    for t in range(n):
        best = None
        for w, (a, b) in enumerate(wins):
            if a <= t < b:
                ctx = min(t - a, b - 1 - t)
                if best is None or ctx > best[0]:
                    best = (ctx, w)
        owner.append(best[1])
    return wins, owner


def softmax(logits):
    maxes = np.max(logits, axis=-1, keepdims=True)
    shifted_exp = np.exp(logits - maxes)
    return shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)


def trim(text, start, end):
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def predict(model_dir, texts, aggregation, max_length, stride):
    from transformers import pipeline
    from transformers.pipelines.token_classification import AggregationStrategy

    pipe = pipeline("token-classification", model=model_dir, aggregation_strategy=aggregation, device="cpu")
    strategy = AggregationStrategy(aggregation)
    model, tok = pipe.model, pipe.tokenizer
    usable = model.config.max_position_embeddings - (2 if model.config.model_type in ("xlm-roberta", "roberta") else 0)
    capacity = min(max_length, usable) - 2
    results = []
    for text in texts:
        # same length, whitespace made ASCII spaces: only the pipeline's word heuristic sees it
        sentence = "".join(" " if c.isspace() else c for c in text)
        enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True, add_special_tokens=False)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        wins, owner = windows(len(ids), capacity, stride)
        scores = np.zeros((len(ids), len(LABELS)), dtype=np.float32)
        for w, (a, b) in enumerate(wins):
            window = [tok.cls_token_id] + ids[a:b] + [tok.sep_token_id]
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([window])).logits[0].numpy()
            probs = softmax(logits)[1:-1]
            for k, t in enumerate(range(a, b)):
                if owner[t] == w:
                    scores[t] = probs[k]
        pre = pipe.gather_pre_entities(sentence, np.array(ids), scores, offsets, np.zeros(len(ids), dtype=np.int64), strategy)
        grouped = pipe.aggregate(pre, strategy)
        entities = [e for e in grouped if e.get("entity_group", e.get("entity")) != "O"]
        if len(wins) == 1 and sentence == text:
            direct = pipe(text)
            assert [(e["start"], e["end"], e["entity_group"]) for e in direct] == \
                   [(e["start"], e["end"], e["entity_group"]) for e in entities], "harness differs from pipeline()"
            assert all(abs(float(a["score"]) - float(b["score"])) < 1e-6 for a, b in zip(direct, entities))
        out = []
        for e in entities:
            s, t = trim(text, int(e["start"]), int(e["end"]))
            if s == t:
                continue  # a lone whitespace token ("▁") is no entity
            out.append({"start": s, "end": t, "label": e["entity_group"], "score": float(e["score"])})
        results.append(out)
    return results


def main():
    if sys.argv[1] == "make-models":
        make_models(sys.argv[2])
    elif sys.argv[1] == "make-vocab":
        make_vocab(sys.argv[2])
    elif sys.argv[1] == "predict":
        model_dir, texts_path, aggregation, max_length, stride = sys.argv[2:7]
        texts = json.load(open(texts_path, encoding="utf-8"))
        json.dump(predict(model_dir, texts, aggregation, int(max_length), int(stride)), sys.stdout)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
