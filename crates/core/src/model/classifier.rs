//! Loading a classifier directory, shared by the token classifier ([`crate::ner::model`]) and
//! the NLI sequence classifier ([`crate::topics::nli`]): read config.json, build the
//! architecture's rust-bert network (one match over the four architectures, here), load the
//! weights, cast to fp32 on the CPU.
//!
//! A caller names its head family by implementing [`ClassifierFamily`] for its network enum
//! (token classification or sequence classification), one constructor per architecture.

use std::path::Path;

use rust_bert::bert::BertConfig;
use rust_bert::deberta_v2::DebertaV2Config;
use rust_bert::distilbert::DistilBertConfig;
use rust_bert::RustBertError;
use tch::{nn, Device};

use crate::error::ModelError;
use crate::model::arch::{parse_config, Architecture, ClassifierConfig};
use crate::model::weights::load_weights;
use crate::model::weights_file;

/// One rust-bert classifier type per architecture (e.g. `BertForTokenClassification`, ...).
pub trait ClassifierFamily: Sized {
    /// A BERT network.
    fn bert(root: &nn::Path, config: &BertConfig) -> Result<Self, RustBertError>;
    /// An XLM-R (RoBERTa) network; rust-bert reads RoBERTa configs as BERT ones.
    fn roberta(root: &nn::Path, config: &BertConfig) -> Result<Self, RustBertError>;
    /// A DistilBERT network.
    fn distilbert(root: &nn::Path, config: &DistilBertConfig) -> Result<Self, RustBertError>;
    /// A DeBERTa-v2 network.
    fn deberta_v2(root: &nn::Path, config: &DebertaV2Config) -> Result<Self, RustBertError>;
}

/// A loaded classifier: its network, weights and configuration.
pub struct LoadedClassifier<N> {
    /// The network.
    pub network: N,
    /// The variables (weights) the network reads.
    pub vs: nn::VarStore,
    /// config.json, its architecture and `id2label`.
    pub config: ClassifierConfig,
}

impl<N> LoadedClassifier<N> {
    /// `max_position_embeddings` from config.json (512 when absent).
    pub fn max_position_embeddings(&self) -> usize {
        self.config.config.get("max_position_embeddings").and_then(|v| v.as_u64()).unwrap_or(512) as usize
    }

    /// `pad_token_id` from config.json (0 when absent).
    pub fn pad_token_id(&self) -> i64 {
        self.config.config.get("pad_token_id").and_then(|v| v.as_i64()).unwrap_or(0)
    }
}

/// Loads the classifier in `dir` onto `device` as a network of family `N`.
pub fn load_classifier<N: ClassifierFamily>(dir: &Path, device: Device) -> Result<LoadedClassifier<N>, ModelError> {
    let config = ClassifierConfig::read(dir)?;
    let weights = weights_file(dir)?;
    let mut vs = nn::VarStore::new(device);
    let network = build::<N>(&vs.root(), dir, &config)?;
    load_weights(&mut vs, &weights, config.architecture)?;
    if device == Device::Cpu {
        vs.float();
    }
    Ok(LoadedClassifier { network, vs, config })
}

/// The architecture's network, its configuration parsed from config.json.
fn build<N: ClassifierFamily>(root: &nn::Path, dir: &Path, config: &ClassifierConfig) -> Result<N, ModelError> {
    let json = &config.config;
    Ok(match config.architecture {
        Architecture::Bert => N::bert(root, &parse_config(dir, json)?)?,
        Architecture::XlmRoberta => N::roberta(root, &parse_config(dir, json)?)?,
        Architecture::DistilBert => N::distilbert(root, &parse_config(dir, json)?)?,
        Architecture::DebertaV2 => N::deberta_v2(root, &parse_config(dir, json)?)?,
    })
}
