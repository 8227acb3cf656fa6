//! Zero-shot topics over a [`taxonomy::TopicTaxonomy`]: the [`embedding`] method (default,
//! runs on the e5 base model offline, optionally through a learned [`adapter`]) and the [`nli`]
//! method (any NLI cross-encoder).

pub mod adapter;
pub mod calibration;
pub mod embedding;
pub mod error;
pub mod nli;
pub mod sample;
pub mod taxonomy;

pub use adapter::{AdapterDefaults, AdapterError, TopicAdapter};
pub use calibration::{CalibrationError, TopicCalibration};
pub use embedding::{EmbeddingOptions, EmbeddingTopicScorer};
pub use error::TopicError;
pub use nli::{ChunkAggregation, NliOptions, NliTopicScorer};
pub use sample::CalibrationSample;
pub use taxonomy::TopicTaxonomy;

/// A loaded topic method.
#[derive(Debug)]
// one value per loaded model: the size difference between variants costs nothing
#[allow(clippy::large_enum_variant)]
pub enum TopicScorer {
    /// Cosine with descriptions under a sentence encoder.
    Embedding(EmbeddingTopicScorer),
    /// Entailment of label hypotheses under an NLI model.
    Nli(NliTopicScorer),
}

impl TopicScorer {
    /// The taxonomy.
    pub fn taxonomy(&self) -> &TopicTaxonomy {
        match self {
            TopicScorer::Embedding(s) => s.taxonomy(),
            TopicScorer::Nli(s) => s.taxonomy(),
        }
    }

    /// Topic scores per text, best first (see each method).
    pub fn score(&self, texts: &[&str], languages: &[&str]) -> Result<Vec<Vec<(String, f64)>>, TopicError> {
        match self {
            TopicScorer::Embedding(s) => s.score(texts, languages),
            TopicScorer::Nli(s) => s.score(texts, languages),
        }
    }
}
