#!/usr/bin/env python3
"""PyTorch reference for `postilla train`'s optimisation steps (test-only).

  train_reference.py INIT_DIR BATCHES_DIR OUT.safetensors LR WEIGHT_DECAY CLIP WARMUP TOTAL FREEZE [PRECISION [LAYER_DECAY]]

INIT_DIR is a token-classification directory written by Postilla (config.json and
model.safetensors: the weights before the first step); BATCHES_DIR holds step-1.safetensors,
step-2.safetensors, ... (input_ids, attention_mask, allowed: the labels each token may take).
Each step is what training/train_ner.py does: the model in training mode, the partial-label
loss -log sum_{allowed} p (tokens with no allowed label not scored), backward,
`clip_grad_norm_`, `torch.optim.AdamW` (weight decay on every trained parameter),
`get_linear_schedule_with_warmup`. FREEZE=1 keeps the word embeddings fixed. PRECISION bf16
runs the forward under `torch.autocast("cpu", dtype=torch.bfloat16)`, as train_ner.py does (the
loss outside it); fp32 (the default) without. LAYER_DECAY d < 1 forms AdamW's parameter groups
with training/train_ner.py's own `parameter_groups` (layer-wise learning-rate decay; its grouped
form puts weight decay 0.01 on weights and none on biases and layer norms); 1 (the default) is
one group. Writes every weight after the steps to OUT and prints the losses as JSON.
"""
import glob
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForTokenClassification, get_linear_schedule_with_warmup


def loss_fn(logits, allowed):
    logp = torch.log_softmax(logits.float(), dim=-1)
    scored = allowed.any(dim=-1)
    effective = allowed | ~scored.unsqueeze(-1)
    per_token = logp.masked_fill(~effective, float("-inf")).logsumexp(dim=-1)
    return -(per_token * scored.float()).sum() / scored.float().sum().clamp(min=1)


def main():
    init, batches_dir, out, lr, wd, clip, warmup, total, freeze = sys.argv[1:10]
    precision = sys.argv[10] if len(sys.argv) > 10 else "fp32"
    layer_decay = float(sys.argv[11]) if len(sys.argv) > 11 else 1.0
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    torch.set_num_threads(1)
    model, info = AutoModelForTokenClassification.from_pretrained(init, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    if freeze == "1":
        model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if layer_decay < 1.0:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "training"))
        from train_ner import parameter_groups

        opt = torch.optim.AdamW(parameter_groups(model, float(lr), layer_decay))
    else:
        opt = torch.optim.AdamW(params, lr=float(lr), weight_decay=float(wd))
    sched = get_linear_schedule_with_warmup(opt, int(warmup), int(total))
    losses = []
    steps = sorted(glob.glob(os.path.join(batches_dir, "step-*.safetensors")))
    for path in steps:
        b = load_file(path)
        with autocast:
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        loss = loss_fn(logits, b["allowed"].bool())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, float(clip))
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    save_file({n: p.detach().contiguous() for n, p in model.state_dict().items()}, out)
    print(json.dumps({"losses": losses}))


if __name__ == "__main__":
    main()
