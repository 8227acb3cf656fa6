//! Helpers for the end-to-end tests of the `postilla` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// A `postilla` command run from the repository root.
pub fn postilla() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_postilla"));
    c.current_dir(root());
    c
}

/// Runs a command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run postilla")
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The Python of the test environment (`just setup-test-env`).
pub fn python() -> PathBuf {
    let p = root().join(".local/venv/bin/python");
    assert!(p.exists(), "{} is missing: run `just setup-test-env` (part of `just test`)", p.display());
    p
}

/// Tiny random token classifiers (tests/support/hf_ner_reference.py make-models), once per
/// test binary.
pub fn tiny_models() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new(python())
            .arg(root().join("tests/support/hf_ner_reference.py"))
            .arg("make-models")
            .arg(dir.path())
            .status()
            .expect("run hf_ner_reference.py");
        assert!(status.success(), "make-models failed");
        dir
    })
    .path()
}

/// Reads a JSONL file into JSON values.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("read output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// Validates every record against schema/postilla-1.schema.json.
pub fn assert_schema_valid(records: &[serde_json::Value]) {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schema/postilla-1.schema.json")).expect("schema"))
            .expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("compile schema");
    for r in records {
        let errors: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "record {} violates the schema: {errors:?}", r["id"]);
    }
}

/// Copies a directory (one level).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
}

/// Tiny random NLI classifiers (tests/support/hf_nli_reference.py make-models), once per test
/// binary: `entail-first`, `entail-last`, `two-class`.
pub fn tiny_nli_models() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new(python())
            .arg(root().join("tests/support/hf_nli_reference.py"))
            .arg("make-models")
            .arg(dir.path())
            .status()
            .expect("run hf_nli_reference.py");
        assert!(status.success(), "make-models failed");
        dir
    })
    .path()
}

/// The five seed articles, in file order.
pub fn seeds() -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("seeds"))
        .expect("seeds")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read_to_string(p).expect("seed")).collect()
}

/// A file of the shared gold data (`../shared/data/<rel>`), asserted to exist.
pub fn shared_data(rel: &str) -> PathBuf {
    let p = root().join("../shared/data").join(rel);
    assert!(p.exists(), "{} is missing (../shared/data must sit beside the repository)", p.display());
    p
}

/// Converts a gold file to Postilla records with `postilla import <format>`, asserting success.
pub fn import(format: &str, file: &Path, out: &Path) {
    let o = run(postilla().args(["import", format]).arg(file).arg("-o").arg(out));
    assert!(o.status.success(), "import {format} {}: {}", file.display(), stderr(&o));
}

/// Imports a file of the shared gold data (`../shared/data/<rel>`) into `out`.
pub fn import_shared(format: &str, rel: &str, out: &Path) {
    import(format, &shared_data(rel), out);
}

/// Writes JSON values as a JSONL file, one value per line.
pub fn write_jsonl(path: &Path, values: &[serde_json::Value]) {
    let lines: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    std::fs::write(path, lines.join("\n") + "\n").expect("write JSONL");
}

/// 500 documents made of KIND WN dev sentences (three sentences each).
pub fn corpus(dir: &Path) -> PathBuf {
    let gold = dir.join("wn.jsonl");
    import_shared("kind", "ner/it/kind/WN_dev.tsv", &gold);
    let sentences: Vec<String> =
        read_jsonl(&gold).iter().map(|r| r["text"].as_str().expect("text").to_owned()).collect();
    let path = dir.join("corpus.jsonl");
    let documents: Vec<serde_json::Value> = (0..500)
        .map(|i| serde_json::json!({"id": format!("doc-{i:04}"), "text": sentences[3 * i..3 * i + 3].join(" ")}))
        .collect();
    write_jsonl(&path, &documents);
    path
}

/// Asserts two runs wrote the same records: ids in the same order, same texts, same entity
/// spans and labels, scores within 1e-5.
pub fn same_records(a: &[serde_json::Value], b: &[serde_json::Value], what: &str) {
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
