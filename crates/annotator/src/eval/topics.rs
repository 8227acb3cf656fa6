//! Topic scores. Single-label (every gold record has one topic; the prediction is the
//! record's first, i.e. highest-scoring, topic): accuracy, per-class precision/recall/F1 and
//! support, macro/micro/weighted averages and the confusion matrix, as scikit-learn's
//! `classification_report` and `confusion_matrix` compute them (labels = sorted union of gold
//! and predicted labels; a class never predicted has precision 0). Multi-label (some gold
//! record has several topics; the prediction is the record's whole topic list): micro and
//! macro precision/recall/F1 over the label sets.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::entities::Prf;

/// One document's gold and predicted topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPair {
    /// Gold labels.
    pub gold: Vec<String>,
    /// Predicted labels, best first.
    pub pred: Vec<String>,
}

/// Per-class scores.
#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    /// Precision, recall, F1.
    #[serde(flatten)]
    pub scores: Prf,
    /// Gold documents of this class.
    pub support: u64,
}

/// The topic report.
#[derive(Debug, Clone, Serialize)]
pub struct TopicReport {
    /// `single-label` or `multi-label`.
    pub mode: &'static str,
    /// Documents scored.
    pub documents: usize,
    /// Single-label accuracy (also the micro F1); for multi-label, exact-set accuracy.
    pub accuracy: f64,
    /// Micro average.
    pub micro: Prf,
    /// Macro average over the labels.
    pub macro_avg: Prf,
    /// Support-weighted average.
    pub weighted: Prf,
    /// Per-class scores.
    pub per_class: BTreeMap<String, ClassReport>,
    /// Label order of the confusion matrix (single-label only).
    pub labels: Vec<String>,
    /// Rows = gold, columns = predicted (single-label only).
    pub confusion: Vec<Vec<u64>>,
}

/// Per-label true positives, predictions and gold counts.
#[derive(Debug, Clone, Copy, Default)]
struct LabelCounts {
    tp: u64,
    pred: u64,
    gold: u64,
}

/// Scores the pairs (documents listed in `docs`, repetitions allowed); multi-label when some
/// gold record has another number of topics than one, or when `as_sets` asks for it.
pub fn evaluate(pairs: &[TopicPair], docs: impl Iterator<Item = usize> + Clone, as_sets: bool) -> TopicReport {
    let multi = as_sets || pairs.iter().any(|p| p.gold.len() != 1);
    let label_set: BTreeSet<String> = docs
        .clone()
        .flat_map(|d| {
            let p = &pairs[d];
            let pred: Vec<String> = if multi { p.pred.clone() } else { p.pred.iter().take(1).cloned().collect() };
            p.gold.iter().cloned().chain(pred)
        })
        .collect();
    let labels: Vec<String> = label_set.into_iter().collect();
    let index: BTreeMap<&str, usize> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    let mut counts = vec![LabelCounts::default(); labels.len()];
    let mut confusion = vec![vec![0u64; labels.len()]; if multi { 0 } else { labels.len() }];
    let (mut n, mut exact) = (0usize, 0usize);
    for d in docs {
        let p = &pairs[d];
        n += 1;
        let gold: BTreeSet<&str> = p.gold.iter().map(String::as_str).collect();
        let pred: BTreeSet<&str> = if multi {
            p.pred.iter().map(String::as_str).collect()
        } else {
            p.pred.iter().take(1).map(String::as_str).collect()
        };
        if gold == pred {
            exact += 1;
        }
        for g in &gold {
            counts[index[g]].gold += 1;
            if pred.contains(g) {
                counts[index[g]].tp += 1;
            }
        }
        for q in &pred {
            counts[index[q]].pred += 1;
        }
        if !multi {
            if let (Some(g), Some(q)) = (gold.iter().next(), pred.iter().next()) {
                confusion[index[g]][index[q]] += 1;
            }
        }
    }
    let (micro, macro_avg, weighted) = averages(&counts);
    TopicReport {
        mode: if multi { "multi-label" } else { "single-label" },
        documents: n,
        accuracy: if n > 0 { exact as f64 / n as f64 } else { 0.0 },
        micro,
        macro_avg,
        weighted,
        per_class: labels
            .iter()
            .zip(&counts)
            .map(|(l, c)| (l.clone(), ClassReport { scores: prf(c), support: c.gold }))
            .collect(),
        labels,
        confusion,
    }
}

/// Precision, recall and F1 of one label's counts.
fn prf(c: &LabelCounts) -> Prf {
    Prf::new(
        if c.pred > 0 { c.tp as f64 / c.pred as f64 } else { 0.0 },
        if c.gold > 0 { c.tp as f64 / c.gold as f64 } else { 0.0 },
    )
}

/// Micro, macro and support-weighted averages over the labels' counts.
fn averages(counts: &[LabelCounts]) -> (Prf, Prf, Prf) {
    let k = counts.len().max(1) as f64;
    let total_gold: u64 = counts.iter().map(|c| c.gold).sum();
    let macro_avg = Prf {
        precision: counts.iter().map(|c| prf(c).precision).sum::<f64>() / k,
        recall: counts.iter().map(|c| prf(c).recall).sum::<f64>() / k,
        f1: counts.iter().map(|c| prf(c).f1).sum::<f64>() / k,
    };
    let w = |f: &dyn Fn(&Prf) -> f64| {
        if total_gold == 0 {
            0.0
        } else {
            counts.iter().map(|c| f(&prf(c)) * c.gold as f64).sum::<f64>() / total_gold as f64
        }
    };
    let weighted = Prf { precision: w(&|p| p.precision), recall: w(&|p| p.recall), f1: w(&|p| p.f1) };
    let sum = counts.iter().fold(LabelCounts::default(), |a, c| LabelCounts {
        tp: a.tp + c.tp,
        pred: a.pred + c.pred,
        gold: a.gold + c.gold,
    });
    (prf(&sum), macro_avg, weighted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(gold: &[&str], pred: &[&str]) -> TopicPair {
        TopicPair {
            gold: gold.iter().map(|s| s.to_string()).collect(),
            pred: pred.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn label_sets_score_multi_label_predictions_against_single_label_gold() {
        // two documents, one gold topic each; the predictions list two topics and none
        let pairs = [pair(&["sport"], &["sport", "economy"]), pair(&["politics"], &[])];
        let ranked = evaluate(&pairs, 0..2, false);
        assert_eq!(ranked.mode, "single-label", "single-label gold: the first topic counts");
        assert!((ranked.accuracy - 0.5).abs() < 1e-12);
        let sets = evaluate(&pairs, 0..2, true);
        assert_eq!(sets.mode, "multi-label");
        assert!((sets.micro.precision - 0.5).abs() < 1e-12, "1 of 2 predicted labels is right");
        assert!((sets.micro.recall - 0.5).abs() < 1e-12, "1 of 2 gold labels is found");
        assert_eq!(sets.accuracy, 0.0, "no document's set equals its gold");
        assert!(sets.confusion.is_empty());
    }
}
