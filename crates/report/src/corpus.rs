//! The corpus view: what a run found over all its documents (not only those a sampled page
//! shows): entities per type, the most frequent entities of each type, the best topic per
//! document and the languages.

use std::collections::{BTreeMap, HashMap};

use postilla_annotator::record::AnnotationRecord;
use serde::Serialize;

/// Most frequent entities listed per type.
pub const TOP_ENTITIES: usize = 10;

/// One system's corpus statistics.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CorpusStats {
    /// Documents in the run.
    pub documents: usize,
    /// Error records among them.
    pub error_records: usize,
    /// Entities found.
    pub entities: u64,
    /// Entities per type.
    pub per_type: BTreeMap<String, u64>,
    /// Per type, the most frequent surfaces with their counts (most frequent first, ties by
    /// surface).
    pub top_entities: BTreeMap<String, Vec<(String, u64)>>,
    /// Documents per best (first) topic.
    pub best_topic: BTreeMap<String, u64>,
    /// Mean score of each topic over the documents that have topics.
    pub mean_topic_score: BTreeMap<String, f64>,
    /// Documents per detected language.
    pub languages: BTreeMap<String, u64>,
}

/// The statistics of one run.
pub fn stats(records: &[AnnotationRecord]) -> CorpusStats {
    let mut s = CorpusStats { documents: records.len(), ..CorpusStats::default() };
    let mut surfaces: BTreeMap<String, HashMap<&str, u64>> = BTreeMap::new();
    let (mut topic_sums, mut with_topics) = (BTreeMap::<String, f64>::new(), 0u64);
    for r in records {
        if r.error.is_some() {
            s.error_records += 1;
            continue;
        }
        for e in &r.entities {
            s.entities += 1;
            *s.per_type.entry(e.label.clone()).or_default() += 1;
            *surfaces.entry(e.label.clone()).or_default().entry(e.text.as_str()).or_default() += 1;
        }
        if let Some(t) = r.topics.first() {
            *s.best_topic.entry(t.label.clone()).or_default() += 1;
            with_topics += 1;
        }
        for t in &r.topics {
            *topic_sums.entry(t.label.clone()).or_default() += t.score.unwrap_or(0.0);
        }
        if let Some(l) = &r.lang {
            *s.languages.entry(l.code.clone()).or_default() += 1;
        }
    }
    s.mean_topic_score = topic_sums.into_iter().map(|(k, v)| (k, v / with_topics.max(1) as f64)).collect();
    s.top_entities = surfaces.into_iter().map(|(label, counts)| (label, most_frequent(counts))).collect();
    s
}

fn most_frequent(counts: HashMap<&str, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(TOP_ENTITIES);
    v
}

#[cfg(test)]
mod tests {
    use postilla_annotator::record::{EntitySpan, RecordError, TopicScore};

    use super::*;

    #[test]
    fn counts_types_surfaces_topics_and_skips_error_records() {
        let text = "Roma, Roma e Milano";
        let mut a = AnnotationRecord::for_text("a", text);
        a.entities = vec![
            EntitySpan::from_text(text, 0, 4, "LOC", Some(0.9)).expect("span"),
            EntitySpan::from_text(text, 6, 10, "LOC", Some(0.9)).expect("span"),
            EntitySpan::from_text(text, 13, 19, "LOC", Some(0.9)).expect("span"),
        ];
        a.topics = vec![TopicScore { label: "sport".into(), score: Some(0.8) }];
        let mut b = AnnotationRecord::for_text("b", "x");
        b.error = Some(RecordError { kind: "model".into(), message: "boom".into() });
        let s = stats(&[a, b]);
        assert_eq!((s.documents, s.error_records, s.entities), (2, 1, 3));
        assert_eq!(s.per_type["LOC"], 3);
        assert_eq!(s.top_entities["LOC"], vec![("Roma".to_owned(), 2), ("Milano".to_owned(), 1)]);
        assert_eq!(s.best_topic["sport"], 1);
        assert!((s.mean_topic_score["sport"] - 0.8).abs() < 1e-12);
    }
}
