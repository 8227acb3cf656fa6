#!/usr/bin/env bash
# Long articles: the embedding method's document vector as the mean over all windows (today's
# default, --topic-lead-weight 0) against adding the lead (title and first sentences, the first
# 400 characters) with weight 0.5 and 1, on all 1,000 XGLUE-NC de dev articles, default
# settings otherwise (shipped adapter, uncalibrated). Single-label accuracy with bootstrap
# intervals and the paired test against weight 0. `just topics-lead` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
p=target/release/postilla
out=out/topics-lead
mkdir -p "$out"
$p import xglue-nc ../shared/data/topics/xglue-nc-de/dev.tsv -o "$out/xglue.gold.jsonl" 2>/dev/null
for w in 0 0.5 1; do
    $p annotate "$out/xglue.gold.jsonl" --no-ner --topics taxonomies/xglue-nc.toml --topic-lead-weight "$w" \
        -o "$out/xglue.lead$w.pred.jsonl" 2>/dev/null
    echo "== XGLUE-NC de dev (1,000), lead weight $w"
    $p eval --gold "$out/xglue.gold.jsonl" --pred "$out/xglue.lead$w.pred.jsonl" --bootstrap 1000 | grep -E "accuracy|macro avg"
done
for w in 0.5 1; do
    echo "== paired bootstrap, lead weight $w (B) against 0 (A)"
    $p eval --gold "$out/xglue.gold.jsonl" --pred "$out/xglue.lead0.pred.jsonl" --pred "$out/xglue.lead$w.pred.jsonl" \
        --bootstrap 1000 | grep -E "^(metric|topics)"
done
