#!/usr/bin/env bash
# `just topics-calibration-accuracy` (see the justfile).
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/topics-calibration-accuracy; mkdir -p "$out"
p=target/release/postilla
sib=../shared/data/topics/sib200
for l in ita_Latn deu_Latn; do $p import sib200 $sib/$l/dev.tsv -o "$out/sib200-$l.gold.jsonl"; done
$p import xglue-nc ../shared/data/topics/xglue-nc-de/dev.tsv -o "$out/xglue.gold.jsonl"
score() { # gold taxonomy name
    local g=$1 tax=$2 name=$3
    for mode in plain adapter; do
        flag=$([ $mode = plain ] && echo --no-topic-adapter || true)
        $p annotate "$g" --no-ner --topics "$tax" $flag -o "$out/$name.$mode.pred.jsonl"
        $p annotate "$g" --no-ner --topics "$tax" $flag --topic-calibration auto -o "$out/$name.$mode.auto.pred.jsonl"
        echo "== $name, $mode, uncalibrated"; $p eval --gold "$g" --pred "$out/$name.$mode.pred.jsonl" --bootstrap 1000
        echo "== $name, $mode, --topic-calibration auto"; $p eval --gold "$g" --pred "$out/$name.$mode.auto.pred.jsonl" --bootstrap 1000
        echo "== $name, $mode, paired bootstrap: uncalibrated vs auto"; $p eval --gold "$g" --pred "$out/$name.$mode.pred.jsonl" --pred "$out/$name.$mode.auto.pred.jsonl" --bootstrap 1000
    done
    echo "== $name, paired bootstrap: the default (adapter, uncalibrated) vs plain + auto"; $p eval --gold "$g" --pred "$out/$name.adapter.pred.jsonl" --pred "$out/$name.plain.auto.pred.jsonl" --bootstrap 1000
}
for l in ita_Latn deu_Latn; do score "$out/sib200-$l.gold.jsonl" taxonomies/sib200.toml "sib200-$l-dev"; done
score "$out/xglue.gold.jsonl" taxonomies/xglue-nc.toml xglue-nc-de-dev
