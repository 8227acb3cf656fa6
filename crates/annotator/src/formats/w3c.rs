//! W3C Web Annotation (JSON-LD) export: one `Annotation` per entity and topic, in an
//! `AnnotationCollection` per file. Entities target the document with a
//! `TextPositionSelector` (code-point offsets, as the Web Annotation model counts characters)
//! and a `TextQuoteSelector` (exact surface with up to 32 characters of prefix and suffix);
//! `creator`/`generator` come from the record's provenance.

use serde_json::{json, Value};

use crate::record::AnnotationRecord;
use crate::text::slice_chars;

/// Context characters in the quote selector.
const QUOTE_CONTEXT: usize = 32;

/// The annotation collection for `records`.
pub fn export(records: &[AnnotationRecord]) -> Value {
    let mut items = Vec::new();
    for r in records {
        let source = r.source.clone().unwrap_or_else(|| format!("urn:postilla:doc:{}", r.id));
        let generator = r.provenance.as_ref().map(|p| {
            json!({"type": "Software", "name": p.get("tool").cloned().unwrap_or(Value::Null),
                   "ner_model": p.get("ner_model").cloned().unwrap_or(Value::Null),
                   "topic_model": p.get("topic_model").cloned().unwrap_or(Value::Null)})
        });
        for (i, e) in r.entities.iter().enumerate() {
            let mut selectors = vec![json!({"type": "TextPositionSelector", "start": e.start, "end": e.end})];
            let mut quote = json!({"type": "TextQuoteSelector", "exact": e.text});
            if let Some(text) = r.text.as_deref() {
                let prefix_start = e.start.saturating_sub(QUOTE_CONTEXT);
                let n = text.chars().count();
                quote["prefix"] = json!(slice_chars(text, prefix_start, e.start).unwrap_or(""));
                quote["suffix"] = json!(slice_chars(text, e.end, (e.end + QUOTE_CONTEXT).min(n)).unwrap_or(""));
            }
            selectors.push(quote);
            let mut body = json!([{"type": "TextualBody", "purpose": "tagging", "value": e.label}]);
            if let Some(score) = e.score {
                body[0]["postilla:score"] = json!(score);
            }
            items.push(annotation(
                &r.id,
                &format!("entity-{}", i + 1),
                body,
                json!({"source": source, "selector": selectors}),
                &generator,
                r,
            ));
        }
        for (i, t) in r.topics.iter().enumerate() {
            let mut body = json!([{"type": "TextualBody", "purpose": "classifying", "value": t.label}]);
            if let Some(score) = t.score {
                body[0]["postilla:score"] = json!(score);
            }
            items.push(annotation(&r.id, &format!("topic-{}", i + 1), body, json!({"source": source}), &generator, r));
        }
    }
    json!({
        "@context": ["http://www.w3.org/ns/anno.jsonld", {"postilla": "urn:postilla:"}],
        "type": "AnnotationCollection",
        "label": "Postilla annotations",
        "total": items.len(),
        "first": {"type": "AnnotationPage", "items": items}
    })
}

fn annotation(
    doc: &str,
    suffix: &str,
    body: Value,
    target: Value,
    generator: &Option<Value>,
    r: &AnnotationRecord,
) -> Value {
    let mut a = json!({
        "type": "Annotation",
        "id": format!("urn:postilla:{doc}:{suffix}"),
        "motivation": "tagging",
        "body": body,
        "target": target,
    });
    if let Some(g) = generator {
        a["generator"] = g.clone();
        a["creator"] = json!({"type": "Software", "name": g["name"].clone()});
    } else {
        a["creator"] = json!({"type": "Person", "name": "gold annotation"});
    }
    if let Some(sha) = &r.text_sha256 {
        a["target"]["postilla:text_sha256"] = json!(sha);
    }
    a
}
