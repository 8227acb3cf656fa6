//! The documents a report carries: all of them, or a deterministic sample (`--sample N
//! --seed S`) drawn by a hash of seed and id, so the same run, size and seed always show the
//! same documents, in run order.

use postilla_annotator::record::AnnotationRecord;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What the page says about the documents it carries.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Shown {
    /// Documents carried.
    pub count: usize,
    /// Whether they are a sample of the run.
    pub sampled: bool,
    /// The sample's seed (when sampled).
    pub seed: Option<u64>,
}

/// The chosen documents: their indices in the run and the summary.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Indices into the run's records, ascending.
    pub indices: Vec<usize>,
    /// What the page says.
    pub summary: Shown,
}

/// The sample key of a document: the first 8 bytes of sha256(seed as 8 little-endian bytes,
/// then the id), big-endian.
pub fn key(seed: u64, id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(id.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// All documents, or the `size` with the smallest keys, in run order.
pub fn choose(records: &[AnnotationRecord], size: Option<usize>, seed: u64) -> Choice {
    let n = records.len();
    let Some(size) = size.filter(|&s| s < n) else {
        return Choice { indices: (0..n).collect(), summary: Shown { count: n, sampled: false, seed: None } };
    };
    let mut keyed: Vec<(u64, usize)> = records.iter().enumerate().map(|(i, r)| (key(seed, &r.id), i)).collect();
    keyed.sort_unstable();
    let mut indices: Vec<usize> = keyed.into_iter().take(size).map(|(_, i)| i).collect();
    indices.sort_unstable();
    Choice { indices, summary: Shown { count: size, sampled: true, seed: Some(seed) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<AnnotationRecord> {
        (0..n).map(|i| AnnotationRecord::for_text(&format!("d{i}"), "x")).collect()
    }

    #[test]
    fn a_sample_is_deterministic_in_run_order_and_depends_on_the_seed() {
        let r = records(200);
        let a = choose(&r, Some(20), 7);
        assert_eq!(a.indices.len(), 20);
        assert!(a.indices.windows(2).all(|w| w[0] < w[1]), "run order");
        assert_eq!(a.indices, choose(&r, Some(20), 7).indices);
        assert_ne!(a.indices, choose(&r, Some(20), 8).indices);
        assert!(a.summary.sampled && a.summary.seed == Some(7));
        // independent of the run's order: the same ids are drawn from a reversed run
        let mut rev = r.clone();
        rev.reverse();
        let ids = |rs: &[AnnotationRecord], c: &Choice| {
            let mut v: Vec<String> = c.indices.iter().map(|&i| rs[i].id.clone()).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&r, &a), ids(&rev, &choose(&rev, Some(20), 7)));
    }

    #[test]
    fn a_sample_as_large_as_the_run_is_the_whole_run() {
        let r = records(5);
        let c = choose(&r, Some(5), 1);
        assert_eq!(c.indices, vec![0, 1, 2, 3, 4]);
        assert!(!c.summary.sampled);
        assert_eq!(choose(&r, None, 1).indices.len(), 5);
    }
}
