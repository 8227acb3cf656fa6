//! # postilla-report
//!
//! `postilla report`: one self-contained HTML page of a run (and, with gold, of its evaluation)
//! that a person reads in a browser, offline. The page embeds its data once as JSON and draws
//! with its own inline script; nothing is fetched, every text is shown as text.
//!
//! ## Map
//!
//! | module | what it does |
//! |---|---|
//! | [`texts`] | finds each document's text: in the record, in the gold, or in the `source` file (checked by `text_sha256`) |
//! | [`sample`] | the deterministic sample of documents a large report shows (`--sample N --seed S`) |
//! | [`documents`] | per document: entities of each system and of the gold, topics, errors by kind |
//! | [`evaluation`] | the `postilla eval` reports, the paired test, the score distributions |
//! | [`corpus`] | entity counts per type, the most frequent entities, topic and language distributions |
//! | [`page`] | the HTML: inline CSS and script, the data as escaped JSON, a Content-Security-Policy |
//! | [`error`] | why a report cannot be built |
//!
//! The evaluation uses `postilla_annotator::eval` itself (same alignment, schemas, bootstrap and
//! error kinds as `postilla eval` and `postilla eval --errors`), so the page and the command
//! agree to the last digit.
//!
//! ```
//! use postilla_annotator::record::{AnnotationRecord, EntitySpan};
//! use postilla_report::{build, render_html, ReportOptions, System};
//! let text = "Wang Yi incontra Blinken a Roma.";
//! let mut rec = AnnotationRecord::for_text("doc-1", text);
//! rec.text = Some(text.into());
//! rec.entities.push(EntitySpan::from_text(text, 0, 7, "PER", Some(0.99)).unwrap());
//! let systems = [System { name: "run".into(), records: vec![rec] }];
//! let data = build(&systems, None, &ReportOptions::default()).unwrap();
//! let html = render_html(&data).unwrap();
//! assert!(html.contains("Content-Security-Policy"));
//! ```

#![warn(missing_docs)]

pub mod corpus;
pub mod documents;
pub mod error;
pub mod evaluation;
pub mod page;
pub mod sample;
pub mod texts;

use std::path::PathBuf;

use postilla_annotator::eval::EvalOptions;
use postilla_annotator::record::AnnotationRecord;
use serde::Serialize;

pub use error::ReportError;
pub use page::render_html;

/// One system's records (a `postilla annotate` output), named for the page.
#[derive(Debug, Clone)]
pub struct System {
    /// Name shown in the page (e.g. the file name).
    pub name: String,
    /// Its records, in file order.
    pub records: Vec<AnnotationRecord>,
}

/// What to put in the report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Page title.
    pub title: String,
    /// Show at most this many documents (a deterministic sample); the scores and the corpus
    /// view always cover every document.
    pub sample: Option<usize>,
    /// Seed of the sample.
    pub seed: u64,
    /// Evaluation settings (types, label map, bootstrap resamples and seed, overlap), as for
    /// `postilla eval`.
    pub eval: EvalOptions,
    /// Directory that relative `source` paths of the records are resolved against.
    pub source_root: PathBuf,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "Postilla report".into(),
            sample: None,
            seed: 1,
            eval: EvalOptions { bootstrap: 1000, ..EvalOptions::default() },
            source_root: PathBuf::from("."),
        }
    }
}

/// Everything the page shows, serialized once into it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    /// Page title.
    pub title: String,
    /// The tool that wrote the page.
    pub generator: String,
    /// System names, in the order of every per-system list below.
    pub systems: Vec<String>,
    /// Whether gold annotations are shown and scored.
    pub has_gold: bool,
    /// Documents in the run.
    pub total_documents: usize,
    /// Which documents the page carries.
    pub shown: sample::Shown,
    /// The documents carried, in run order.
    pub documents: Vec<documents::DocumentView>,
    /// Corpus view, per system, over every document.
    pub corpus: Vec<corpus::CorpusStats>,
    /// Evaluation against the gold, per system, over every document.
    pub evaluation: Option<evaluation::Evaluation>,
}

/// Builds the report data of one or two systems, with an optional gold.
///
/// Errors: no system or more than two, a system without records, documents that differ
/// between the systems or from the gold (the same checks as `postilla eval`).
pub fn build(
    systems: &[System],
    gold: Option<&[AnnotationRecord]>,
    opts: &ReportOptions,
) -> Result<ReportData, ReportError> {
    let first = check_systems(systems)?;
    let evaluation = match gold {
        Some(g) => Some(evaluation::evaluate(systems, g, &opts.eval)?),
        None => None,
    };
    let texts = texts::TextFinder::new(gold, &opts.source_root);
    let shown = sample::choose(&first.records, opts.sample, opts.seed);
    let documents = documents::views(systems, gold, evaluation.as_ref(), &shown.indices, &texts, &opts.eval);
    Ok(ReportData {
        title: opts.title.clone(),
        generator: format!("postilla {}", env!("CARGO_PKG_VERSION")),
        systems: systems.iter().map(|s| s.name.clone()).collect(),
        has_gold: gold.is_some(),
        total_documents: first.records.len(),
        shown: shown.summary,
        documents,
        corpus: systems.iter().map(|s| corpus::stats(&s.records)).collect(),
        evaluation,
    })
}

/// One or two systems with records, the second over the same document ids as the first.
fn check_systems(systems: &[System]) -> Result<&System, ReportError> {
    let first = match systems {
        [a] | [a, _] => a,
        _ => return Err(ReportError::SystemCount(systems.len())),
    };
    for s in systems {
        if s.records.is_empty() {
            return Err(ReportError::Empty(s.name.clone()));
        }
    }
    if let [a, b] = systems {
        let ids = |s: &System| s.records.iter().map(|r| r.id.clone()).collect::<std::collections::BTreeSet<_>>();
        if ids(a) != ids(b) {
            return Err(ReportError::DifferentDocuments(a.name.clone(), b.name.clone()));
        }
    }
    Ok(first)
}
