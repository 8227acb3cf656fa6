#!/usr/bin/env python3
"""Hugging Face reference for Postilla's NLI topic method (test-only).

  make-models OUT_DIR
      Tiny random BERT sequence classifiers (WordPiece vocabulary trained on the seeds) in three
      label layouts: OUT_DIR/entail-first (entailment, neutral, contradiction),
      OUT_DIR/entail-last (contradiction, neutral, entailment), OUT_DIR/two-class
      (entailment, not_entailment). Weights are drawn with a wide initializer range (0.6) so that
      the labels' scores differ clearly.

  predict MODEL_DIR TEXTS_JSON LABELS_JSON TEMPLATE MULTI(0|1)
      pipeline("zero-shot-classification")(texts, candidate_labels, hypothesis_template,
      multi_label) as JSON: per text, [[label, score], ...] best first.
"""
import json
import os
import sys

import torch


def make_models(out):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    seeds = sorted(f for f in os.listdir(os.path.join(root, "seeds")) if f.endswith(".txt"))
    corpus = [open(os.path.join(root, "seeds", f), encoding="utf-8").read() for f in seeds]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    layouts = {
        "entail-first": ["entailment", "neutral", "contradiction"],
        "entail-last": ["contradiction", "neutral", "entailment"],
        "two-class": ["entailment", "not_entailment"],
    }
    for seed, (name, labels) in enumerate(layouts.items()):
        torch.manual_seed(100 + seed)
        cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128, type_vocab_size=2,
                         initializer_range=0.6,
                         id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
                         pad_token_id=tok.token_to_id("[PAD]"))
        model = BertForSequenceClassification(cfg).eval()
        with torch.no_grad():
            model.classifier.weight.mul_(2.0)
        model.save_pretrained(os.path.join(out, name), safe_serialization=True)
        fast.save_pretrained(os.path.join(out, name))


def predict(model_dir, texts, labels, template, multi):
    from transformers import pipeline
    pipe = pipeline("zero-shot-classification", model=model_dir, device="cpu")
    out = []
    for text in texts:
        r = pipe(text, candidate_labels=labels, hypothesis_template=template, multi_label=multi)
        out.append([[l, float(s)] for l, s in zip(r["labels"], r["scores"])])
    return out


if __name__ == "__main__":
    if sys.argv[1] == "make-models":
        make_models(sys.argv[2])
    elif sys.argv[1] == "predict":
        texts = json.load(open(sys.argv[3], encoding="utf-8"))
        labels = json.load(open(sys.argv[4], encoding="utf-8"))
        json.dump(predict(sys.argv[2], texts, labels, sys.argv[5], sys.argv[6] == "1"), sys.stdout)
    else:
        sys.exit(__doc__)
