//! The default NER model directory `models/ner-it-de/`, rebuilt from `models/e5-small/` and the
//! weights Postilla trained (training/train_ner.py).
//!
//! The repository commits only what training changed: the encoder's trained parameters and
//! the classifier head in fp16 (`trained-NN-of-MM.safetensors`), `config.json` (with
//! `id2label`) and the model card. The frozen word embeddings (250,002 x 384) and the
//! tokenizer are e5-small's. [`build_default_ner`] writes the full Hugging Face
//! token-classification directory: `model.safetensors` (f32, the tensor names
//! `save_pretrained` gives a `BertForTokenClassification`), the tokenizer files copied from
//! e5-small, and `manifest.json`. The build is deterministic: the result must equal the pinned
//! manifest `models/ner-it-de.manifest.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::f16;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::e5::{BuildOutcome, E5_SMALL_DIR};
use super::hf_export::F32Tensor;
use crate::error::ModelError;
use crate::model::manifest::{Manifest, MANIFEST_FILE};

/// The default NER model's directory name under `models/`.
pub const NER_DEFAULT_DIR: &str = "ner-it-de";
/// The files the build copies from e5-small unchanged.
pub const COPIED_FILES: [&str; 3] = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
/// The prefix `BertForTokenClassification` gives the encoder's tensors.
const ENCODER_PREFIX: &str = "bert.";

/// The committed trained-weight shards of `dir`, sorted by name.
pub fn trained_shards(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut shards = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| ModelError::io(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("trained-") && name.ends_with(".safetensors") {
            shards.push(path);
        }
    }
    shards.sort();
    if shards.is_empty() {
        return Err(ModelError::MissingFile {
            dir: dir.into(),
            file: "trained-01-of-NN.safetensors".into(),
            hint: " (the trained weights are committed with the repository)".into(),
        });
    }
    Ok(shards)
}

/// f32 values of a tensor stored as F32, F16 or BF16.
fn to_f32(name: &str, view: &safetensors::tensor::TensorView<'_>) -> Result<Vec<f32>, ModelError> {
    let bytes = view.data();
    let values = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        other => return Err(ModelError::Format(format!("tensor {name}: unsupported dtype {other:?}"))),
    };
    Ok(values)
}

fn read_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|e| ModelError::io(path, e))
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, ModelError> {
    SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format(format!("{}: {e}", path.display())))
}

/// The merged tensors: every e5-small tensor under `bert.`, replaced by its trained value where
/// training changed it, plus the classifier head.
fn merged_tensors(base_path: &Path, shards: &[PathBuf]) -> Result<BTreeMap<String, F32Tensor>, ModelError> {
    let base_bytes = read_file(base_path)?;
    let base = parse(base_path, &base_bytes)?;
    let mut tensors = BTreeMap::new();
    for (name, view) in base.tensors() {
        let values = to_f32(&name, &view)?;
        tensors.insert(format!("{ENCODER_PREFIX}{name}"), F32Tensor::from_values(view.shape().to_vec(), &values));
    }
    for shard in shards {
        let bytes = read_file(shard)?;
        let trained = parse(shard, &bytes)?;
        for (name, view) in trained.tensors() {
            let is_head = name.starts_with("classifier.");
            match tensors.get(&name) {
                Some(base) if base.shape != view.shape() => {
                    return Err(ModelError::Format(format!(
                        "{}: tensor {name} has shape {:?}, e5-small's has {:?}",
                        shard.display(),
                        view.shape(),
                        base.shape
                    )))
                }
                None if !is_head => {
                    return Err(ModelError::Format(format!(
                        "{}: tensor {name} is neither an e5-small tensor nor the classifier head",
                        shard.display()
                    )))
                }
                _ => {}
            }
            let values = to_f32(&name, &view)?;
            tensors.insert(name, F32Tensor::from_values(view.shape().to_vec(), &values));
        }
    }
    if !tensors.contains_key("classifier.weight") || !tensors.contains_key("classifier.bias") {
        return Err(ModelError::Format("the trained weights have no classifier head".into()));
    }
    Ok(tensors)
}

/// Writes `model.safetensors`, the tokenizer files and `manifest.json` into
/// `models_dir/ner-it-de` (idempotent: a verified build is kept unless `force`).
pub fn build_default_ner(models_dir: &Path, force: bool) -> Result<BuildOutcome, ModelError> {
    let out = models_dir.join(NER_DEFAULT_DIR);
    if !force && crate::model::verify_model_dir(&out).is_ok() {
        return Ok(BuildOutcome::AlreadyPresent(out));
    }
    let base = models_dir.join(E5_SMALL_DIR);
    crate::model::verify_model_dir(&base)?;
    let shards = trained_shards(&out)?;
    let config_path = out.join("config.json");
    if !config_path.exists() {
        return Err(ModelError::MissingFile { dir: out.clone(), file: "config.json".into(), hint: String::new() });
    }
    let tensors = merged_tensors(&base.join("model.safetensors"), &shards)?;
    let weights = out.join("model.safetensors");
    let partial = out.join(".model.safetensors.partial");
    super::hf_export::write_pt_safetensors(&tensors, &partial)?;
    std::fs::rename(&partial, &weights).map_err(|e| ModelError::io(&weights, e))?;
    for file in COPIED_FILES {
        let to = out.join(file);
        std::fs::copy(base.join(file), &to).map_err(|e| ModelError::io(&to, e))?;
    }
    let mut files: Vec<String> = vec!["config.json".into(), "model.safetensors".into()];
    files.extend(COPIED_FILES.iter().map(|f| (*f).to_owned()));
    files.extend(shards.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())));
    files.sort();
    let names: Vec<&str> = files.iter().map(String::as_str).collect();
    let manifest = Manifest::compute(
        &out,
        NER_DEFAULT_DIR,
        "postilla/ner-it-de (fine-tuned from intfloat/multilingual-e5-small)",
        None,
        &names,
    )?;
    manifest.write(&out.join(MANIFEST_FILE))?;
    crate::model::verify_model_dir(&out)?;
    Ok(BuildOutcome::Built(out))
}
