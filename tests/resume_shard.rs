//! Crash safety and sharding: a run killed with SIGKILL at random points and resumed gives
//! exactly the records of an uninterrupted run; shards merged in input order equal a single
//! run; resuming with another configuration is refused.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{postilla, read_jsonl, run, stderr};
use postilla_annotator::eval::bootstrap::SplitMix64;
use serde_json::Value;

/// 500 documents made of KIND WN dev sentences (three sentences each).
fn corpus(dir: &Path) -> PathBuf {
    let gold = dir.join("wn.jsonl");
    let o = run(postilla().args(["import", "kind"]).arg(common::root().join("../shared/data/ner/it/kind/WN_dev.tsv")).arg("-o").arg(&gold));
    assert!(o.status.success(), "{}", stderr(&o));
    let sentences: Vec<String> = read_jsonl(&gold).iter().map(|r| r["text"].as_str().expect("text").to_owned()).collect();
    let path = dir.join("corpus.jsonl");
    let lines: Vec<String> = (0..500)
        .map(|i| serde_json::json!({"id": format!("doc-{i:04}"), "text": sentences[3 * i..3 * i + 3].join(" ")}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").expect("write corpus");
    path
}

fn annotate(input: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = postilla();
    c.arg("annotate").arg(input).args(["--no-topics", "--batch-size", "2", "--ner"]).arg(common::tiny_models().join("tiny-bert"));
    c.args(extra).arg("-o").arg(out);
    c
}

fn same_records(a: &[Value], b: &[Value], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: record count");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x["id"], y["id"], "{what}: order");
        assert_eq!(x["text_sha256"], y["text_sha256"]);
        let (ex, ey) = (x["entities"].as_array().expect("e"), y["entities"].as_array().expect("e"));
        assert_eq!(ex.len(), ey.len(), "{what}: {}", x["id"]);
        for (p, q) in ex.iter().zip(ey) {
            assert_eq!((&p["start"], &p["end"], &p["label"]), (&q["start"], &q["end"], &q["label"]));
            assert!((p["score"].as_f64().expect("s") - q["score"].as_f64().expect("s")).abs() < 1e-5);
        }
    }
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let reference = dir.path().join("reference.jsonl");
    let o = run(&mut annotate(&input, &reference, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = read_jsonl(&reference);
    assert_eq!(expected.len(), 500);
    let mut rng = SplitMix64::new(20261122);
    let mut interrupted = 0;
    for trial in 0..20 {
        let out = dir.path().join(format!("trial{trial}.jsonl"));
        let mut child = annotate(&input, &out, &["--resume"]).stderr(std::process::Stdio::null()).spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(200 + rng.below(1800) as u64));
        if child.try_wait().expect("wait").is_none() {
            interrupted += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().expect("reap");
        let partial_lines = std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
        let o = run(&mut annotate(&input, &out, &["--resume"]));
        assert!(o.status.success(), "trial {trial}: {}", stderr(&o));
        same_records(&read_jsonl(&out), &expected, &format!("trial {trial} (killed after {partial_lines} lines)"));
    }
    assert!(interrupted >= 10, "only {interrupted} of 20 trials were killed mid-run");
}

#[test]
fn a_torn_last_line_is_cut_and_rewritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let reference = dir.path().join("reference.jsonl");
    assert!(run(&mut annotate(&input, &reference, &[])).status.success());
    let text = std::fs::read_to_string(&reference).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let out = dir.path().join("torn.jsonl");
    std::fs::write(&out, format!("{}\n{}", lines[..120].join("\n"), &lines[120][..40])).expect("write");
    let o = run(&mut annotate(&input, &out, &["--resume"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("torn last line"), "{}", stderr(&o));
    assert!(stderr(&o).contains("120 documents already"), "{}", stderr(&o));
    same_records(&read_jsonl(&out), &read_jsonl(&reference), "torn");
}

#[test]
fn resuming_with_another_configuration_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let out = dir.path().join("out.jsonl");
    assert!(run(&mut annotate(&input, &out, &[])).status.success());
    let o = run(&mut annotate(&input, &out, &["--resume", "--stride", "8"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("another configuration"), "{}", stderr(&o));
}

#[test]
fn shards_merge_into_the_single_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = corpus(dir.path());
    let single = dir.path().join("single.jsonl");
    assert!(run(&mut annotate(&input, &single, &[])).status.success());
    let mut shards = Vec::new();
    let mut sizes = Vec::new();
    for k in 0..3 {
        let out = dir.path().join(format!("shard{k}.jsonl"));
        let o = run(&mut annotate(&input, &out, &["--shard", &format!("{k}/3")]));
        assert!(o.status.success(), "{}", stderr(&o));
        sizes.push(read_jsonl(&out).len());
        shards.push(out);
    }
    assert_eq!(sizes.iter().sum::<usize>(), 500);
    assert!(sizes.iter().all(|&s| s > 100), "shards are balanced: {sizes:?}");
    let merged = dir.path().join("merged.jsonl");
    let o = run(postilla().arg("merge").args(&shards).arg("-o").arg(&merged).arg("--inputs").arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));
    same_records(&read_jsonl(&merged), &read_jsonl(&single), "merged");
    // a shard made with other parameters is refused
    let other = dir.path().join("other.jsonl");
    assert!(run(&mut annotate(&input, &other, &["--shard", "0/3", "--stride", "8"])).status.success());
    let o = run(postilla().arg("merge").arg(&other).arg(&shards[1]).arg(&shards[2]).arg("-o").arg(dir.path().join("bad.jsonl")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("different configurations"), "{}", stderr(&o));
}
