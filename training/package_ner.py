#!/usr/bin/env python3
"""Copies a training run's compact weights (training/train_ner.py --compact) into
models/ner-it-de: the fp16 trained-*.safetensors shards, config.json (id2label) and the
training log. It removes the built files and the pinned manifest, which `postilla models build`
then writes anew (`just ner-package` runs both and pins the new manifest).

    python3 training/package_ner.py RUN_DIR [--to models/ner-it-de]
"""
import argparse
import glob
import json
import os
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BUILT = ["model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "manifest.json"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--to", default=os.path.join(ROOT, "models", "ner-it-de"))
    args = ap.parse_args()
    shards = sorted(glob.glob(os.path.join(args.run, "trained-*.safetensors")))
    if not shards:
        raise SystemExit(f"{args.run}: no trained-*.safetensors (train with --compact)")
    os.makedirs(args.to, exist_ok=True)
    for old in glob.glob(os.path.join(args.to, "trained-*.safetensors")):
        os.remove(old)
    for name in BUILT:
        if os.path.exists(os.path.join(args.to, name)):
            os.remove(os.path.join(args.to, name))
    pinned = os.path.join(os.path.dirname(os.path.abspath(args.to)), os.path.basename(args.to.rstrip("/")) + ".manifest.json")
    if os.path.exists(pinned):
        os.remove(pinned)
    for shard in shards:
        shutil.copyfile(shard, os.path.join(args.to, os.path.basename(shard)))
    config = json.load(open(os.path.join(args.run, "config.json"), encoding="utf-8"))
    config["_name_or_path"] = "postilla/ner-it-de"
    config["architectures"] = ["BertForTokenClassification"]
    config.pop("_attn_implementation_autoset", None)
    with open(os.path.join(args.to, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    log = json.load(open(os.path.join(args.run, "training-log.json"), encoding="utf-8"))
    log["args"] = {k: v for k, v in log["args"].items() if k not in ("base", "data", "out")}
    with open(os.path.join(args.to, "training-log.json"), "w", encoding="utf-8") as f:
        json.dump(log, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(args.to, os.path.basename(s))) for s in shards)
    print(json.dumps({"shards": len(shards), "mib": round(size / 2**20, 1), "to": args.to}))


if __name__ == "__main__":
    main()
