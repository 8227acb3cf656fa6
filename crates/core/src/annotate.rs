//! The library entry point: load the models once, annotate documents in batches, get
//! `postilla/1` records. The `postilla annotate` command is a thin layer over this.
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
//! # Ok::<(), postilla_core::ModelError>(())
//! ```

use std::path::{Path, PathBuf};

use postilla_annotator::input::{Document, InputItem};
use postilla_annotator::record::{AnnotationRecord, EntitySpan, LanguageTag};
use serde_json::{json, Value};

use crate::error::ModelError;
use crate::lang::LanguageIdentifier;
use crate::model::manifest::{hash_file, Manifest, MANIFEST_FILE};
use crate::model::weights_file;
use crate::ner::{NerOptions, NerPipeline};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct AnnotatorConfig {
    /// NER model directory and options; `None` = no entities.
    pub ner: Option<(PathBuf, NerOptions)>,
    /// Copy each document's text into its record.
    pub with_text: bool,
    /// Threads libtorch may use (`None` = libtorch's default).
    pub threads: Option<usize>,
}

/// Loaded models, ready to annotate.
pub struct Annotator {
    ner: Option<NerPipeline>,
    lang: LanguageIdentifier,
    provenance: Value,
    with_text: bool,
}

impl std::fmt::Debug for Annotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Annotator").field("provenance", &self.provenance).finish()
    }
}

/// Identity of a model directory for provenance: its name and the sha256 of its weights (from
/// its manifest when it has one, else computed).
pub fn model_identity(dir: &Path) -> Result<Value, ModelError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let sha = match Manifest::read(&manifest_path) {
        Ok(m) if m.weights_sha256().is_some() => m.weights_sha256().map(str::to_owned),
        _ => None,
    };
    let sha = match sha {
        Some(s) => s,
        None => hash_file(&weights_file(dir)?)?.sha256,
    };
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
    Ok(json!({"id": id, "path": dir.display().to_string(), "sha256": sha}))
}

impl Annotator {
    /// Loads the configured models.
    pub fn new(config: AnnotatorConfig) -> Result<Self, ModelError> {
        if let Some(n) = config.threads {
            tch::set_num_threads(n as i32);
        }
        let mut provenance = json!({"tool": crate::TOOL, "params": {}});
        let ner = match &config.ner {
            Some((dir, options)) => {
                let pipeline = NerPipeline::load(dir, options.clone())?;
                let effective = pipeline.options();
                provenance["ner_model"] = model_identity(dir)?;
                provenance["params"]["max_length"] = json!(effective.max_length);
                provenance["params"]["stride"] = json!(effective.stride);
                provenance["params"]["aggregation"] = json!(effective.aggregation.as_str());
                Some(pipeline)
            }
            None => None,
        };
        Ok(Annotator { ner, lang: LanguageIdentifier::new(), provenance, with_text: config.with_text })
    }

    /// The provenance written into every record: tool, model ids and weights sha256, and the
    /// parameters that change the output.
    pub fn provenance(&self) -> &Value {
        &self.provenance
    }

    /// Annotates a batch of documents. One record per document, in input order; a document
    /// the models fail on becomes an error record and the others are unaffected.
    pub fn annotate(&self, docs: &[Document]) -> Vec<AnnotationRecord> {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let entities = match &self.ner {
            None => Some(vec![Vec::new(); docs.len()]),
            Some(ner) => ner.predict(&texts).ok(),
        };
        match entities {
            Some(entities) => docs.iter().zip(entities).map(|(d, e)| self.record(d, Ok(e))).collect(),
            // isolate the failing document(s): retry one by one
            None => docs
                .iter()
                .map(|d| {
                    let one = self.ner.as_ref().map_or(Ok(vec![Vec::new()]), |n| n.predict(&[d.text.as_str()]));
                    self.record(d, one.map(|mut v| v.pop().unwrap_or_default()))
                })
                .collect(),
        }
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
            let docs: Vec<Document> = chunk.iter().filter_map(|i| i.as_ref().ok().cloned()).collect();
            let mut done = self.annotate(&docs).into_iter();
            Some(
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
                    .collect(),
            )
        })
    }

    fn record(&self, doc: &Document, entities: Result<Vec<crate::ner::NerEntity>, ModelError>) -> AnnotationRecord {
        let mut r = AnnotationRecord::for_text(&doc.id, &doc.text);
        r.source = Some(doc.source.clone());
        match entities {
            Ok(entities) => {
                r.entities = entities
                    .into_iter()
                    .map(|e| EntitySpan { start: e.start, end: e.end, label: e.label, score: Some(round6(e.score)), text: e.text })
                    .collect();
            }
            Err(e) => {
                r.error = Some(postilla_annotator::RecordError { kind: "model".into(), message: e.to_string() });
                return r;
            }
        }
        r.lang = self.lang.detect(&doc.text).map(|g| LanguageTag { code: g.code, score: round6(g.score) });
        if self.with_text {
            r.text = Some(doc.text.clone());
        }
        r.provenance = Some(self.provenance.clone());
        r
    }
}

/// Scores are written with 6 decimals.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
