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
