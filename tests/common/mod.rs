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
