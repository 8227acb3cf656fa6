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
//! let docs = vec![Document::new("a", "Sergio Mattarella è a Parigi.", "example")];
//! for record in annotator.annotate(&docs) {
//!     println!("{}", serde_json::to_string(&record).unwrap());
//! }
//! # Ok::<(), postilla_core::annotate::AnnotateError>(())
//! ```
//!
//! Files: `batch.rs` (annotating documents and input items in batches), `config.rs` (what to load, and the error of loading or annotating), [`provenance`]
//! (what made a record, typed), `topics.rs` (loading the topic method and calibrating it),
//! `record.rs` (turning model output into a record).

mod batch;
mod config;
pub mod provenance;
mod record;
mod topics;

use serde_json::Value;

use crate::lang::LanguageIdentifier;
use crate::ner::NerPipeline;
use crate::topics::TopicScorer;
pub use config::{AnnotateError, AnnotatorConfig, TopicMethod, TopicsConfig};
pub use provenance::{model_identity, Provenance};

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

    /// How many documents before and after each one its NER reads as context
    /// ([`crate::ner::NerOptions::context`]; 0 without NER): what [`crate::run`] attaches.
    pub fn ner_context(&self) -> usize {
        self.ner.as_ref().map_or(0, |n| n.options().context)
    }

    /// The provenance written into every record: tool, model ids and weights sha256, and the
    /// parameters that change the output.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// The taxonomy language a text's topics are scored in (its detected language when the
    /// taxonomy has it, else the taxonomy's fallback); `None` without topics.
    pub fn topic_language(&self, text: &str) -> Option<&str> {
        let scorer = self.topics.as_ref()?;
        let detected = self.lang.detect(text);
        Some(scorer.taxonomy().language_for(detected.as_ref().map(|g| g.code.as_str())).0)
    }

    /// Re-derives the JSON form of the provenance after a change (a calibration applied).
    fn provenance_changed(&mut self) {
        self.provenance_value = self.provenance.to_value();
    }
}
