//! `postilla train ner` end to end on tiny random models: a run killed with SIGKILL after an
//! epoch checkpoint and continued with `--resume` ends with exactly the weights of an
//! uninterrupted run (dropout on, so the random state must be restored too); the output is a
//! model directory `postilla annotate --ner` runs; bad inputs are refused with the file and
//! line named.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{postilla, run, stderr};

/// The seeds' gold repeated `copies` times (distinct ids): enough steps for a kill to land
/// inside the run.
fn training_gold(dir: &Path, copies: usize) -> PathBuf {
    let gold = std::fs::read_to_string(common::root().join("seeds/gold.jsonl")).expect("seeds gold");
    let mut out = String::new();
    for c in 0..copies {
        for line in gold.lines() {
            let mut record: serde_json::Value = serde_json::from_str(line).expect("record");
            record["id"] = format!("{}-{c}", record["id"].as_str().expect("id")).into();
            out.push_str(&record.to_string());
            out.push('\n');
        }
    }
    let path = dir.join("train.jsonl");
    std::fs::write(&path, out).expect("write");
    path
}

fn train_args(train: &Path, out: &Path) -> Vec<String> {
    let base = common::tiny_models().join("tiny-bert");
    [
        "train",
        "ner",
        "--train",
        &train.display().to_string(),
        "--dev",
        "seeds/gold.jsonl",
        "--base",
        &base.display().to_string(),
        "-o",
        &out.display().to_string(),
        "--epochs",
        "3",
        "--max-length",
        "64",
        "--batch-tokens",
        "128",
        "--threads",
        "1",
        "--seed",
        "3",
        "--lr",
        "5e-4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn epochs_done(out: &Path) -> usize {
    std::fs::read_to_string(out.join("checkpoint/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["epochs_done"].as_u64())
        .unwrap_or(0) as usize
}

#[test]
fn a_killed_run_resumed_ends_with_the_weights_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let train = training_gold(dir.path(), 8);
    let whole = dir.path().join("whole");
    let o = run(postilla().args(train_args(&train, &whole)));
    assert!(o.status.success(), "uninterrupted run: {}", stderr(&o));
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("training-log.json")).expect("log")).expect("json");
    assert_eq!(log["dev"].as_array().expect("dev scores").len(), 4, "3 epochs and their average scored: {log}");
    assert!(!whole.join("checkpoint").exists(), "a finished run removes its checkpoint");

    let cut = dir.path().join("cut");
    let mut child =
        postilla().args(train_args(&train, &cut)).stderr(std::process::Stdio::null()).spawn().expect("spawn");
    let started = Instant::now();
    while epochs_done(&cut) < 1 {
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before its first checkpoint was seen");
        assert!(started.elapsed() < Duration::from_secs(300), "no checkpoint after 5 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let done = epochs_done(&cut);
    assert!((1..3).contains(&done) && !cut.join("model.safetensors").exists(), "killed after epoch {done} of 3");

    let again = run(postilla().args(train_args(&train, &cut)));
    assert_eq!(again.status.code(), Some(2), "a checkpoint without --resume is refused");
    assert!(stderr(&again).contains("--resume"), "{}", stderr(&again));

    let resumed = run(postilla().args(train_args(&train, &cut)).arg("--resume"));
    assert!(resumed.status.success(), "resume: {}", stderr(&resumed));
    assert!(stderr(&resumed).contains(&format!("resume: {done} epochs already done")), "{}", stderr(&resumed));
    let a = std::fs::read(whole.join("model.safetensors")).expect("weights");
    let b = std::fs::read(cut.join("model.safetensors")).expect("weights");
    assert!(a == b, "the resumed run's weights differ from the uninterrupted run's");

    // the output is a model directory with a manifest that annotate loads
    let verify = run(postilla().args(["models", "verify"]).arg(&cut));
    assert!(verify.status.success(), "verify: {}", stderr(&verify));
    let pred = dir.path().join("pred.jsonl");
    let o = run(postilla().args(["annotate", "seeds", "--no-topics", "--ner"]).arg(&cut).arg("-o").arg(&pred));
    assert!(o.status.success(), "annotate with the trained model: {}", stderr(&o));
    assert_eq!(common::read_jsonl(&pred).len(), 5);
}

fn refused(args: &[&str], expected: &[&str]) {
    let o = run(postilla().args(args));
    assert_eq!(o.status.code(), Some(2), "{args:?} should fail: {}", stderr(&o));
    for e in expected {
        assert!(stderr(&o).contains(e), "{args:?}: expected {e:?} in {}", stderr(&o));
    }
}

#[test]
fn bad_training_inputs_are_refused_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name).display().to_string();
    let seeds = std::fs::read_to_string(common::root().join("seeds/gold.jsonl")).expect("seeds");
    let first = seeds.lines().next().expect("a record");
    let bert = common::tiny_models().join("tiny-bert").display().to_string();
    let base = ["--base", bert.as_str(), "-o"];

    std::fs::write(
        p("no-text.jsonl"),
        format!("{first}\n{{\"schema\":\"postilla/1\",\"id\":\"x\",\"entities\":[]}}\n"),
    )
    .expect("write");
    let args = ["train", "ner", "--train", &p("no-text.jsonl"), "--dev", "seeds/gold.jsonl"];
    refused(&[&args[..], &base, &[&p("o1")]].concat(), &["no-text.jsonl:2", "has no text"]);

    std::fs::write(p("empty.jsonl"), "").expect("write");
    let args = ["train", "ner", "--train", &p("empty.jsonl"), "--dev", "seeds/gold.jsonl"];
    refused(&[&args[..], &base, &[&p("o2")]].concat(), &["empty training set", "empty.jsonl"]);

    let no_entities: String = seeds
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).expect("record");
            r["entities"] = serde_json::json!([]);
            r.to_string() + "\n"
        })
        .collect();
    std::fs::write(p("dev-empty.jsonl"), no_entities).expect("write");
    let args = ["train", "ner", "--train", "seeds/gold.jsonl", "--dev", &p("dev-empty.jsonl")];
    refused(&[&args[..], &base, &[&p("o3")]].concat(), &["dev-empty.jsonl", "no entity of the trained types"]);

    // the gold has LOC, ORG, MISC: a label set without them cannot hold it
    let args = ["train", "ner", "--train", "seeds/gold.jsonl", "--dev", "seeds/gold.jsonl", "--labels", "PER"];
    refused(&[&args[..], &base, &[&p("o4")]].concat(), &["seeds/gold.jsonl:1", "is not among the trained types (PER)"]);

    // a base Postilla cannot train
    let distilbert = common::tiny_models().join("tiny-distilbert").display().to_string();
    let args =
        ["train", "ner", "--train", "seeds/gold.jsonl", "--dev", "seeds/gold.jsonl", "--base", &distilbert, "-o"];
    refused(&[&args[..], &[&p("o5")]].concat(), &["tiny-distilbert", "trains bert and xlm-roberta models"]);

    // bf16 autocast lives in the fused forward
    let args = ["train", "ner", "--train", "seeds/gold.jsonl", "--dev", "seeds/gold.jsonl", "--precision", "bf16"];
    let rust_bert = ["--engine", "rust-bert"];
    refused(&[&args[..], &rust_bert, &base, &[&p("o6")]].concat(), &["bf16 runs in the fused forward"]);

    // layer-wise decay is a factor in (0, 1]
    for d in ["0", "1.5"] {
        let args = ["train", "ner", "--train", "seeds/gold.jsonl", "--dev", "seeds/gold.jsonl", "--layer-decay", d];
        refused(&[&args[..], &base, &[&p("o7")]].concat(), &["--layer-decay must be in (0, 1]"]);
    }
}

/// bf16 training (autocast, fused forward) where the processor has bf16 instructions: a short
/// run ends, its log says bf16, and its output loads; elsewhere a clear refusal.
#[test]
fn bf16_training_runs_where_the_processor_has_bf16_and_is_refused_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let train = training_gold(dir.path(), 2);
    let out = dir.path().join("bf16");
    let mut args = train_args(&train, &out);
    args.extend(["--precision", "bf16", "--epochs", "1"].map(String::from));
    let epochs = args.iter().position(|a| a == "--epochs").expect("--epochs");
    args.drain(epochs..epochs + 2);
    let o = run(postilla().args(&args));
    let flags = postilla_core::model::Precision::cpu_flags();
    if !flags.split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16") {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("avx512_bf16"), "the refusal says what is missing: {}", stderr(&o));
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training-log.json")).expect("log")).expect("JSON");
    assert_eq!(log["options"]["precision"], "bf16", "{log}");
    assert_ne!(log["options"]["engine"], "rust-bert", "bf16 chose the fused forward: {log}");
    let pred = dir.path().join("pred.jsonl");
    let o = run(postilla().args(["annotate", "seeds", "--no-topics", "--ner"]).arg(&out).arg("-o").arg(&pred));
    assert!(o.status.success(), "the bf16-trained model loads: {}", stderr(&o));
}
