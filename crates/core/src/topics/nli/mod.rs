//! The NLI method: any Hugging Face sequence-classification NLI model as a zero-shot topic
//! classifier (premise = the document, hypothesis = the language's template filled with the
//! topic's label), correct whatever the model's label layout.
//!
//! * The entailment index is read from `id2label` (a label starting with "entail"); a model
//!   without one is refused. The contradiction index is the label starting with "contradict",
//!   else "not_entailment"/"non_entailment", else — for two-class models — the other class.
//! * Single-label: softmax over the topics' entailment logits. Multi-label: per topic, softmax
//!   over [contradiction, entailment], the entailment probability (Hugging Face's semantics).
//! * Only the premise is truncated (`only_first`); (chunk × topic) pairs are batched, sorted by
//!   length.
//! * Long documents are split at sentence boundaries into chunks that fit the model with the
//!   longest hypothesis; each topic's score is aggregated over chunks by `mean` (default) or
//!   `max` (single-label scores are renormalised to sum to 1 after `max`).
//!
//! Files: `labels.rs` (the label layout), `load.rs` (reading a model directory),
//! `sentences.rs` (splitting long documents), `score.rs` (pairs, batches and chunk
//! aggregation).

mod labels;
mod load;
mod score;
mod sentences;

use tch::{nn, Device};

use super::taxonomy::TopicTaxonomy;
use crate::model::DeviceChoice;
pub use labels::nli_indices;
use load::Network;
pub use sentences::split_sentences;

/// How chunk scores are combined per topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkAggregation {
    /// Mean over chunks.
    #[default]
    Mean,
    /// Maximum over chunks.
    Max,
}

crate::names::named_values!(ChunkAggregation, "aggregation", [Mean => "mean", Max => "max"]);

/// Options of the NLI method.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NliOptions {
    /// Independent per-topic probabilities instead of a distribution over topics.
    pub multi_label: bool,
    /// Multi-label: topics with probability >= this are kept.
    pub threshold: f64,
    /// Chunk aggregation.
    pub aggregate: ChunkAggregation,
    /// Pairs per forward pass.
    pub batch_size: usize,
    /// Tokens per pair (capped at the model's limit).
    pub max_length: usize,
    /// Device.
    pub device: DeviceChoice,
}

impl Default for NliOptions {
    fn default() -> Self {
        NliOptions {
            multi_label: false,
            threshold: 0.5,
            aggregate: ChunkAggregation::Mean,
            batch_size: 16,
            max_length: 512,
            device: DeviceChoice::Cpu,
        }
    }
}

/// A loaded NLI model with its taxonomy.
pub struct NliTopicScorer {
    network: Network,
    _vs: nn::VarStore,
    device: Device,
    tokenizer: tokenizers::Tokenizer,
    taxonomy: TopicTaxonomy,
    entailment: usize,
    contradiction: Option<usize>,
    pad: i64,
    max_length: usize,
    options: NliOptions,
}

impl std::fmt::Debug for NliTopicScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NliTopicScorer").field("entailment", &self.entailment).field("options", &self.options).finish()
    }
}

impl NliTopicScorer {
    /// The taxonomy.
    pub fn taxonomy(&self) -> &TopicTaxonomy {
        &self.taxonomy
    }

    /// The hypothesis for a topic (by index) in a language; `None` when the taxonomy has no
    /// such language or topic.
    pub fn hypothesis(&self, lang: &str, topic: usize) -> Option<String> {
        let template = self.taxonomy.templates.get(lang)?;
        Some(template.replacen("{}", &self.taxonomy.topics.get(topic)?.text.get(lang)?.label, 1))
    }
}
