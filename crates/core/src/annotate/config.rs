//! What an [`Annotator`](super::Annotator) loads, and the error of loading or annotating.

use std::path::PathBuf;

use crate::error::ModelError;
use crate::model::{DeviceChoice, Engine, Precision};
use crate::ner::NerOptions;
use crate::topics::{EmbeddingOptions, NliOptions, TopicAdapter, TopicCalibration, TopicError, TopicTaxonomy};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct AnnotatorConfig {
    /// NER model directory and options; `None` = no entities.
    pub ner: Option<(PathBuf, NerOptions)>,
    /// Topics; `None` = no topics.
    pub topics: Option<TopicsConfig>,
    /// Copy each document's text into its record.
    pub with_text: bool,
    /// Threads libtorch may use (`None` = libtorch's default).
    pub threads: Option<usize>,
}

/// Which topic method, with its options.
#[derive(Debug, Clone)]
pub enum TopicMethod {
    /// Embedding similarity (default).
    Embedding(EmbeddingOptions),
    /// NLI cross-encoder.
    Nli(NliOptions),
}

/// Topic scoring.
#[derive(Debug, Clone)]
pub struct TopicsConfig {
    /// The taxonomy.
    pub taxonomy: TopicTaxonomy,
    /// Model directory (an encoder such as `models/e5-small`, or an NLI classifier).
    pub model_dir: PathBuf,
    /// Method and options.
    pub method: TopicMethod,
    /// Calibration of the embedding method (see [`crate::topics::calibration`]), with a name
    /// for messages (e.g. its path); refused with the NLI method.
    pub calibration: Option<(TopicCalibration, String)>,
    /// Topic adapter of the embedding method (see [`crate::topics::adapter`]), with a name for
    /// messages (e.g. its path); refused with the NLI method.
    pub adapter: Option<(TopicAdapter, String)>,
    /// Device.
    pub device: DeviceChoice,
    /// Forward pass of the embedding method's encoder.
    pub engine: Engine,
    /// Precision of the embedding method's encoder (see [`crate::model::precision`]).
    pub precision: Precision,
}

/// Why models could not be loaded or a document not be annotated.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    /// The NER model (or a model file) failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The topic method failed.
    #[error(transparent)]
    Topic(#[from] TopicError),
}
