//! `postilla annotate --topic-calibration auto`: the calibration sample is drawn from the input
//! by a hash of the ids, so shards agree; a resumed run reuses the calibration it wrote;
//! provenance names it; too few documents fall back to uncalibrated scores.

mod common;

use std::path::{Path, PathBuf};

use common::{postilla, read_jsonl, run, stderr};

/// SIB-200 dev, Italian and German (99 + 99 sentences), as one JSONL input.
fn sib_dev(dir: &Path) -> PathBuf {
    let mut documents = Vec::new();
    for lang in ["ita_Latn", "deu_Latn"] {
        let gold = dir.join(format!("{lang}.jsonl"));
        common::import_shared("sib200", &format!("topics/sib200/{lang}/dev.tsv"), &gold);
        for r in read_jsonl(&gold) {
            let id = format!("{lang}-{}", r["id"].as_str().expect("id"));
            documents.push(serde_json::json!({"id": id, "text": r["text"]}));
        }
    }
    let input = dir.join("sib-dev.jsonl");
    common::write_jsonl(&input, &documents);
    input
}

fn annotate(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    run(postilla()
        .arg("annotate")
        .arg(input)
        .args(["--no-ner", "--topics", "taxonomies/sib200.toml", "--topic-calibration", "auto"])
        .args(["--topic-calibration-sample", "40"])
        .args(extra)
        .arg("-o")
        .arg(out))
}

/// Two outputs hold the same records: equal except for topic scores, which may differ by
/// 1e-5 (a document's batch neighbours change its padding, hence the last float bits; the
/// records round to 6 decimals).
fn assert_same_records(a: &Path, b: &Path) {
    let (x, y) = (read_jsonl(a), read_jsonl(b));
    assert_eq!(x.len(), y.len(), "{} and {}", a.display(), b.display());
    for (mut l, mut r) in x.into_iter().zip(y) {
        let (lt, rt) = (l["topics"].take(), r["topics"].take());
        assert_eq!(l, r, "records differ besides topics");
        let (lt, rt) = (lt.as_array().cloned().unwrap_or_default(), rt.as_array().cloned().unwrap_or_default());
        assert_eq!(lt.len(), rt.len());
        for (p, q) in lt.iter().zip(&rt) {
            assert_eq!(p["label"], q["label"], "{}: topic order", l["id"]);
            let (u, v) = (p["score"].as_f64().expect("score"), q["score"].as_f64().expect("score"));
            assert!((u - v).abs() <= 1e-5, "{}: {} {u} vs {v}", l["id"], p["label"]);
        }
    }
}

fn calibration_of(out: &Path) -> PathBuf {
    let mut name = out.file_name().expect("name").to_os_string();
    name.push(".topic-calibration.json");
    out.with_file_name(name)
}

#[test]
fn shards_draw_the_same_sample_and_merge_into_the_single_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = sib_dev(dir.path());
    let single = dir.path().join("single.jsonl");
    let o = annotate(&input, &single, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("it 40") && stderr(&o).contains("de 40"), "{}", stderr(&o));
    let calibration: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(calibration_of(&single)).expect("calibration")).expect("json");
    assert_eq!(calibration["texts"], serde_json::json!({"de": 40, "it": 40}));

    let mut shard_outputs = Vec::new();
    for k in 0..2 {
        let out = dir.path().join(format!("shard-{k}.jsonl"));
        let o = annotate(&input, &out, &["--shard", &format!("{k}/2")]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            std::fs::read(calibration_of(&out)).expect("shard calibration"),
            std::fs::read(calibration_of(&single)).expect("single calibration"),
            "shard {k} drew another sample"
        );
        shard_outputs.push(out);
    }
    // provenance: the calibration's sha256, its sample size and languages
    let records = read_jsonl(&single);
    assert_eq!(records.len(), 198);
    let entry = &records[0]["provenance"]["params"]["topic_calibration"];
    assert_eq!(entry["auto"], 40);
    assert_eq!(entry["languages"], serde_json::json!(["de", "it"]));
    // the taxonomy's fallback language had no documents
    assert_eq!(entry["uncalibrated"], serde_json::json!(["en"]));
    assert_eq!(entry["sha256"].as_str().map(str::len), Some(64));

    // the shards merge (same provenance) into the single run
    let merged = dir.path().join("merged.jsonl");
    let o = run(postilla().arg("merge").args(&shard_outputs).arg("--inputs").arg(&input).arg("-o").arg(&merged));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_records(&merged, &single);

    // and the calibration changed the scores (it is applied, not only recorded)
    let plain = dir.path().join("plain.jsonl");
    let o = run(postilla()
        .arg("annotate")
        .arg(&input)
        .args(["--no-ner", "--topics", "taxonomies/sib200.toml", "-o"])
        .arg(&plain));
    assert!(o.status.success(), "{}", stderr(&o));
    let changed = read_jsonl(&plain).iter().zip(&records).filter(|(a, b)| a["topics"] != b["topics"]).count();
    assert!(changed > 150, "only {changed} of 198 records changed under calibration");
}

#[test]
fn a_resumed_run_reuses_its_calibration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = sib_dev(dir.path());
    let complete = dir.path().join("complete.jsonl");
    assert!(annotate(&input, &complete, &[]).status.success());

    let out = dir.path().join("out.jsonl");
    let o = annotate(&input, &out, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(calibration_of(&out)).expect("calibration");
    // a run killed after 50 documents
    let text = std::fs::read_to_string(&out).expect("out");
    let head: Vec<&str> = text.lines().take(50).collect();
    std::fs::write(&out, head.join("\n") + "\n").expect("truncate");
    let o = annotate(&input, &out, &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("reusing the topic calibration"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(calibration_of(&out)).expect("calibration"), written);
    assert_same_records(&out, &complete);

    // it is the file that is used: an altered calibration is another configuration
    std::fs::write(&out, head.join("\n") + "\n").expect("truncate");
    let mut calibration: serde_json::Value = serde_json::from_str(&written).expect("json");
    let first_topic = calibration["mean_cosine"]["it"].as_object().expect("topics").keys().next().cloned();
    calibration["mean_cosine"]["it"][first_topic.expect("a topic")] = serde_json::json!(0.5);
    std::fs::write(calibration_of(&out), calibration.to_string()).expect("alter");
    let o = annotate(&input, &out, &["--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("another configuration"), "{}", stderr(&o));
}

#[test]
fn too_few_documents_leave_topics_uncalibrated_and_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("seeds.jsonl");
    let o = annotate(Path::new("seeds/"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("topics are uncalibrated"), "{}", stderr(&o));
    assert!(!calibration_of(&out).exists());
    for r in read_jsonl(&out) {
        assert_eq!(r["provenance"]["params"]["topic_calibration"]["languages"], serde_json::json!([]));
        assert!(!r["topics"].as_array().expect("topics").is_empty());
    }
    // standard input cannot be read twice
    let o = annotate(Path::new("-"), &dir.path().join("stdin.jsonl"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("standard input"), "{}", stderr(&o));
}

#[test]
fn multi_label_under_calibration_is_relative_recorded_in_provenance_and_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = sib_dev(dir.path());
    let (relative, absolute) = (dir.path().join("relative.jsonl"), dir.path().join("absolute.jsonl"));
    let o = annotate(&input, &relative, &["--multi-label"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = annotate(&input, &absolute, &["--multi-label", "--topic-relative-threshold", "off"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let calibration: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(calibration_of(&relative)).expect("calibration")).expect("json");
    for lang in ["it", "de"] {
        let stds = calibration["std_cosine"][lang].as_object().expect("deviations per topic");
        assert_eq!(stds.len(), 7, "one deviation per SIB-200 topic");
        assert!(stds.values().all(|v| v.as_f64().expect("std") > 0.0));
    }
    let (rel, abs) = (read_jsonl(&relative), read_jsonl(&absolute));
    let params = |r: &serde_json::Value| r["provenance"]["params"].clone();
    assert_eq!(params(&rel[0])["topic_relative_threshold"], 1.0, "the default cut-off is recorded");
    assert!(params(&abs[0]).get("topic_relative_threshold").is_none(), "off: not recorded");
    assert_eq!(params(&rel[0])["topic_multi_label"], true);
    // the two decisions differ on some documents; relative scores are 0.5 at the cut-off and above
    let labels = |r: &serde_json::Value| {
        let mut v: Vec<String> =
            r["topics"].as_array().expect("topics").iter().map(|t| t["label"].to_string()).collect();
        v.sort();
        v
    };
    let differ = rel.iter().zip(&abs).filter(|(a, b)| labels(a) != labels(b)).count();
    assert!(differ > 0, "the relative decision changes some documents' topics");
    assert!(rel.iter().map(|r| labels(r).len()).sum::<usize>() > 0);
    for r in &rel {
        for t in r["topics"].as_array().expect("topics") {
            assert!(t["score"].as_f64().expect("score") >= 0.5, "{}", r["id"]);
        }
    }
    // a lead weight is recorded, and leaves texts shorter than a lead (SIB's sentences) as they were
    let lead = dir.path().join("lead.jsonl");
    let o = annotate(&input, &lead, &["--multi-label", "--topic-lead-weight", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let with_lead = read_jsonl(&lead);
    assert_eq!(params(&with_lead[0])["topic_lead_weight"], 0.5);
    assert!(params(&rel[0]).get("topic_lead_weight").is_none());
    for (a, b) in rel.iter().zip(&with_lead) {
        assert_eq!(labels(a), labels(b), "{}: short texts have no separate lead", a["id"]);
    }
    let o = annotate(&input, &dir.path().join("bad.jsonl"), &["--topic-lead-weight", "-1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = annotate(&input, &dir.path().join("bad.jsonl"), &["--multi-label", "--topic-relative-threshold", "high"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("neither a number of standard deviations nor `off`"), "{}", stderr(&o));
}
