//! The per-document error list of `postilla eval --errors`: missed, spurious, mislabelled and
//! boundary errors, with context.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::entities::Span;
use super::Aligned;
use crate::record::AnnotationRecord;
use crate::text::slice_chars;

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
