//! Helpers shared by postilla-core's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// `models/e5-small`, which `just setup` builds; a clear failure when it is missing.
pub fn e5_dir() -> PathBuf {
    let dir = root().join("models/e5-small");
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is not built: run `just setup` (or `postilla models build`) before the tests",
        dir.display()
    );
    dir
}

/// The Python of the test environment (`just setup-test-env`).
pub fn python() -> PathBuf {
    let p = root().join(".local/venv/bin/python");
    assert!(p.exists(), "{} is missing: run `just setup-test-env` (part of `just test`)", p.display());
    p
}

/// Tiny random token classifiers written by tests/support/hf_ner_reference.py, generated once
/// per test binary.
pub fn tiny_models() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new(python())
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

/// Short adversarial texts for offsets.
pub fn adversarial_texts() -> Vec<String> {
    [
        "Müller lebt in Zürich und arbeitet für die Deutsche Bank.",
        "“Ciao”, disse Sergio Mattarella al Quirinale — poi partì per Bruxelles.",
        "AP.Putin incontra Xi Jinping a Pechino.La riunione è durata due ore.",
        "Emoji 😀🇮🇹 tra Roma e Milano, e\u{301} accento combinato, ß in Straße.",
        "Tokyo (東京) e Seoul hanno firmato un accordo con l'UE.",
        "Riga uno\r\nRiga due\tcon tab\u{a0}e spazio non separabile.",
        "   spazi iniziali e finali   ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
