"""Postilla's e5 sentence embedding in PyTorch, shared by the Python code that needs it
(training/topic_adapter.py, bench/hf_bench.py, scripts/topics_train_experiments.py) so that
all of them embed exactly as `crates/core/src/embed.rs` does:

* "query: " prefix on every text (documents and topic descriptions alike);
* the text's tokens cut into windows of `max_position_embeddings - 2` content tokens (510 for
  e5-small), each with [CLS] and [SEP], never truncated;
* per window, the mean of the last hidden states over its tokens; per text, the mean of its
  windows weighted by their content tokens; L2-normalised;
* windows batched in order of length (stable), padding masked.
"""
import numpy as np

PREFIX = "query: "


def load_encoder(model_dir):
    """(tokenizer, model) of an e5 directory, in eval mode, without the pooler."""
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    return tok, model


def windows_of(tok, texts, window):
    """(owner text index, [CLS] + content ids + [SEP]) for every window of every text."""
    out = []
    for i, t in enumerate(texts):
        ids = tok(PREFIX + t, add_special_tokens=False)["input_ids"]
        for s in range(0, max(len(ids), 1), window):
            out.append((i, [tok.cls_token_id] + ids[s:s + window] + [tok.sep_token_id]))
    return out


def embed(encoder, texts, batch=16):
    """Postilla's sentence embedding of each text: float32 rows, L2-normalised (numpy)."""
    import torch
    tok, model = encoder
    window = model.config.max_position_embeddings - 2
    wins = windows_of(tok, texts, window)
    order = np.argsort([len(w) for _, w in wins], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float64)
    for b in range(0, len(order), batch):
        idx = order[b:b + batch]
        n = max(len(wins[j][1]) for j in idx)
        ids = torch.tensor([wins[j][1] + [tok.pad_token_id] * (n - len(wins[j][1])) for j in idx])
        mask = torch.tensor([[1] * len(wins[j][1]) + [0] * (n - len(wins[j][1])) for j in idx])
        with torch.inference_mode():
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = ((h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)).double().numpy()
        for k, j in enumerate(idx):
            owner, row = wins[j]
            out[owner] += (len(row) - 2) * pooled[k]
    return (out / np.linalg.norm(out, axis=-1, keepdims=True)).astype(np.float32)
