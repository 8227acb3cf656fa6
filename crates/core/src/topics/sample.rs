//! The deterministic calibration sample of `--topic-calibration auto`: per taxonomy language,
//! the documents whose ids hash lowest.
//!
//! A document's place in the sample depends on its id alone (sha256 of a fixed prefix and the
//! id), never on the order the inputs are read in or on which shard reads them: every shard of
//! a `--shard K/N` run, reading the whole input, draws the same documents and so computes the
//! same calibration, and a resumed run draws the same sample again. The prefix keeps the
//! sample independent of the shard assignment (which hashes the bare id).
//!
//! ```
//! use postilla_core::topics::sample::CalibrationSample;
//! let mut a = CalibrationSample::new(2);
//! let mut b = CalibrationSample::new(2);
//! for (id, text) in [("d1", "uno"), ("d2", "due"), ("d3", "tre"), ("d4", "quattro")] {
//!     a.offer("it", id, text);
//! }
//! for (id, text) in [("d4", "quattro"), ("d3", "tre"), ("d2", "due"), ("d1", "uno")] {
//!     b.offer("it", id, text);
//! }
//! assert_eq!(a.texts(), b.texts(), "the order of the input does not matter");
//! assert_eq!(a.texts()["it"].len(), 2);
//! ```

use std::collections::{BTreeMap, BinaryHeap};

use sha2::{Digest, Sha256};

/// Where a document falls in the sample order: the first 8 bytes of
/// `sha256("postilla-topic-calibration-sample\0" + id)`, big-endian.
pub fn sample_key(id: &str) -> u64 {
    let digest =
        Sha256::new().chain_update(b"postilla-topic-calibration-sample\0").chain_update(id.as_bytes()).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Keeps, per language, the `per_language` documents with the lowest [`sample_key`] offered
/// so far (ties, i.e. repeated ids, keep the first text offered).
#[derive(Debug, Clone)]
pub struct CalibrationSample {
    per_language: usize,
    /// Max-heaps of (key, id, text): the largest key is the first to leave.
    kept: BTreeMap<String, BinaryHeap<(u64, String, String)>>,
    offered: BTreeMap<String, usize>,
}

impl CalibrationSample {
    /// An empty sample of at most `per_language` documents per language.
    pub fn new(per_language: usize) -> Self {
        CalibrationSample { per_language, kept: BTreeMap::new(), offered: BTreeMap::new() }
    }

    /// Offers a document in taxonomy language `lang`.
    pub fn offer(&mut self, lang: &str, id: &str, text: &str) {
        *self.offered.entry(lang.to_owned()).or_default() += 1;
        if self.per_language == 0 {
            return;
        }
        let key = sample_key(id);
        let heap = self.kept.entry(lang.to_owned()).or_default();
        let admitted = heap.len() < self.per_language || heap.peek().is_some_and(|(largest, _, _)| key < *largest);
        if !admitted || heap.iter().any(|(k, i, _)| *k == key && i == id) {
            return;
        }
        if heap.len() == self.per_language {
            heap.pop();
        }
        heap.push((key, id.to_owned(), text.to_owned()));
    }

    /// The sampled texts per language, in sample order (lowest key first).
    pub fn texts(&self) -> BTreeMap<String, Vec<String>> {
        self.kept
            .iter()
            .map(|(lang, heap)| {
                let mut docs: Vec<&(u64, String, String)> = heap.iter().collect();
                docs.sort();
                (lang.clone(), docs.into_iter().map(|(_, _, text)| text.clone()).collect())
            })
            .collect()
    }

    /// Documents offered per language (sampled or not).
    pub fn offered(&self) -> &BTreeMap<String, usize> {
        &self.offered
    }

    /// The most documents kept per language.
    pub fn per_language(&self) -> usize {
        self.per_language
    }
}
