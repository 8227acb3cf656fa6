//! The per-document part of a report: the text (when it can be found), the language, and for
//! each system and the gold the entities and topics; with gold, each system's errors by kind.
//! Entities are compact arrays, `[start, end, label, score]`, to keep large pages small.

use std::collections::HashMap;

use postilla_annotator::eval::EvalOptions;
use postilla_annotator::record::AnnotationRecord;
use serde::Serialize;

use crate::evaluation::{DocErrors, Evaluation};
use crate::texts::{FoundText, TextFinder};
use crate::System;

/// One document as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentView {
    /// Document id.
    pub id: String,
    /// The text, when found (see [`crate::texts`]).
    pub text: Option<String>,
    /// Where the text came from (`record`, `gold`, `source`), or why it is missing.
    pub text_note: String,
    /// Detected language and its score (first system).
    pub lang: Option<(String, f64)>,
    /// Per system.
    pub systems: Vec<SystemLayer>,
    /// The gold, when given.
    pub gold: Option<GoldLayer>,
}

/// One system's annotations of a document.
#[derive(Debug, Clone, Serialize)]
pub struct SystemLayer {
    /// Entities: `(start, end, label, score)`.
    pub entities: Vec<(usize, usize, String, Option<f64>)>,
    /// Topics, best first: `(label, score)`.
    pub topics: Vec<(String, Option<f64>)>,
    /// `kind: message` when the record is an error record.
    pub error: Option<String>,
    /// Errors against the gold (with gold only).
    pub errors: Option<DocErrors>,
}

/// The gold annotations of a document.
#[derive(Debug, Clone, Serialize)]
pub struct GoldLayer {
    /// Entities: `(start, end, label)`.
    pub entities: Vec<(usize, usize, String)>,
    /// Topic labels.
    pub topics: Vec<String>,
}

/// The views of the chosen documents (`indices` into the first system's records).
pub fn views(
    systems: &[System],
    gold: Option<&[AnnotationRecord]>,
    evaluation: Option<&Evaluation>,
    indices: &[usize],
    texts: &TextFinder,
    opts: &EvalOptions,
) -> Vec<DocumentView> {
    let by_id: Vec<HashMap<&str, &AnnotationRecord>> =
        systems.iter().map(|s| s.records.iter().map(|r| (r.id.as_str(), r)).collect()).collect();
    let gold_by_id: Option<HashMap<&str, &AnnotationRecord>> =
        gold.map(|g| g.iter().map(|r| (r.id.as_str(), r)).collect());
    let mut out = Vec::with_capacity(indices.len());
    for &i in indices {
        let first = &systems[0].records[i];
        let records: Vec<&AnnotationRecord> =
            by_id.iter().map(|m| m.get(first.id.as_str()).copied().unwrap_or(first)).collect();
        let (text, text_note) = match texts.find(first) {
            FoundText::Found(t, from) => (Some(t), format!("text from the {from}")),
            FoundText::Missing(why) => (None, why),
        };
        let layers = records
            .iter()
            .enumerate()
            .map(|(k, r)| layer(r, evaluation.map(|e| e.errors[k].get(&r.id).cloned().unwrap_or_default())))
            .collect();
        let gold = gold_by_id.as_ref().and_then(|m| m.get(first.id.as_str())).map(|g| GoldLayer {
            entities: g.entities.iter().map(|e| (e.start, e.end, opts.map.apply(&e.label).to_owned())).collect(),
            topics: g.topics.iter().map(|t| t.label.clone()).collect(),
        });
        out.push(DocumentView {
            id: first.id.clone(),
            text,
            text_note,
            lang: first.lang.as_ref().map(|l| (l.code.clone(), l.score)),
            systems: layers,
            gold,
        });
    }
    out
}

fn layer(r: &AnnotationRecord, errors: Option<DocErrors>) -> SystemLayer {
    SystemLayer {
        entities: r.entities.iter().map(|e| (e.start, e.end, e.label.clone(), e.score)).collect(),
        topics: r.topics.iter().map(|t| (t.label.clone(), t.score)).collect(),
        error: r.error.as_ref().map(|e| format!("{}: {}", e.kind, e.message)),
        errors,
    }
}
