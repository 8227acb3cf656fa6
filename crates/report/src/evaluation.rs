//! The evaluation part of a report: `postilla eval`'s report per system (the same function,
//! so the same numbers), the paired bootstrap test of two systems, each system's errors per
//! document with `postilla eval --errors`' kinds, and the distribution of entity scores for
//! correct and wrong predictions.

use std::collections::{BTreeSet, HashMap};

use postilla_annotator::eval::entities::Span;
use postilla_annotator::eval::PairedComparison;
use postilla_annotator::eval::{
    align, compare, error_lines, evaluate as eval_report, Aligned, EvalOptions, EvalReport,
};
use postilla_annotator::record::AnnotationRecord;
use serde::Serialize;
use serde_json::Value;

use crate::{ReportError, System};

/// Bins of the score histograms over [0, 1].
pub const SCORE_BINS: usize = 20;

/// A span as the page draws it: `(start, end, label)` in code points.
pub type SpanRef = (usize, usize, String);

/// One document's errors for one system, with `postilla eval --errors`' kinds.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DocErrors {
    /// Gold spans nothing predicted overlaps.
    pub missed: Vec<SpanRef>,
    /// Predicted spans no gold span overlaps.
    pub spurious: Vec<SpanRef>,
    /// Same boundaries, another type: (gold, predicted).
    pub wrong_type: Vec<(SpanRef, SpanRef)>,
    /// Overlapping, other boundaries: (gold, predicted).
    pub boundary: Vec<(SpanRef, SpanRef)>,
}

impl DocErrors {
    /// How many errors of all kinds.
    pub fn total(&self) -> usize {
        self.missed.len() + self.spurious.len() + self.wrong_type.len() + self.boundary.len()
    }
}

/// The scores of a system's predicted entities (scored types only), split by whether the
/// prediction is correct under the strict schema (same boundaries and type as a gold span).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScoreDistribution {
    /// Histogram of correct predictions' scores, [`SCORE_BINS`] bins over [0, 1].
    pub correct: Vec<u64>,
    /// Histogram of wrong predictions' scores.
    pub wrong: Vec<u64>,
    /// Predictions without a score (not counted above).
    pub unscored: u64,
}

/// The evaluation of every system of a report against one gold.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// `postilla eval --json`'s report, per system.
    pub reports: Vec<EvalReport>,
    /// The paired bootstrap test of the second system against the first (two systems and
    /// bootstrap resamples only).
    pub paired: Option<PairedComparison>,
    /// Entity score distributions, per system.
    pub scores: Vec<ScoreDistribution>,
    /// Per system: document id -> its errors (documents without errors absent). Drawn in the
    /// document views, not serialized here.
    #[serde(skip)]
    pub errors: Vec<HashMap<String, DocErrors>>,
}

/// Scores every system against the gold.
pub fn evaluate(systems: &[System], gold: &[AnnotationRecord], opts: &EvalOptions) -> Result<Evaluation, ReportError> {
    let mut out = Evaluation { reports: vec![], paired: None, scores: vec![], errors: vec![] };
    for s in systems {
        out.reports.push(eval_report(gold, &s.records, opts).map_err(failed(s))?);
        let aligned = align(gold, &s.records, opts).map_err(failed(s))?;
        out.errors.push(error_lines(gold, &aligned).iter().filter_map(doc_errors).collect());
        out.scores.push(score_distribution(&s.records, &aligned, opts));
    }
    if let ([a, b], true) = (systems, opts.bootstrap > 0) {
        out.paired = Some(compare(gold, &a.records, &b.records, opts).map_err(failed(b))?);
    }
    Ok(out)
}

/// The error of evaluating `s`.
fn failed(s: &System) -> impl Fn(postilla_annotator::eval::EvalError) -> ReportError + '_ {
    move |source| ReportError::Eval { system: s.name.clone(), source }
}

/// One line of `error_lines` as (id, errors).
fn doc_errors(line: &Value) -> Option<(String, DocErrors)> {
    let span = |v: &Value| -> Option<SpanRef> {
        Some((v["start"].as_u64()? as usize, v["end"].as_u64()? as usize, v["label"].as_str()?.to_owned()))
    };
    let spans = |key: &str| line[key].as_array().map(|a| a.iter().filter_map(span).collect()).unwrap_or_default();
    let pairs = |key: &str| {
        line[key]
            .as_array()
            .map(|a| a.iter().filter_map(|p| Some((span(&p["gold"])?, span(&p["pred"])?))).collect())
            .unwrap_or_default()
    };
    let errors = DocErrors {
        missed: spans("missed"),
        spurious: spans("spurious"),
        wrong_type: pairs("mislabelled"),
        boundary: pairs("boundary"),
    };
    Some((line["id"].as_str()?.to_owned(), errors))
}

/// Histograms of the predicted entities' scores, correct and wrong.
pub fn score_distribution(pred: &[AnnotationRecord], aligned: &Aligned, opts: &EvalOptions) -> ScoreDistribution {
    let gold_spans: HashMap<&str, BTreeSet<&Span>> =
        aligned.ids.iter().zip(&aligned.spans).map(|(id, (g, _))| (id.as_str(), g.iter().collect())).collect();
    let types: BTreeSet<&str> = aligned.types.iter().map(String::as_str).collect();
    let mut out = ScoreDistribution { correct: vec![0; SCORE_BINS], wrong: vec![0; SCORE_BINS], unscored: 0 };
    for r in pred.iter().filter(|r| r.error.is_none()) {
        let gold = gold_spans.get(r.id.as_str());
        for e in &r.entities {
            let label = opts.map.apply(&e.label);
            if !types.contains(label) {
                continue;
            }
            let Some(score) = e.score else {
                out.unscored += 1;
                continue;
            };
            let span = Span { start: e.start, end: e.end, label: label.to_owned() };
            let bin = ((score.clamp(0.0, 1.0) * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1);
            if gold.is_some_and(|g| g.contains(&span)) {
                out.correct[bin] += 1;
            } else {
                out.wrong[bin] += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use postilla_annotator::record::EntitySpan;

    use super::*;

    fn rec(id: &str, text: &str, ents: &[(usize, usize, &str, f64)]) -> AnnotationRecord {
        let mut r = AnnotationRecord::for_text(id, text);
        r.entities =
            ents.iter().map(|&(s, e, l, p)| EntitySpan::from_text(text, s, e, l, Some(p)).expect("span")).collect();
        r
    }

    #[test]
    fn errors_and_score_histograms_follow_the_eval_definitions() {
        let text = "Wang Yi a Roma con Lavrov e Draghi";
        let gold = vec![rec(
            "d",
            text,
            &[(0, 7, "PER", 1.0), (10, 14, "LOC", 1.0), (19, 25, "PER", 1.0), (28, 34, "ORG", 1.0)],
        )];
        // correct, wrong type (ORG is scored: the gold has it), boundary, spurious; Draghi missed
        let pred = vec![rec(
            "d",
            text,
            &[(0, 7, "PER", 0.99), (10, 14, "ORG", 0.51), (19, 27, "PER", 0.3), (8, 9, "LOC", 0.1)],
        )];
        let systems = [System { name: "a".into(), records: pred }];
        let ev = evaluate(&systems, &gold, &EvalOptions::default()).expect("eval");
        let e = &ev.errors[0]["d"];
        assert_eq!(e.missed, vec![(28, 34, "ORG".to_owned())]);
        assert_eq!(e.spurious, vec![(8, 9, "LOC".to_owned())]);
        assert_eq!(e.wrong_type, vec![((10, 14, "LOC".to_owned()), (10, 14, "ORG".to_owned()))]);
        assert_eq!(e.boundary, vec![((19, 25, "PER".to_owned()), (19, 27, "PER".to_owned()))]);
        assert_eq!(e.total(), 4);
        let s = &ev.scores[0];
        assert_eq!(s.correct.iter().sum::<u64>(), 1);
        assert_eq!(s.correct[19], 1, "0.99 in the last bin");
        assert_eq!(s.wrong.iter().sum::<u64>(), 3);
        assert_eq!((s.wrong[10], s.wrong[6], s.wrong[2]), (1, 1, 1));
        let strict =
            &ev.reports[0].entities.as_ref().expect("entities")[&postilla_annotator::eval::entities::Schema::Strict];
        assert_eq!(strict.counts.correct, 1);
        assert!(ev.paired.is_none());
    }
}
