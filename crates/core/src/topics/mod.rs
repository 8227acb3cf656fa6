//! Zero-shot topics over a [`taxonomy::TopicTaxonomy`]: the [`embedding`] method (default,
//! runs on the e5 base model offline).

pub mod embedding;
pub mod taxonomy;

pub use embedding::{EmbeddingOptions, EmbeddingTopicScorer};
pub use taxonomy::TopicTaxonomy;
