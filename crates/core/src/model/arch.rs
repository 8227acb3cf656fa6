//! Architectures Postilla runs (`model_type` in config.json) and their configurations
//! (weights are loaded by [`crate::model::weights`]).

use std::path::Path;

use serde::de::DeserializeOwned;

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
    /// unusable (rust-bert's pipeline forgets this: defect 3 in docs/architecture.md).
    pub fn usable_positions(self, max_position_embeddings: usize) -> usize {
        match self {
            Architecture::XlmRoberta => max_position_embeddings.saturating_sub(2),
            _ => max_position_embeddings,
        }
    }
}
