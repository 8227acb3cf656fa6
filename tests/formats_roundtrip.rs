//! Import -> export -> import gives identical records, for CoNLL, brat and doccano, on the
//! gold files of ../shared/data and on the seeds; the W3C export carries exact selectors.

mod common;

use std::path::Path;

use common::{postilla, read_jsonl, run, stderr};
use serde_json::Value;

fn ok(cmd: &mut std::process::Command) {
    let o = run(cmd);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The fields a round trip must preserve (scores are not part of brat, doccano or CoNLL).
fn essence(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .map(|r| {
            let entities: Vec<Value> = r["entities"]
                .as_array()
                .expect("entities")
                .iter()
                .map(|e| serde_json::json!({"start": e["start"], "end": e["end"], "label": e["label"], "text": e["text"]}))
                .collect();
            serde_json::json!({"id": r["id"], "text": r["text"], "text_sha256": r["text_sha256"], "entities": entities, "tokens": r["tokens"]})
        })
        .collect()
}

fn roundtrip(format: &str, gold: &Path, dir: &Path, keep_tokens: bool) {
    let exported = dir.join(format!("export.{format}"));
    ok(postilla().args(["export", format]).arg(gold).arg("-o").arg(&exported));
    let again = dir.join(format!("again-{format}.jsonl"));
    let import_args: Vec<std::path::PathBuf> = if format == "brat" {
        let mut anns: Vec<_> =
            walk(&exported).into_iter().filter(|p| p.extension().is_some_and(|e| e == "ann")).collect();
        anns.sort();
        anns
    } else {
        vec![exported.clone()]
    };
    ok(postilla().args(["import", format]).args(&import_args).arg("-o").arg(&again));
    let (a, b) = (read_jsonl(gold), read_jsonl(&again));
    let mut ea = essence(&a);
    let mut eb = essence(&b);
    if !keep_tokens {
        for r in ea.iter_mut().chain(eb.iter_mut()) {
            r["tokens"] = Value::Null;
        }
    }
    ea.sort_by_key(|r| r["id"].to_string());
    eb.sort_by_key(|r| r["id"].to_string());
    assert_eq!(ea.len(), eb.len());
    for (x, y) in ea.iter().zip(&eb) {
        assert_eq!(x, y, "{format} round trip changed a record");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn shared_gold_files_round_trip() {
    for (format, rel) in [
        ("kind", "ner/it/kind/WN_dev.tsv"),
        ("conll", "ner/de/conll2003/dev.tsv"),
        ("germeval", "ner/de/germeval2014/dev.tsv"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let gold = dir.path().join("gold.jsonl");
        common::import_shared(format, rel, &gold);
        roundtrip("conll", &gold, dir.path(), true);
        roundtrip("doccano", &gold, dir.path(), false);
        roundtrip("brat", &gold, dir.path(), false);
    }
}

/// `annotate --with-text` on pre-tokenised input carries the input's tokens into the records,
/// so that predictions export to CoNLL on the gold's own tokens and import back unchanged.
#[test]
fn annotated_pre_tokenised_records_keep_their_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("gold.jsonl");
    common::import_shared("conll", "ner/de/conll2003/dev.tsv", &gold);
    let pred = dir.path().join("pred.jsonl");
    let model = common::tiny_models().join("tiny-bert");
    ok(postilla()
        .args(["annotate"])
        .arg(&gold)
        .args(["--with-text", "--no-topics", "--ner"])
        .arg(&model)
        .arg("-o")
        .arg(&pred));
    let (g, p) = (read_jsonl(&gold), read_jsonl(&pred));
    assert_eq!(g.len(), p.len());
    assert!(p.iter().any(|r| !r["entities"].as_array().expect("entities").is_empty()), "tiny-bert predicted nothing");
    for (x, y) in g.iter().zip(&p) {
        assert_eq!(x["id"], y["id"]);
        assert!(x["tokens"].is_array(), "{}: the gold has no tokens", x["id"]);
        assert_eq!(x["tokens"], y["tokens"], "{}: the record lost the input's tokens", x["id"]);
    }
    roundtrip("conll", &pred, dir.path(), true);
}

#[test]
fn seeds_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pred = dir.path().join("seeds.jsonl");
    let model = common::tiny_models().join("tiny-bert");
    ok(postilla().args(["annotate", "seeds/", "--with-text", "--no-topics", "--ner"]).arg(&model).arg("-o").arg(&pred));
    roundtrip("doccano", &pred, dir.path(), false);
    roundtrip("brat", &pred, dir.path(), false);
    // CoNLL rebuilds the text from tokens: the first export/import normalises the spacing,
    // after which the round trip is exact.
    let conll = dir.path().join("seeds.conll");
    ok(postilla().args(["export", "conll"]).arg(&pred).arg("-o").arg(&conll));
    let first = dir.path().join("first.jsonl");
    ok(postilla().args(["import", "conll"]).arg(&conll).arg("-o").arg(&first));
    let a = read_jsonl(&pred);
    let b = read_jsonl(&first);
    // the text is rebuilt from tokens (single spaces, punctuation as tokens, a sentence per
    // line), so compare surfaces without whitespace; an entity across a line break becomes
    // one per line
    let surfaces = |r: &Value| -> Vec<(String, String)> {
        r["entities"]
            .as_array()
            .expect("entities")
            .iter()
            .flat_map(|e| {
                let label = e["label"].as_str().expect("label").to_owned();
                e["text"]
                    .as_str()
                    .expect("text")
                    .lines()
                    .map(|l| l.split_whitespace().collect::<String>())
                    .filter(|l| !l.is_empty())
                    .map(move |l| (label.clone(), l))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(surfaces(x), surfaces(y), "CoNLL export keeps every entity's label and surface");
    }
    roundtrip("conll", &first, dir.path(), true);
}

#[test]
fn w3c_export_has_exact_selectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("gold.jsonl");
    common::import_shared("kind", "ner/it/kind/WN_dev.tsv", &gold);
    let out = dir.path().join("w3c.jsonld");
    ok(postilla().args(["export", "w3c"]).arg(&gold).arg("-o").arg(&out));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
    let records = read_jsonl(&gold);
    let items = v["first"]["items"].as_array().expect("items");
    let n: usize = records.iter().map(|r| r["entities"].as_array().expect("e").len()).sum();
    assert_eq!(items.len(), n);
    let texts: std::collections::HashMap<String, Vec<char>> = records
        .iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r["text"].as_str().expect("t").chars().collect()))
        .collect();
    for a in items.iter().take(500) {
        let id = a["id"]
            .as_str()
            .expect("id")
            .strip_prefix("urn:postilla:")
            .expect("urn")
            .rsplit_once(':')
            .expect("suffix")
            .0;
        let sel = &a["target"]["selector"];
        let (s, e) = (sel[0]["start"].as_u64().expect("s") as usize, sel[0]["end"].as_u64().expect("e") as usize);
        assert_eq!(texts[id][s..e].iter().collect::<String>(), sel[1]["exact"].as_str().expect("exact"));
    }
}

#[test]
fn malformed_inputs_name_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("bad.tsv");
    std::fs::write(&f, "Roma\tB-LOC\nè\tX-LOC\n").expect("write");
    let o = run(postilla().args(["import", "kind"]).arg(&f).arg("-o").arg(dir.path().join("o.jsonl")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.tsv:2:"), "{}", stderr(&o));
    let d = dir.path().join("bad.jsonl");
    std::fs::write(&d, "{\"text\":\"Roma\",\"label\":[[0,4,\"LOC\"]]}\n{\"text\":\"ab\",\"label\":[[0,9,\"LOC\"]]}\n")
        .expect("write");
    let o = run(postilla().args(["import", "doccano"]).arg(&d).arg("-o").arg(dir.path().join("o.jsonl")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.jsonl:2:"), "{}", stderr(&o));
}
