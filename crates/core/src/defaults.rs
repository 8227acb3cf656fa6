//! The defaults a run falls back to: the default model directories, the shipped news
//! taxonomy and the shipped topic adapter, and the policy that decides whether that adapter
//! applies to a given encoder. The CLI and library callers share them.

use std::path::Path;

use crate::error::ModelError;
use crate::model::manifest::{Manifest, MANIFEST_FILE};
use crate::topics::{TopicAdapter, TopicError, TopicTaxonomy};

/// The default NER model directory (built by `just setup`).
pub const NER_MODEL_DIR: &str = "models/ner-it-de";
/// The default encoder of the embedding topic method.
pub const TOPIC_MODEL_DIR: &str = "models/e5-small";
/// The shipped news taxonomy (`taxonomies/news.toml`), built into the library.
pub const NEWS_TAXONOMY: &str = include_str!("../../../taxonomies/news.toml");
/// Where the shipped topic adapter lives in the repository (built into the library).
pub const TOPIC_ADAPTER_PATH: &str = "models/topic-adapters/e5-small.safetensors";
const TOPIC_ADAPTER_BYTES: &[u8] = include_bytes!("../../../models/topic-adapters/e5-small.safetensors");

/// The taxonomy of `path`, else the shipped news taxonomy.
pub fn taxonomy_or_news(path: Option<&Path>) -> Result<TopicTaxonomy, TopicError> {
    Ok(match path {
        Some(path) => TopicTaxonomy::from_file(path)?,
        None => TopicTaxonomy::from_toml(NEWS_TAXONOMY, "taxonomies/news.toml (built in)")?,
    })
}

/// The shipped topic adapter, with its name for messages and provenance.
pub fn shipped_topic_adapter() -> Result<(TopicAdapter, String), TopicError> {
    let origin = format!("{TOPIC_ADAPTER_PATH} (built in)");
    Ok((TopicAdapter::from_bytes(TOPIC_ADAPTER_BYTES, &origin)?, origin))
}

/// What the default adapter policy decided for an encoder.
#[derive(Debug)]
pub enum DefaultAdapter {
    /// The shipped adapter, trained on this encoder (its manifest names the same weights).
    Shipped(TopicAdapter, String),
    /// The encoder is not the one the shipped adapter was trained on: score without one.
    OtherEncoder,
}

/// The default adapter for the encoder in `model_dir`: the shipped one when the directory's
/// manifest names the weights it was trained on, else none.
pub fn default_topic_adapter(model_dir: &Path) -> Result<DefaultAdapter, TopicError> {
    let (adapter, origin) = shipped_topic_adapter()?;
    let manifest = model_dir.join(MANIFEST_FILE);
    let trained_on_this = manifest.exists()
        && Manifest::read(&manifest).map_err(TopicError::Model)?.weights_sha256() == Some(adapter.encoder_sha256());
    Ok(if trained_on_this { DefaultAdapter::Shipped(adapter, origin) } else { DefaultAdapter::OtherEncoder })
}

/// Refuses a topic model directory that is not built, naming what to do.
pub fn require_topic_model(model_dir: &Path) -> Result<(), ModelError> {
    if model_dir.join("config.json").exists() {
        return Ok(());
    }
    Err(ModelError::MissingFile {
        dir: model_dir.into(),
        file: "config.json".into(),
        hint: " (run `just setup`, or pass --topic-model DIR or --no-topics)".into(),
    })
}
