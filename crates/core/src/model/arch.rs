//! Architectures Postilla runs (`model_type` in config.json) and loading Hugging Face weights
//! into rust-bert's var stores.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use tch::{nn, Tensor};

use crate::error::ModelError;
use crate::model::read_config;

/// A classifier directory's config.json: the raw JSON, the architecture and `id2label`.
#[derive(Debug, Clone)]
pub struct ClassifierConfig {
    /// config.json as JSON.
    pub config: serde_json::Value,
    /// The architecture from `model_type`.
    pub architecture: Architecture,
    /// `id2label`.
    pub id2label: std::collections::BTreeMap<i64, String>,
}

impl ClassifierConfig {
    /// Reads `dir/config.json`; an unsupported `model_type` or a missing `id2label` is an error.
    pub fn read(dir: &Path) -> Result<Self, ModelError> {
        let mut config = read_config(dir)?;
        let config_path = dir.join("config.json");
        let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or_default();
        let architecture = Architecture::from_model_type(model_type).ok_or_else(|| ModelError::Config {
            path: config_path.clone(),
            message: format!(
                "model_type {model_type:?} is not supported (bert, xlm-roberta, roberta, distilbert, deberta-v2)"
            ),
        })?;
        let id2label = config
            .get("id2label")
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(|e| ModelError::Json { path: config_path.clone(), source: e })?
            .ok_or_else(|| ModelError::Config { path: config_path, message: "no id2label: not a classifier".into() })?;
        // rust-bert's DistilBertConfig requires `tie_weights_`, which current Hugging Face
        // configs no longer write (it only concerns the masked-LM head).
        if architecture == Architecture::DistilBert && config.get("tie_weights_").is_none() {
            if let Some(obj) = config.as_object_mut() {
                obj.insert("tie_weights_".into(), serde_json::Value::Bool(true));
            }
        }
        Ok(ClassifierConfig { config, architecture, id2label })
    }
}

/// Parses config.json into a rust-bert config type.
pub fn parse_config<T: DeserializeOwned>(dir: &Path, value: &serde_json::Value) -> Result<T, ModelError> {
    serde_json::from_value(value.clone()).map_err(|e| ModelError::Json { path: dir.join("config.json"), source: e })
}

/// The supported architectures (`model_type` in config.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `bert`
    Bert,
    /// `xlm-roberta` or `roberta` (position ids start after the padding index).
    XlmRoberta,
    /// `distilbert`
    DistilBert,
    /// `deberta-v2`
    DebertaV2,
}

impl Architecture {
    /// Parses config.json's `model_type`.
    pub fn from_model_type(t: &str) -> Option<Self> {
        match t {
            "bert" => Some(Architecture::Bert),
            "xlm-roberta" | "roberta" => Some(Architecture::XlmRoberta),
            "distilbert" => Some(Architecture::DistilBert),
            "deberta-v2" => Some(Architecture::DebertaV2),
            _ => None,
        }
    }

    /// Positions the model can take, special tokens included. RoBERTa-style models start
    /// position ids at `padding_idx + 1` (= 2), so two of `max_position_embeddings` are
    /// unusable (rust-bert's pipeline forgets this: defect 3 in DESIGN.md).
    pub fn usable_positions(self, max_position_embeddings: usize) -> usize {
        match self {
            Architecture::XlmRoberta => max_position_embeddings.saturating_sub(2),
            _ => max_position_embeddings,
        }
    }
}

/// Copies the file's tensors into the var store (names as Hugging Face writes them); a missing
/// tensor or a shape mismatch is an error naming the tensor.
pub fn load_weights(vs: &mut nn::VarStore, path: &Path, architecture: Architecture) -> Result<(), ModelError> {
    let named: HashMap<String, Tensor> = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Tensor::read_safetensors(path)?.into_iter().collect(),
        _ => Tensor::load_multi(path)?.into_iter().collect(),
    };
    let mut variables = vs.variables();
    let _guard = tch::no_grad_guard();
    for (name, var) in variables.iter_mut() {
        let source = named.get(name).ok_or_else(|| ModelError::Config {
            path: path.into(),
            message: format!("weights file has no tensor {name:?} (is this a {architecture:?} model of this kind?)"),
        })?;
        if source.size() != var.size() {
            return Err(ModelError::Config {
                path: path.into(),
                message: format!("tensor {name:?} has shape {:?}, the model expects {:?}", source.size(), var.size()),
            });
        }
        var.set_data(&var.to_kind(source.kind()));
        var.f_copy_(source)?;
    }
    Ok(())
}
