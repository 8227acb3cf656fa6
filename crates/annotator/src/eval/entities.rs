//! Entity scores under the four SemEval-2013 task 9.1 schemas, computed exactly as
//! `nervaluate` does (greedy matching per document, predictions in order):
//!
//! * **strict** — same boundaries and type; an overlapping prediction that is not exact is
//!   *incorrect*.
//! * **exact** — same boundaries, any type.
//! * **partial** — exact boundaries are *correct*, an overlap is *partial*, types ignored.
//! * **type** (`ent_type`) — an overlapping prediction of the right type is *correct*
//!   (the closest boundaries win), of another type *incorrect*.
//!
//! Overlap means the shared code points are at least `min_overlap` per cent of the gold span
//! (nervaluate's `min_overlap_percentage`, default 1). Precision = correct / actual,
//! recall = correct / possible, where actual = correct + incorrect + partial + spurious and
//! possible = correct + incorrect + partial + missed; partial and type count a partial match
//! as half. Per-type scores run the same matching on the entities of that type only; macro
//! averages are the means of the per-type precision, recall and F1 (as seqeval's macro avg).

use std::collections::BTreeMap;

use serde::Serialize;

/// A span to score: code points `[start, end)` and a type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    /// First code point.
    pub start: usize,
    /// One past the last code point.
    pub end: usize,
    /// Type.
    pub label: String,
}

/// The four schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schema {
    /// Exact boundaries and type.
    Strict,
    /// Exact boundaries.
    Exact,
    /// Boundaries with partial credit.
    Partial,
    /// Type with any overlap.
    Type,
}

impl Schema {
    /// All four, in reporting order.
    pub const ALL: [Schema; 4] = [Schema::Strict, Schema::Exact, Schema::Partial, Schema::Type];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Schema::Strict => "strict",
            Schema::Exact => "exact",
            Schema::Partial => "partial",
            Schema::Type => "type",
        }
    }

    fn half_credit(self) -> bool {
        matches!(self, Schema::Partial | Schema::Type)
    }
}

/// Outcome counts of one schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Correct predictions.
    pub correct: u64,
    /// Wrong type or boundaries (depending on the schema).
    pub incorrect: u64,
    /// Partial matches (partial schema only).
    pub partial: u64,
    /// Gold entities without a match.
    pub missed: u64,
    /// Predictions without a match.
    pub spurious: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.correct += o.correct;
        self.incorrect += o.incorrect;
        self.partial += o.partial;
        self.missed += o.missed;
        self.spurious += o.spurious;
    }
}

/// Precision, recall and F1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

impl Prf {
    /// F1 from precision and recall (0 when both are 0).
    pub fn new(precision: f64, recall: f64) -> Self {
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        Prf { precision, recall, f1 }
    }
}

impl Counts {
    /// Predictions made.
    pub fn actual(&self) -> u64 {
        self.correct + self.incorrect + self.partial + self.spurious
    }
    /// Gold entities.
    pub fn possible(&self) -> u64 {
        self.correct + self.incorrect + self.partial + self.missed
    }
    /// Scores under `schema`'s formula.
    pub fn prf(&self, schema: Schema) -> Prf {
        let credit = self.correct as f64 + if schema.half_credit() { 0.5 * self.partial as f64 } else { 0.0 };
        let p = if self.actual() > 0 { credit / self.actual() as f64 } else { 0.0 };
        let r = if self.possible() > 0 { credit / self.possible() as f64 } else { 0.0 };
        Prf::new(p, r)
    }
}

fn overlaps_enough(pred: &Span, gold: &Span, min_overlap: f64) -> bool {
    let shared = pred.end.min(gold.end) as i64 - pred.start.max(gold.start) as i64;
    if shared <= 0 {
        return false;
    }
    shared as f64 / (gold.end - gold.start) as f64 * 100.0 >= min_overlap
}

fn distance(pred: &Span, gold: &Span) -> usize {
    pred.start.abs_diff(gold.start) + pred.end.abs_diff(gold.end)
}

/// Scores one document's predictions against its gold under `schema`.
pub fn score_document(gold: &[Span], pred: &[Span], schema: Schema, min_overlap: f64) -> Counts {
    let mut c = Counts::default();
    let mut matched = vec![false; gold.len()];
    for p in pred {
        let mut exact: Option<usize> = None;
        let mut fallback: Option<usize> = None; // incorrect / partial candidate
        let mut best_type: Option<(usize, usize)> = None; // (distance, gold index)
        for (gi, g) in gold.iter().enumerate() {
            if matched[gi] {
                continue;
            }
            match schema {
                Schema::Strict | Schema::Exact => {
                    let same = p.start == g.start && p.end == g.end && (schema == Schema::Exact || p.label == g.label);
                    if same {
                        exact = Some(gi);
                        break;
                    }
                    if fallback.is_none() && overlaps_enough(p, g, min_overlap) {
                        fallback = Some(gi);
                    }
                }
                Schema::Partial => {
                    if overlaps_enough(p, g, min_overlap) {
                        if p.start == g.start && p.end == g.end {
                            exact = Some(gi);
                            break;
                        }
                        if fallback.is_none() {
                            fallback = Some(gi);
                        }
                    }
                }
                Schema::Type => {
                    if overlaps_enough(p, g, min_overlap) {
                        if p.label == g.label {
                            let d = distance(p, g);
                            if best_type.is_none_or(|(bd, _)| d < bd) {
                                best_type = Some((d, gi));
                            }
                        } else if fallback.is_none() {
                            fallback = Some(gi);
                        }
                    }
                }
            }
        }
        if let Some((_, gi)) = best_type {
            exact = Some(gi);
        }
        match (exact, fallback) {
            (Some(gi), _) => {
                c.correct += 1;
                matched[gi] = true;
            }
            (None, Some(gi)) => {
                if schema == Schema::Partial {
                    c.partial += 1;
                } else {
                    c.incorrect += 1;
                }
                matched[gi] = true;
            }
            (None, None) => c.spurious += 1,
        }
    }
    c.missed = matched.iter().filter(|&&m| !m).count() as u64;
    c
}

/// Counts of every schema for one document: overall and per type.
#[derive(Debug, Clone, Default)]
pub struct DocumentCounts {
    /// Schema -> counts over all types.
    pub overall: BTreeMap<Schema, Counts>,
    /// Type -> schema -> counts over that type's entities only.
    pub per_type: BTreeMap<String, BTreeMap<Schema, Counts>>,
}

/// Scores one document (spans already filtered and sorted) under all schemas, for `types`.
pub fn document_counts(gold: &[Span], pred: &[Span], types: &[String], min_overlap: f64) -> DocumentCounts {
    let mut out = DocumentCounts::default();
    for schema in Schema::ALL {
        out.overall.insert(schema, score_document(gold, pred, schema, min_overlap));
        for t in types {
            let g: Vec<Span> = gold.iter().filter(|s| &s.label == t).cloned().collect();
            let p: Vec<Span> = pred.iter().filter(|s| &s.label == t).cloned().collect();
            let counts = score_document(&g, &p, schema, min_overlap);
            out.per_type.entry(t.clone()).or_default().insert(schema, counts);
        }
    }
    out
}

/// Scores of one schema over a corpus.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaReport {
    /// Summed counts.
    pub counts: Counts,
    /// Predictions made.
    pub actual: u64,
    /// Gold entities.
    pub possible: u64,
    /// Micro-averaged scores.
    pub micro: Prf,
    /// Macro average over the types.
    pub macro_avg: Prf,
    /// Per-type counts and scores.
    pub per_type: BTreeMap<String, TypeReport>,
}

/// One type's counts and scores.
#[derive(Debug, Clone, Serialize)]
pub struct TypeReport {
    /// Counts.
    pub counts: Counts,
    /// Gold entities of this type (support).
    pub possible: u64,
    /// Predictions of this type.
    pub actual: u64,
    /// Scores.
    pub scores: Prf,
}

/// Aggregates document counts (the documents listed in `docs`, repetitions allowed) into a
/// report per schema.
pub fn aggregate(
    all: &[DocumentCounts],
    docs: impl Iterator<Item = usize> + Clone,
    types: &[String],
) -> BTreeMap<Schema, SchemaReport> {
    let mut out = BTreeMap::new();
    for schema in Schema::ALL {
        let mut total = Counts::default();
        let mut per_type: BTreeMap<String, Counts> = types.iter().map(|t| (t.clone(), Counts::default())).collect();
        for d in docs.clone() {
            total += all[d].overall[&schema];
            for t in types {
                if let Some(c) = all[d].per_type.get(t).and_then(|m| m.get(&schema)) {
                    *per_type.get_mut(t).expect("type") += *c;
                }
            }
        }
        // types seen in the sample (gold or predicted), like nervaluate's and seqeval's lists
        let seen: Vec<(&String, &Counts)> = per_type.iter().filter(|(_, c)| c.actual() + c.possible() > 0).collect();
        let n = seen.len().max(1) as f64;
        let macro_avg = Prf {
            precision: seen.iter().map(|(_, c)| c.prf(schema).precision).sum::<f64>() / n,
            recall: seen.iter().map(|(_, c)| c.prf(schema).recall).sum::<f64>() / n,
            f1: seen.iter().map(|(_, c)| c.prf(schema).f1).sum::<f64>() / n,
        };
        let per_type = seen
            .into_iter()
            .map(|(t, c)| {
                (
                    t.clone(),
                    TypeReport { counts: *c, possible: c.possible(), actual: c.actual(), scores: c.prf(schema) },
                )
            })
            .collect();
        out.insert(
            schema,
            SchemaReport {
                counts: total,
                actual: total.actual(),
                possible: total.possible(),
                micro: total.prf(schema),
                macro_avg,
                per_type,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: usize, end: usize, label: &str) -> Span {
        Span { start, end, label: label.into() }
    }

    #[test]
    fn semeval_example() {
        // The classic table from the SemEval-2013 9.1 write-up / nervaluate README.
        let gold = vec![s(0, 5, "PER"), s(10, 15, "LOC"), s(20, 25, "ORG"), s(30, 35, "PER"), s(40, 45, "LOC")];
        let pred = vec![s(0, 5, "PER"), s(10, 15, "ORG"), s(20, 23, "ORG"), s(30, 33, "LOC"), s(50, 55, "PER")];
        let strict = score_document(&gold, &pred, Schema::Strict, 1.0);
        assert_eq!((strict.correct, strict.incorrect, strict.missed, strict.spurious), (1, 3, 1, 1));
        let exact = score_document(&gold, &pred, Schema::Exact, 1.0);
        assert_eq!((exact.correct, exact.incorrect), (2, 2));
        let partial = score_document(&gold, &pred, Schema::Partial, 1.0);
        assert_eq!((partial.correct, partial.partial, partial.missed, partial.spurious), (2, 2, 1, 1));
        let ty = score_document(&gold, &pred, Schema::Type, 1.0);
        assert_eq!((ty.correct, ty.incorrect), (2, 2));
        assert!((partial.prf(Schema::Partial).precision - 3.0 / 5.0).abs() < 1e-12);
    }
}
