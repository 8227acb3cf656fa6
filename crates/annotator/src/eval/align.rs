//! Matching gold and predicted records by id, and preparing each document's spans (label
//! map applied, unscored types set aside) and topics.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::entities::Span;
use super::topics::TopicPair;
use super::{EvalError, EvalOptions};
use crate::record::AnnotationRecord;

/// Gold and predictions aligned by document, ready to score.
#[derive(Debug, Clone)]
pub struct Aligned {
    /// Document ids, in gold order.
    pub ids: Vec<String>,
    /// Per document: gold spans and predicted spans (filtered, mapped, sorted).
    pub spans: Vec<(Vec<Span>, Vec<Span>)>,
    /// Per document: topics.
    pub topics: Vec<TopicPair>,
    /// Scored types.
    pub types: Vec<String>,
    /// Ignored predicted types.
    pub ignored: BTreeMap<String, u64>,
    /// Prediction error records.
    pub prediction_errors: usize,
    /// Whether the gold has entity annotation at all / topics at all.
    pub has_entities: bool,
    /// Whether any gold record has topics.
    pub has_topics: bool,
    /// Score topics as label sets ([`EvalOptions::topic_sets`]).
    pub topic_sets: bool,
}

fn index<'a>(
    records: &'a [AnnotationRecord],
    side: &'static str,
) -> Result<HashMap<&'a str, &'a AnnotationRecord>, EvalError> {
    let mut m = HashMap::new();
    for r in records {
        if m.insert(r.id.as_str(), r).is_some() {
            return Err(EvalError::DuplicateId { side, id: r.id.clone() });
        }
    }
    Ok(m)
}

fn missing(
    from: &[AnnotationRecord],
    other: &HashMap<&str, &AnnotationRecord>,
    side: &'static str,
) -> Result<(), EvalError> {
    let absent: Vec<String> =
        from.iter().filter(|r| !other.contains_key(r.id.as_str())).map(|r| r.id.clone()).collect();
    if absent.is_empty() {
        Ok(())
    } else {
        Err(EvalError::MissingIds { side, count: absent.len(), examples: absent.into_iter().take(5).collect() })
    }
}

/// Matches gold and predicted records by id and prepares the spans.
pub fn align(gold: &[AnnotationRecord], pred: &[AnnotationRecord], opts: &EvalOptions) -> Result<Aligned, EvalError> {
    let gi = index(gold, "gold")?;
    let pi = index(pred, "prediction")?;
    missing(gold, &pi, "prediction")?;
    missing(pred, &gi, "gold")?;
    let types: Vec<String> = match &opts.types {
        Some(t) => t.clone(),
        None => {
            let set: BTreeSet<String> =
                gold.iter().flat_map(|r| r.entities.iter().map(|e| opts.map.apply(&e.label).to_owned())).collect();
            set.into_iter().collect()
        }
    };
    let type_set: BTreeSet<&str> = types.iter().map(String::as_str).collect();
    let mut out = Aligned {
        ids: Vec::new(),
        spans: Vec::new(),
        topics: Vec::new(),
        types: types.clone(),
        ignored: BTreeMap::new(),
        prediction_errors: 0,
        has_entities: gold.iter().any(|r| !r.entities.is_empty()),
        has_topics: gold.iter().any(|r| !r.topics.is_empty()),
        topic_sets: opts.topic_sets,
    };
    for g in gold {
        if g.error.is_some() {
            return Err(EvalError::GoldError { id: g.id.clone() });
        }
        let p = pi[g.id.as_str()];
        if p.error.is_some() {
            out.prediction_errors += 1;
        } else if p.text_sha256 != g.text_sha256 {
            return Err(EvalError::TextMismatch { id: g.id.clone() });
        }
        let spans = |r: &AnnotationRecord, ignored: &mut BTreeMap<String, u64>, count_ignored: bool| {
            let mut v: Vec<Span> = Vec::new();
            for e in &r.entities {
                let label = opts.map.apply(&e.label);
                if type_set.contains(label) {
                    v.push(Span { start: e.start, end: e.end, label: label.to_owned() });
                } else if count_ignored {
                    *ignored.entry(label.to_owned()).or_default() += 1;
                }
            }
            v.sort();
            v
        };
        let gs = spans(g, &mut BTreeMap::new(), false);
        let ps = spans(p, &mut out.ignored, true);
        out.ids.push(g.id.clone());
        out.spans.push((gs, ps));
        out.topics.push(TopicPair {
            gold: g.topics.iter().map(|t| opts.map.apply(&t.label).to_owned()).collect(),
            pred: p.topics.iter().map(|t| opts.map.apply(&t.label).to_owned()).collect(),
        });
    }
    Ok(out)
}
