//! Model directories at run time: manifests, loading Hugging Face-format directories
//! (config.json, model.safetensors, tokenizer.json), the fused encoder and its precision, and
//! choosing the device. Building the shipped model directories offline is [`crate::build`].

pub mod arch;
pub(crate) mod attention;
pub mod batch;
pub mod classifier;
pub mod device;
pub mod encoder;
pub mod int8;
pub mod manifest;
pub mod precision;
pub(crate) mod simd;
pub mod weights;

use std::path::{Path, PathBuf};

use crate::error::ModelError;
pub use device::DeviceChoice;
pub use encoder::{Engine, MatmulKernel};
use manifest::{pinned_manifest_path, Manifest, MANIFEST_FILE};
pub use precision::Precision;

/// Checks a model directory against its `manifest.json` and, when the project pins one
/// (`models/<name>.manifest.json`), against the pinned manifest too.
///
/// Returns the directory's manifest.
pub fn verify_model_dir(dir: &Path) -> Result<Manifest, ModelError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    if !manifest_path.exists() {
        return Err(ModelError::MissingFile {
            dir: dir.into(),
            file: MANIFEST_FILE.into(),
            hint: " (run `just setup` or `postilla models build`)".into(),
        });
    }
    let manifest = Manifest::read(&manifest_path)?;
    let mut hashed = std::collections::BTreeMap::new();
    manifest.verify_dir_with(dir, &mut hashed)?;
    if let Some(pinned_path) = pinned_manifest_path(dir) {
        let pinned = Manifest::read(&pinned_path)?;
        pinned.verify_dir_with(dir, &mut hashed)?;
    }
    Ok(manifest)
}

/// The weights file of a model directory: `model.safetensors`, else a rust-bert `.ot` file.
///
/// Pickle weights (`pytorch_model.bin`) are refused with [`ModelError::PickleRefused`].
pub fn weights_file(dir: &Path) -> Result<PathBuf, ModelError> {
    let safetensors = dir.join("model.safetensors");
    if safetensors.exists() {
        return Ok(safetensors);
    }
    let ot = dir.join("rust_model.ot");
    if ot.exists() {
        return Ok(ot);
    }
    let pickle = dir.join("pytorch_model.bin");
    if pickle.exists() {
        return Err(ModelError::PickleRefused { path: pickle });
    }
    Err(ModelError::MissingFile {
        dir: dir.into(),
        file: "model.safetensors".into(),
        hint: " (or rust_model.ot)".into(),
    })
}

/// The precision that runs for `precision` on `device` with this machine's processor
/// ([`Precision::resolve`]: `auto` made concrete), checked with
/// [`Precision::check_supported`]; never [`Precision::Auto`].
pub fn resolve_precision(precision: Precision, device: tch::Device) -> Result<Precision, ModelError> {
    let flags = Precision::cpu_flags();
    let resolved = precision.resolve(device, &flags);
    resolved.check_supported(device, &flags)?;
    Ok(resolved)
}

/// Refuses an explicitly asked reduced precision where the model runs through rust-bert's
/// forward, which is fp32 only (`fused` is false); `auto` falls back to fp32 there. `resolved`
/// is what [`resolve_precision`] made of `asked`; `reason` says which model and why it is not
/// fused, for the error.
pub fn check_forward_precision(
    asked: Precision,
    resolved: Precision,
    fused: bool,
    reason: impl FnOnce() -> String,
) -> Result<(), ModelError> {
    if fused || resolved == Precision::Fp32 || asked == Precision::Auto {
        return Ok(());
    }
    Err(ModelError::UnsupportedPrecision { precision: resolved.as_str().into(), reason: reason() })
}

/// Reads and parses a model directory's `config.json`.
pub fn read_config(dir: &Path) -> Result<serde_json::Value, ModelError> {
    let path = dir.join("config.json");
    if !path.exists() {
        return Err(ModelError::MissingFile { dir: dir.into(), file: "config.json".into(), hint: String::new() });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Json { path, source: e })
}
