//! The token-classification models Postilla runs: rust-bert's architectures on tch, loaded
//! from a Hugging Face directory (config.json with `model_type` and `id2label`,
//! `model.safetensors` or rust-bert `rust_model.ot`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rust_bert::bert::{BertConfig, BertForTokenClassification};
use rust_bert::deberta_v2::{DebertaV2Config, DebertaV2ForTokenClassification};
use rust_bert::distilbert::{DistilBertConfig, DistilBertForTokenClassification};
use rust_bert::roberta::RobertaForTokenClassification;
use serde::de::DeserializeOwned;
use tch::{nn, Device, Tensor};

use crate::error::ModelError;
use crate::model::{read_config, weights_file};

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

enum Network {
    Bert(BertForTokenClassification),
    Roberta(RobertaForTokenClassification),
    DistilBert(DistilBertForTokenClassification),
    DebertaV2(DebertaV2ForTokenClassification),
}

/// A loaded token classifier.
pub struct TokenClassifier {
    network: Network,
    vs: nn::VarStore,
    /// Architecture.
    pub architecture: Architecture,
    /// `id2label` from config.json.
    pub id2label: BTreeMap<i64, String>,
    /// `max_position_embeddings` from config.json.
    pub max_position_embeddings: usize,
    /// `pad_token_id` from config.json (0 when absent).
    pub pad_token_id: i64,
}

fn parse_config<T: DeserializeOwned>(dir: &Path, value: &serde_json::Value) -> Result<T, ModelError> {
    serde_json::from_value(value.clone()).map_err(|e| ModelError::Json { path: dir.join("config.json"), source: e })
}

impl TokenClassifier {
    /// Loads a model directory onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let config = read_config(dir)?;
        let config_path = dir.join("config.json");
        let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or_default();
        let architecture = Architecture::from_model_type(model_type).ok_or_else(|| ModelError::Config {
            path: config_path.clone(),
            message: format!(
                "model_type {model_type:?} is not supported (bert, xlm-roberta, roberta, distilbert, deberta-v2)"
            ),
        })?;
        let id2label: BTreeMap<i64, String> = config
            .get("id2label")
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(|e| ModelError::Json { path: config_path.clone(), source: e })?
            .ok_or_else(|| ModelError::Config { path: config_path.clone(), message: "no id2label: not a classifier".into() })?;
        let weights = weights_file(dir)?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let network = match architecture {
            Architecture::Bert => Network::Bert(BertForTokenClassification::new(&root, &parse_config::<BertConfig>(dir, &config)?)?),
            Architecture::XlmRoberta => {
                Network::Roberta(RobertaForTokenClassification::new(&root, &parse_config::<BertConfig>(dir, &config)?)?)
            }
            Architecture::DistilBert => Network::DistilBert(DistilBertForTokenClassification::new(
                &root / "distilbert",
                &parse_config::<DistilBertConfig>(dir, &config)?,
            )?),
            Architecture::DebertaV2 => Network::DebertaV2(DebertaV2ForTokenClassification::new(
                &root,
                &parse_config::<DebertaV2Config>(dir, &config)?,
            )?),
        };
        load_weights(&mut vs, &weights, architecture)?;
        if device == Device::Cpu {
            vs.float();
        }
        let max_position_embeddings = config
            .get("max_position_embeddings")
            .and_then(|v| v.as_u64())
            .unwrap_or(512) as usize;
        let pad_token_id = config.get("pad_token_id").and_then(|v| v.as_i64()).unwrap_or(0);
        Ok(TokenClassifier { network, vs, architecture, id2label, max_position_embeddings, pad_token_id })
    }

    /// Logits `[batch, length, classes]` for a padded batch.
    pub fn logits(&self, input_ids: &Tensor, mask: &Tensor) -> Result<Tensor, ModelError> {
        Ok(match &self.network {
            Network::Bert(m) => m.forward_t(Some(input_ids), Some(mask), None, None, None, false).logits,
            Network::Roberta(m) => m.forward_t(Some(input_ids), Some(mask), None, None, None, false).logits,
            Network::DistilBert(m) => m.forward_t(Some(input_ids), Some(mask), None, false)?.logits,
            Network::DebertaV2(m) => m.forward_t(Some(input_ids), Some(mask), None, None, None, false)?.logits,
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }
}

/// Copies the file's tensors into the var store. Names follow Hugging Face; DistilBERT's head
/// sits beside the encoder in HF files (`classifier.*`) but under it in rust-bert
/// (`distilbert.classifier.*`), so that one name is translated.
fn load_weights(vs: &mut nn::VarStore, path: &Path, architecture: Architecture) -> Result<(), ModelError> {
    let named: HashMap<String, Tensor> = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Tensor::read_safetensors(path)?.into_iter().collect(),
        _ => Tensor::load_multi(path)?.into_iter().collect(),
    };
    let mut variables = vs.variables();
    let _guard = tch::no_grad_guard();
    for (name, var) in variables.iter_mut() {
        let alias = match architecture {
            Architecture::DistilBert => name.strip_prefix("distilbert.").filter(|n| n.starts_with("classifier.")),
            _ => None,
        };
        let source = named.get(name).or_else(|| alias.and_then(|a| named.get(a))).ok_or_else(|| ModelError::Config {
            path: path.into(),
            message: format!("weights file has no tensor {name:?} (is this a {architecture:?} token classifier?)"),
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
