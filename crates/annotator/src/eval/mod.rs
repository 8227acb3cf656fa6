//! Evaluation of predicted `postilla/1` records against gold records: entity scores under the
//! four SemEval-2013 schemas ([`entities`]), topic scores ([`topics`]), bootstrap confidence
//! intervals and the paired bootstrap test ([`bootstrap`]), and a per-document error list.
//!
//! Documents are matched by id; a document whose text differs (`text_sha256`) or that is
//! missing on either side is an error, not a silent skip. A prediction that is an error record
//! counts as a document with no predictions (and is reported).
//!
//! Files: [`align`](mod@align) (matching documents, preparing spans), [`entities`] and [`topics`]
//! (scores), [`bootstrap`] (resampling), [`paired`] (the paired test of two systems),
//! [`errors`] (the per-document error list), [`table`] (the readable table).

pub mod align;
pub mod bootstrap;
pub mod entities;
pub mod errors;
pub mod paired;
pub mod table;
pub mod topics;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::formats::LabelMap;
use crate::record::AnnotationRecord;
pub use align::{align, Aligned};
use entities::{aggregate, document_counts, DocumentCounts, Schema, SchemaReport};
pub use errors::error_lines;
pub use paired::{compare, PairedComparison, PairedMetric};
pub use table::render_table;
use topics::TopicReport;

/// Why an evaluation cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvalError {
    /// Ids present on one side only.
    #[error("{side} lacks {count} document id(s) of the other side, e.g. {examples:?}")]
    MissingIds {
        /// `prediction` or `gold`.
        side: &'static str,
        /// How many.
        count: usize,
        /// Up to five of them.
        examples: Vec<String>,
    },
    /// The same id names different texts.
    #[error("document {id}: gold and prediction were made on different texts (text_sha256 differs)")]
    TextMismatch {
        /// The id.
        id: String,
    },
    /// An id occurs twice in one file.
    #[error("{side} has the id {id} twice")]
    DuplicateId {
        /// `prediction` or `gold`.
        side: &'static str,
        /// The id.
        id: String,
    },
    /// A gold record is an error record.
    #[error("gold document {id} is an error record")]
    GoldError {
        /// The id.
        id: String,
    },
}

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Entity types to score; `None` = the types present in the gold (predicted entities of
    /// other types are ignored and counted in the report).
    pub types: Option<Vec<String>>,
    /// Label renaming applied to both sides first.
    pub map: LabelMap,
    /// Bootstrap resamples (0 = none).
    pub bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Minimum overlap, per cent of the gold span, for partial/type matches.
    pub min_overlap: f64,
    /// Score topics as label sets (multi-label: a prediction's whole topic list against the
    /// gold's) even when every gold record has one topic: for multi-label predictions against
    /// single-label gold.
    pub topic_sets: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            types: None,
            map: LabelMap::default(),
            bootstrap: 0,
            seed: 1,
            min_overlap: 1.0,
            topic_sets: false,
        }
    }
}

/// The full report (`postilla eval --json`).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Documents compared.
    pub documents: usize,
    /// Prediction error records among them.
    pub prediction_errors: usize,
    /// Entity types scored.
    pub types: Vec<String>,
    /// Predicted entities ignored because their type is not scored, per type.
    pub ignored_predicted: BTreeMap<String, u64>,
    /// Entity scores per schema (absent when the gold has no entities).
    pub entities: Option<BTreeMap<Schema, SchemaReport>>,
    /// Topic scores (absent when the gold has no topics).
    pub topics: Option<TopicReport>,
    /// Bootstrap 95 % intervals of the headline numbers and of the strict per-type scores
    /// (metric path -> [low, high]).
    pub bootstrap: Option<BootstrapReport>,
}

/// Bootstrap settings and intervals.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapReport {
    /// Resamples.
    pub samples: usize,
    /// Seed.
    pub seed: u64,
    /// Metric -> 95 % interval.
    pub ci95: BTreeMap<String, [f64; 2]>,
}

/// Per-document counts of an aligned corpus (the expensive part, done once).
pub fn count(aligned: &Aligned, opts: &EvalOptions) -> Vec<DocumentCounts> {
    aligned.spans.iter().map(|(g, p)| document_counts(g, p, &aligned.types, opts.min_overlap)).collect()
}

/// The headline numbers of a (re)sampled corpus, by metric path.
pub(crate) fn headline(aligned: &Aligned, counts: &[DocumentCounts], docs: &[usize]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    if aligned.has_entities {
        let rep = aggregate(counts, docs.iter().copied(), &aligned.types);
        for schema in Schema::ALL {
            let r = &rep[&schema];
            let name = schema.name();
            m.insert(format!("entities.{name}.micro.precision"), r.micro.precision);
            m.insert(format!("entities.{name}.micro.recall"), r.micro.recall);
            m.insert(format!("entities.{name}.micro.f1"), r.micro.f1);
            m.insert(format!("entities.{name}.macro.f1"), r.macro_avg.f1);
        }
    }
    if aligned.has_topics {
        let t = topics::evaluate(&aligned.topics, docs.iter().copied(), aligned.topic_sets);
        m.insert("topics.accuracy".into(), t.accuracy);
        m.insert("topics.macro.f1".into(), t.macro_avg.f1);
        m.insert("topics.micro.f1".into(), t.micro.f1);
    }
    m
}

/// Strict precision, recall and F1 per entity type of a (re)sampled corpus, by metric path
/// (`entities.strict.per_type.PER.f1`); a type with neither gold nor predictions in the sample
/// has no value there.
fn per_type_values(aligned: &Aligned, counts: &[DocumentCounts], docs: &[usize]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    if aligned.has_entities {
        let rep = aggregate(counts, docs.iter().copied(), &aligned.types);
        for (t, tr) in &rep[&Schema::Strict].per_type {
            m.insert(format!("entities.strict.per_type.{t}.precision"), tr.scores.precision);
            m.insert(format!("entities.strict.per_type.{t}.recall"), tr.scores.recall);
            m.insert(format!("entities.strict.per_type.{t}.f1"), tr.scores.f1);
        }
    }
    m
}

/// Evaluates predictions against gold.
pub fn evaluate(
    gold: &[AnnotationRecord],
    pred: &[AnnotationRecord],
    opts: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let aligned = align(gold, pred, opts)?;
    let counts = count(&aligned, opts);
    let all: Vec<usize> = (0..aligned.ids.len()).collect();
    let entities = aligned.has_entities.then(|| aggregate(&counts, all.iter().copied(), &aligned.types));
    let topics = aligned.has_topics.then(|| topics::evaluate(&aligned.topics, all.iter().copied(), aligned.topic_sets));
    let bootstrap = (opts.bootstrap > 0).then(|| {
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for sample in bootstrap::resamples(all.len(), opts.bootstrap, opts.seed) {
            let sampled = headline(&aligned, &counts, &sample).into_iter();
            for (k, v) in sampled.chain(per_type_values(&aligned, &counts, &sample)) {
                values.entry(k).or_default().push(v);
            }
        }
        BootstrapReport {
            samples: opts.bootstrap,
            seed: opts.seed,
            ci95: values.into_iter().map(|(k, v)| (k, bootstrap::ci95(&v))).collect(),
        }
    });
    Ok(EvalReport {
        documents: aligned.ids.len(),
        prediction_errors: aligned.prediction_errors,
        types: aligned.types.clone(),
        ignored_predicted: aligned.ignored.clone(),
        entities,
        topics,
        bootstrap,
    })
}
