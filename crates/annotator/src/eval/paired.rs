//! The paired bootstrap test of two systems on the same gold (Berg-Kirkpatrick et al. 2012):
//! both are scored on the same resampled documents.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{align, bootstrap, count, headline, EvalError, EvalOptions};
use crate::record::AnnotationRecord;

/// The paired comparison of two systems on the same gold.
#[derive(Debug, Clone, Serialize)]
pub struct PairedComparison {
    /// Metric path -> (A, B, B − A, p-value).
    pub metrics: BTreeMap<String, PairedMetric>,
    /// Resamples.
    pub samples: usize,
    /// Seed.
    pub seed: u64,
}

/// One compared metric.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PairedMetric {
    /// System A's value.
    pub a: f64,
    /// System B's value.
    pub b: f64,
    /// B − A.
    pub delta: f64,
    /// Berg-Kirkpatrick paired bootstrap p-value.
    pub p_value: f64,
}

/// Paired bootstrap test of system B against system A (same resampled documents for both).
pub fn compare(
    gold: &[AnnotationRecord],
    pred_a: &[AnnotationRecord],
    pred_b: &[AnnotationRecord],
    opts: &EvalOptions,
) -> Result<PairedComparison, EvalError> {
    let samples = opts.bootstrap.max(1);
    let a = align(gold, pred_a, opts)?;
    let b = align(gold, pred_b, opts)?;
    let (ca, cb) = (count(&a, opts), count(&b, opts));
    let all: Vec<usize> = (0..a.ids.len()).collect();
    let (ha, hb) = (headline(&a, &ca, &all), headline(&b, &cb, &all));
    let mut deltas: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for sample in bootstrap::resamples(all.len(), samples, opts.seed) {
        let (sa, sb) = (headline(&a, &ca, &sample), headline(&b, &cb, &sample));
        for (k, va) in sa {
            deltas.entry(k.clone()).or_default().push(sb[&k] - va);
        }
    }
    let metrics = ha
        .iter()
        .map(|(k, &va)| {
            let vb = hb[k];
            let delta = vb - va;
            (k.clone(), PairedMetric { a: va, b: vb, delta, p_value: bootstrap::paired_p_value(delta, &deltas[k]) })
        })
        .collect();
    Ok(PairedComparison { metrics, samples, seed: opts.seed })
}
