//! Evaluation of predicted `postilla/1` records against gold records: entity scores under the
//! four SemEval-2013 schemas ([`entities`]), topic scores ([`topics`]), bootstrap confidence
//! intervals and the paired bootstrap test ([`bootstrap`]), and a per-document error list.
//!
//! Documents are matched by id; a document whose text differs (`text_sha256`) or that is
//! missing on either side is an error, not a silent skip. A prediction that is an error record
//! counts as a document with no predictions (and is reported).

pub mod bootstrap;
pub mod entities;
pub mod topics;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{json, Value};

use crate::formats::LabelMap;
use crate::record::AnnotationRecord;
use crate::text::slice_chars;
use entities::{aggregate, document_counts, DocumentCounts, Schema, SchemaReport, Span};
use topics::{TopicPair, TopicReport};

/// Why an evaluation cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvalError {
    /// Ids present on one side only.
    #[error("{side} lacks {count} document id(s) of the other side, e.g. {examples:?}")]
    MissingIds {
        /// `prediction` or `gold`.
        side: &'static str,
        /// How many.
        count: usize,
        /// Up to five of them.
        examples: Vec<String>,
    },
    /// The same id names different texts.
    #[error("document {id}: gold and prediction were made on different texts (text_sha256 differs)")]
    TextMismatch {
        /// The id.
        id: String,
    },
    /// An id occurs twice in one file.
    #[error("{side} has the id {id} twice")]
    DuplicateId {
        /// `prediction` or `gold`.
        side: &'static str,
        /// The id.
        id: String,
    },
    /// A gold record is an error record.
    #[error("gold document {id} is an error record")]
    GoldError {
        /// The id.
        id: String,
    },
}

/// Evaluation settings.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Entity types to score; `None` = the types present in the gold (predicted entities of
    /// other types are ignored and counted in the report).
    pub types: Option<Vec<String>>,
    /// Label renaming applied to both sides first.
    pub map: LabelMap,
    /// Bootstrap resamples (0 = none).
    pub bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Minimum overlap, per cent of the gold span, for partial/type matches.
    pub min_overlap: f64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { types: None, map: LabelMap::default(), bootstrap: 0, seed: 1, min_overlap: 1.0 }
    }
}

/// The full report (`postilla eval --json`).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Documents compared.
    pub documents: usize,
    /// Prediction error records among them.
    pub prediction_errors: usize,
    /// Entity types scored.
    pub types: Vec<String>,
    /// Predicted entities ignored because their type is not scored, per type.
    pub ignored_predicted: BTreeMap<String, u64>,
    /// Entity scores per schema (absent when the gold has no entities).
    pub entities: Option<BTreeMap<Schema, SchemaReport>>,
    /// Topic scores (absent when the gold has no topics).
    pub topics: Option<TopicReport>,
    /// Bootstrap 95 % intervals of the headline numbers (metric path -> [low, high]).
    pub bootstrap: Option<BootstrapReport>,
}

/// Bootstrap settings and intervals.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapReport {
    /// Resamples.
    pub samples: usize,
    /// Seed.
    pub seed: u64,
    /// Metric -> 95 % interval.
    pub ci95: BTreeMap<String, [f64; 2]>,
}

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

/// Per-document counts of an aligned corpus (the expensive part, done once).
pub fn count(aligned: &Aligned, opts: &EvalOptions) -> Vec<DocumentCounts> {
    aligned.spans.iter().map(|(g, p)| document_counts(g, p, &aligned.types, opts.min_overlap)).collect()
}

/// The headline numbers of a (re)sampled corpus, by metric path.
fn headline(aligned: &Aligned, counts: &[DocumentCounts], docs: &[usize]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    if aligned.has_entities {
        let rep = aggregate(counts, docs.iter().copied(), &aligned.types);
        for schema in Schema::ALL {
            let r = &rep[&schema];
            let name = schema.name();
            m.insert(format!("entities.{name}.micro.precision"), r.micro.precision);
            m.insert(format!("entities.{name}.micro.recall"), r.micro.recall);
            m.insert(format!("entities.{name}.micro.f1"), r.micro.f1);
            m.insert(format!("entities.{name}.macro.f1"), r.macro_avg.f1);
        }
    }
    if aligned.has_topics {
        let t = topics::evaluate(&aligned.topics, docs.iter().copied());
        m.insert("topics.accuracy".into(), t.accuracy);
        m.insert("topics.macro.f1".into(), t.macro_avg.f1);
        m.insert("topics.micro.f1".into(), t.micro.f1);
    }
    m
}

/// Evaluates predictions against gold.
pub fn evaluate(
    gold: &[AnnotationRecord],
    pred: &[AnnotationRecord],
    opts: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let aligned = align(gold, pred, opts)?;
    let counts = count(&aligned, opts);
    let all: Vec<usize> = (0..aligned.ids.len()).collect();
    let entities = aligned.has_entities.then(|| aggregate(&counts, all.iter().copied(), &aligned.types));
    let topics = aligned.has_topics.then(|| topics::evaluate(&aligned.topics, all.iter().copied()));
    let bootstrap = (opts.bootstrap > 0).then(|| {
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for sample in bootstrap::resamples(all.len(), opts.bootstrap, opts.seed) {
            for (k, v) in headline(&aligned, &counts, &sample) {
                values.entry(k).or_default().push(v);
            }
        }
        BootstrapReport {
            samples: opts.bootstrap,
            seed: opts.seed,
            ci95: values.into_iter().map(|(k, v)| (k, bootstrap::ci95(&v))).collect(),
        }
    });
    Ok(EvalReport {
        documents: aligned.ids.len(),
        prediction_errors: aligned.prediction_errors,
        types: aligned.types.clone(),
        ignored_predicted: aligned.ignored.clone(),
        entities,
        topics,
        bootstrap,
    })
}

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

/// Characters of context on each side of an error span.
const CONTEXT: usize = 40;

/// One JSON object per document with errors: missed gold spans, spurious predictions,
/// mislabelled spans (same boundaries, other type) and boundary errors (overlapping, other
/// boundaries), each with the surrounding text when the gold record carries its text.
pub fn error_lines(gold: &[AnnotationRecord], aligned: &Aligned) -> Vec<Value> {
    let texts: HashMap<&str, &str> =
        gold.iter().filter_map(|r| r.text.as_deref().map(|t| (r.id.as_str(), t))).collect();
    let mut out = Vec::new();
    for (id, (g, p)) in aligned.ids.iter().zip(&aligned.spans) {
        let text = texts.get(id.as_str()).copied();
        let show = |s: &Span| {
            let mut v = json!({"start": s.start, "end": s.end, "label": s.label});
            if let Some(t) = text {
                let n = t.chars().count();
                v["text"] = json!(slice_chars(t, s.start, s.end).unwrap_or(""));
                v["context"] = json!(format!(
                    "{}[[{}]]{}",
                    slice_chars(t, s.start.saturating_sub(CONTEXT), s.start).unwrap_or(""),
                    slice_chars(t, s.start, s.end).unwrap_or(""),
                    slice_chars(t, s.end, (s.end + CONTEXT).min(n)).unwrap_or("")
                ));
            }
            v
        };
        let overlaps = |a: &Span, b: &Span| a.start < b.end && b.start < a.end;
        let (mut missed, mut spurious, mut mislabelled, mut boundary) = (vec![], vec![], vec![], vec![]);
        for gs in g {
            if p.contains(gs) {
                continue;
            }
            if let Some(ps) = p.iter().find(|ps| ps.start == gs.start && ps.end == gs.end) {
                mislabelled.push(json!({"gold": show(gs), "pred": show(ps)}));
            } else if let Some(ps) = p.iter().find(|ps| overlaps(ps, gs)) {
                boundary.push(json!({"gold": show(gs), "pred": show(ps)}));
            } else {
                missed.push(show(gs));
            }
        }
        for ps in p {
            if !g.iter().any(|gs| overlaps(gs, ps)) {
                spurious.push(show(ps));
            }
        }
        if !(missed.is_empty() && spurious.is_empty() && mislabelled.is_empty() && boundary.is_empty()) {
            out.push(json!({"id": id, "missed": missed, "spurious": spurious, "mislabelled": mislabelled, "boundary": boundary}));
        }
    }
    out
}

/// A readable table of the report.
pub fn render_table(r: &EvalReport) -> String {
    let mut s = format!("documents: {}", r.documents);
    if r.prediction_errors > 0 {
        s.push_str(&format!(" ({} prediction error records, scored as empty)", r.prediction_errors));
    }
    s.push('\n');
    let ci = |key: &str| {
        r.bootstrap
            .as_ref()
            .and_then(|b| b.ci95.get(key))
            .map(|[lo, hi]| format!("  [{lo:.4}, {hi:.4}]"))
            .unwrap_or_default()
    };
    if let Some(ents) = &r.entities {
        s.push_str(&format!("entity types: {}\n", r.types.join(", ")));
        if !r.ignored_predicted.is_empty() {
            s.push_str(&format!("ignored predicted types (not scored): {:?}\n", r.ignored_predicted));
        }
        s.push_str(&format!(
            "\n{:<8} {:>8} {:>9} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7}   micro F1 95% CI\n",
            "schema", "correct", "incorrect", "partial", "missed", "spurious", "P", "R", "F1"
        ));
        for schema in Schema::ALL {
            let e = &ents[&schema];
            s.push_str(&format!(
                "{:<8} {:>8} {:>9} {:>7} {:>7} {:>8} {:>7.4} {:>7.4} {:>7.4}{}\n",
                schema.name(),
                e.counts.correct,
                e.counts.incorrect,
                e.counts.partial,
                e.counts.missed,
                e.counts.spurious,
                e.micro.precision,
                e.micro.recall,
                e.micro.f1,
                ci(&format!("entities.{}.micro.f1", schema.name()))
            ));
        }
        let strict = &ents[&Schema::Strict];
        s.push_str(&format!("\nstrict, per type {:>18} {:>7} {:>7} {:>8}\n", "P", "R", "F1", "support"));
        for (t, tr) in &strict.per_type {
            s.push_str(&format!(
                "  {:<24} {:>9.4} {:>7.4} {:>7.4} {:>8}\n",
                t, tr.scores.precision, tr.scores.recall, tr.scores.f1, tr.possible
            ));
        }
        s.push_str(&format!(
            "  {:<24} {:>9.4} {:>7.4} {:>7.4}{}\n",
            "macro avg",
            strict.macro_avg.precision,
            strict.macro_avg.recall,
            strict.macro_avg.f1,
            ci("entities.strict.macro.f1")
        ));
    }
    if let Some(t) = &r.topics {
        s.push_str(&format!("\ntopics ({}): accuracy {:.4}{}\n", t.mode, t.accuracy, ci("topics.accuracy")));
        s.push_str(&format!("  {:<28} {:>7} {:>7} {:>7} {:>8}\n", "class", "P", "R", "F1", "support"));
        for (l, c) in &t.per_class {
            s.push_str(&format!(
                "  {:<28} {:>7.4} {:>7.4} {:>7.4} {:>8}\n",
                l, c.scores.precision, c.scores.recall, c.scores.f1, c.support
            ));
        }
        s.push_str(&format!(
            "  {:<28} {:>7.4} {:>7.4} {:>7.4}{}\n",
            "macro avg",
            t.macro_avg.precision,
            t.macro_avg.recall,
            t.macro_avg.f1,
            ci("topics.macro.f1")
        ));
        if !t.confusion.is_empty() {
            s.push_str("  confusion (rows gold, columns predicted, label order as above)\n");
            for (l, row) in t.labels.iter().zip(&t.confusion) {
                s.push_str(&format!("  {:<28} {}\n", l, row.iter().map(|x| format!("{x:>5}")).collect::<String>()));
            }
        }
    }
    s
}
