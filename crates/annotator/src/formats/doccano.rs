//! doccano JSONL: one object per document with `text` and either `label: [[start, end,
//! "LABEL"], …]` (sequence labelling export) or `entities: [{"start_offset", "end_offset",
//! "label"}, …]`; offsets in code points. The id is the object's `id` or the line number.

use std::path::Path;

use serde_json::{json, Value};

use super::{record_text, FormatError, ImportStats, LabelMap};
use crate::record::{AnnotationRecord, EntitySpan};

/// Imports a doccano JSONL file.
pub fn import_file(path: &Path, map: &LabelMap, stats: &mut ImportStats) -> Result<Vec<AnnotationRecord>, FormatError> {
    let content = std::fs::read_to_string(path).map_err(|e| FormatError::io(path, e))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut records = Vec::new();
    for (i, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| FormatError::malformed(path, i + 1, m);
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let text = v.get("text").and_then(Value::as_str).ok_or_else(|| bad("no string \"text\"".into()))?;
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => format!("{stem}-{:06}", i + 1),
        };
        let mut spans: Vec<(u64, u64, String)> = Vec::new();
        if let Some(labels) = v.get("label").and_then(Value::as_array) {
            for l in labels {
                match l.as_array().map(Vec::as_slice) {
                    Some([s, e, lab]) => spans.push((
                        s.as_u64().ok_or_else(|| bad("label start is not an integer".into()))?,
                        e.as_u64().ok_or_else(|| bad("label end is not an integer".into()))?,
                        lab.as_str().ok_or_else(|| bad("label is not a string".into()))?.to_owned(),
                    )),
                    _ => return Err(bad(format!("label entry {l} is not [start, end, label]"))),
                }
            }
        }
        if let Some(ents) = v.get("entities").and_then(Value::as_array) {
            for e in ents {
                let s = e.get("start_offset").and_then(Value::as_u64);
                let t = e.get("end_offset").and_then(Value::as_u64);
                let l = e.get("label").and_then(Value::as_str);
                match (s, t, l) {
                    (Some(s), Some(t), Some(l)) => spans.push((s, t, l.to_owned())),
                    _ => return Err(bad(format!("entity {e} lacks start_offset/end_offset/label"))),
                }
            }
        }
        let mut record = AnnotationRecord::for_text(&id, text);
        for (s, e, l) in spans {
            if s >= e {
                return Err(bad(format!("empty or reversed span [{s}, {e})")));
            }
            let span = EntitySpan::from_text(text, s as usize, e as usize, map.apply(&l), None)
                .ok_or_else(|| bad(format!("span [{s}, {e}) is outside the text")))?;
            record.entities.push(span);
        }
        record.entities.sort_by_key(|e| (e.start, e.end));
        record.text = Some(text.to_owned());
        stats.add(&record);
        records.push(record);
    }
    Ok(records)
}

/// Writes records as doccano JSONL (`id`, `text`, `label: [[start, end, label]]`).
pub fn export(records: &[AnnotationRecord]) -> Result<String, FormatError> {
    let mut out = String::new();
    for r in records {
        let text = record_text(r)?;
        let labels: Vec<Value> = r.entities.iter().map(|e| json!([e.start, e.end, e.label])).collect();
        out.push_str(&json!({"id": r.id, "text": text, "label": labels}).to_string());
        out.push('\n');
    }
    Ok(out)
}
