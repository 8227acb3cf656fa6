//! The library entry point for annotating documents: load the models once, annotate documents
//! in batches, get `postilla/1` records. A whole batch run over files (shards, resume, the
//! partial file) is [`crate::run`], built on this.
//!
//! ```no_run
//! use postilla_core::annotate::{Annotator, AnnotatorConfig};
//! use postilla_core::annotator::input::Document;
//! use postilla_core::ner::NerOptions;
//!
//! let config = AnnotatorConfig { ner: Some(("models/ner-it-de".into(), NerOptions::default())), ..Default::default() };
//! let annotator = Annotator::new(config)?;
//! let docs = vec![Document { id: "a".into(), text: "Sergio Mattarella è a Parigi.".into(), source: "example".into() }];
//! for record in annotator.annotate(&docs) {
//!     println!("{}", serde_json::to_string(&record).unwrap());
//! }
//! # Ok::<(), postilla_core::annotate::AnnotateError>(())
//! ```
//!
//! Files: [`provenance`] (what made a record, typed), `topics` (loading the topic method and
//! calibrating it), `record` (turning model output into a record).

pub mod provenance;
mod record;
mod topics;

use std::path::PathBuf;

use postilla_annotator::input::{Document, InputItem};
use postilla_annotator::record::{AnnotationRecord, LanguageTag};
use serde_json::Value;

use crate::error::ModelError;
use crate::lang::LanguageIdentifier;
use crate::model::{DeviceChoice, Engine, Precision};
use crate::ner::{NerOptions, NerPipeline};
use crate::topics::{
    EmbeddingOptions, NliOptions, TopicAdapter, TopicCalibration, TopicError, TopicScorer, TopicTaxonomy,
};
pub use provenance::{model_identity, Provenance};
use record::{round6, DocumentAnnotations};

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

/// Loaded models, ready to annotate. For CPU speed, call
/// [`crate::runtime::tune_allocator`] once at start-up, as the `postilla` binary does.
pub struct Annotator {
    ner: Option<NerPipeline>,
    topics: Option<TopicScorer>,
    lang: LanguageIdentifier,
    provenance: Provenance,
    /// `provenance` as written into records (kept in step with it).
    provenance_value: Value,
    with_text: bool,
}

impl std::fmt::Debug for Annotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Annotator").field("provenance", &self.provenance).finish()
    }
}

impl Annotator {
    /// Loads the configured models.
    pub fn new(config: AnnotatorConfig) -> Result<Self, AnnotateError> {
        if let Some(n) = config.threads {
            crate::runtime::set_threads(n);
        }
        let mut provenance = Provenance::new();
        let ner = match &config.ner {
            Some((dir, options)) => {
                let identity = model_identity(dir)?;
                let pipeline = NerPipeline::load(dir, options.clone())?;
                provenance.set_ner(identity, &pipeline.options());
                Some(pipeline)
            }
            None => None,
        };
        // a calibration FILE is applied once the annotator exists (as `auto` applies its own)
        let (topics, file_calibration) = match config.topics {
            Some(mut t) => {
                let calibration = t.calibration.take();
                let origin = calibration.as_ref().map(|(_, origin)| origin.as_str());
                (Some(topics::load(t, origin, &mut provenance)?), calibration)
            }
            None => (None, None),
        };
        let provenance_value = provenance.to_value();
        let mut annotator = Annotator {
            ner,
            topics,
            lang: LanguageIdentifier::new(),
            provenance,
            provenance_value,
            with_text: config.with_text,
        };
        if let Some((calibration, origin)) = &file_calibration {
            annotator.apply_topic_calibration(calibration, origin, None)?;
        }
        Ok(annotator)
    }

    /// The provenance written into every record: tool, model ids and weights sha256, and the
    /// parameters that change the output.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// Annotates a batch of documents. One record per document, in input order; a document
    /// the models fail on becomes an error record with the models' own error message
    /// (`error.kind` = `model`), and the others are unaffected.
    pub fn annotate(&self, docs: &[Document]) -> Vec<AnnotationRecord> {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let langs: Vec<Option<LanguageTag>> = texts.iter().map(|t| self.detect(t)).collect();
        match self.annotate_texts(&texts, &langs) {
            Ok(results) => docs.iter().zip(langs).zip(results).map(|((d, l), r)| self.record(d, l, Ok(r))).collect(),
            // isolate the failing document(s): retry one by one, each keeping its own error
            Err(_) => docs
                .iter()
                .zip(langs)
                .map(|(d, l)| {
                    let one = self
                        .annotate_texts(&[d.text.as_str()], std::slice::from_ref(&l))
                        .map(|mut r| r.pop().unwrap_or_default());
                    self.record(d, l, one)
                })
                .collect(),
        }
    }

    /// Entities and topics of each text; the first error of the batch otherwise.
    fn annotate_texts(
        &self,
        texts: &[&str],
        langs: &[Option<LanguageTag>],
    ) -> Result<Vec<DocumentAnnotations>, AnnotateError> {
        let entities = match &self.ner {
            None => vec![Vec::new(); texts.len()],
            Some(ner) => ner.predict(texts)?,
        };
        let topics = self.topics(texts, langs)?;
        Ok(entities.into_iter().zip(topics).collect())
    }

    /// The detected language of a text, with its score rounded for the record.
    fn detect(&self, text: &str) -> Option<LanguageTag> {
        self.lang.detect(text).map(|g| LanguageTag { code: g.code, score: round6(g.score), topic_language: None })
    }

    /// The taxonomy language a text's topics are scored in (its detected language when the
    /// taxonomy has it, else the taxonomy's fallback); `None` without topics.
    pub fn topic_language(&self, text: &str) -> Option<&str> {
        let scorer = self.topics.as_ref()?;
        let detected = self.lang.detect(text);
        Some(scorer.taxonomy().language_for(detected.as_ref().map(|g| g.code.as_str())).0)
    }

    /// Topic scores per text in the taxonomy language chosen from each detected language.
    fn topics(&self, texts: &[&str], langs: &[Option<LanguageTag>]) -> Result<Vec<Vec<(String, f64)>>, TopicError> {
        let Some(scorer) = &self.topics else {
            return Ok(vec![Vec::new(); texts.len()]);
        };
        let chosen: Vec<&str> =
            langs.iter().map(|l| scorer.taxonomy().language_for(l.as_ref().map(|l| l.code.as_str())).0).collect();
        scorer.score(texts, &chosen)
    }

    /// Annotates a stream of input items in batches of `batch_docs` documents; unreadable
    /// inputs become error records in place.
    pub fn records<'a>(
        &'a self,
        items: impl Iterator<Item = InputItem> + 'a,
        batch_docs: usize,
    ) -> impl Iterator<Item = Vec<AnnotationRecord>> + 'a {
        let mut items = items.peekable();
        std::iter::from_fn(move || {
            items.peek()?;
            let chunk: Vec<InputItem> = items.by_ref().take(batch_docs.max(1)).collect();
            Some(self.annotate_items(chunk))
        })
    }

    /// One record per item, in order: the documents annotated together, the unreadable ones
    /// as error records.
    pub fn annotate_items(&self, chunk: Vec<InputItem>) -> Vec<AnnotationRecord> {
        let docs: Vec<Document> = chunk.iter().filter_map(|i| i.as_ref().ok().cloned()).collect();
        let mut done = self.annotate(&docs).into_iter();
        chunk
            .into_iter()
            .map(|item| match item {
                Ok(_) => done.next().unwrap_or_else(|| AnnotationRecord::for_error("?", "internal", "record missing")),
                Err(e) => {
                    let mut r = AnnotationRecord::for_error(&e.id, e.kind, e.message);
                    r.source = Some(e.source);
                    r
                }
            })
            .collect()
    }

    /// Re-derives the JSON form of the provenance after a change (a calibration applied).
    fn provenance_changed(&mut self) {
        self.provenance_value = self.provenance.to_value();
    }
}
