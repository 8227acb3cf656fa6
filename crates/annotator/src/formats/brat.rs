//! brat standoff: `NAME.txt` with the text and `NAME.ann` with lines
//! `T1<TAB>LABEL START END<TAB>surface` (offsets in code points, as brat counts them).
//! Discontinuous spans (`START END;START END`) are refused with the line number: the
//! `postilla/1` record has contiguous spans only. Other annotation kinds (relations `R`,
//! events `E`, attributes `A`, notes `#`, …) are skipped.

use std::path::{Path, PathBuf};

use super::{record_text, FormatError, ImportStats, LabelMap};
use crate::record::{AnnotationRecord, EntitySpan};
use crate::text::slice_chars;

/// Imports one `.ann` file (or a `.txt`, whose `.ann` sibling is read); id = file stem.
pub fn import_pair(path: &Path, map: &LabelMap, stats: &mut ImportStats) -> Result<AnnotationRecord, FormatError> {
    let txt = path.with_extension("txt");
    let ann = path.with_extension("ann");
    let text = std::fs::read_to_string(&txt).map_err(|e| FormatError::io(&txt, e))?;
    let ann_text = std::fs::read_to_string(&ann).map_err(|e| FormatError::io(&ann, e))?;
    let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut record = AnnotationRecord::for_text(&id, &text);
    for (i, line) in ann_text.lines().enumerate() {
        let bad = |m: String| FormatError::malformed(&ann, i + 1, m);
        if !line.starts_with('T') {
            continue;
        }
        let mut fields = line.splitn(3, '\t');
        let (_, spec, surface) = (fields.next(), fields.next(), fields.next());
        let spec = spec.ok_or_else(|| bad(format!("expected `T<TAB>LABEL START END<TAB>text`, got {line:?}")))?;
        if spec.contains(';') {
            return Err(bad("discontinuous spans are not supported".into()));
        }
        let parts: Vec<&str> = spec.split(' ').collect();
        let [label, start, end] = parts.as_slice() else {
            return Err(bad(format!("expected `LABEL START END`, got {spec:?}")));
        };
        let (start, end): (usize, usize) = match (start.parse(), end.parse()) {
            (Ok(s), Ok(e)) if s < e => (s, e),
            _ => return Err(bad(format!("bad offsets in {spec:?}"))),
        };
        let span = EntitySpan::from_text(&text, start, end, map.apply(label), None)
            .ok_or_else(|| bad(format!("offsets {start}-{end} are outside the text")))?;
        if let Some(s) = surface {
            // the .ann line cannot hold line breaks: they are written as spaces
            if s != span.text.replace(['\n', '\r'], " ") {
                return Err(bad(format!("the .ann says {s:?} but the text has {:?}", span.text)));
            }
        }
        record.entities.push(span);
    }
    record.entities.sort_by_key(|e| (e.start, e.end));
    record.text = Some(text);
    stats.add(&record);
    Ok(record)
}

/// Writes `DIR/ID.txt` and `DIR/ID.ann` for each record (ids with `/` make subdirectories).
pub fn export(records: &[AnnotationRecord], dir: &Path) -> Result<Vec<PathBuf>, FormatError> {
    let mut written = Vec::new();
    for r in records {
        let text = record_text(r)?;
        let base = dir.join(&r.id);
        if let Some(parent) = base.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FormatError::io(parent, e))?;
        }
        let mut ann = String::new();
        for (i, e) in r.entities.iter().enumerate() {
            if slice_chars(text, e.start, e.end) != Some(e.text.as_str()) {
                return Err(FormatError::Unexportable {
                    id: r.id.clone(),
                    message: format!("entity {i} does not match the text"),
                });
            }
            ann.push_str(&format!(
                "T{}\t{} {} {}\t{}\n",
                i + 1,
                e.label,
                e.start,
                e.end,
                e.text.replace(['\n', '\r'], " ")
            ));
        }
        let txt_path = base.with_extension("txt");
        let ann_path = base.with_extension("ann");
        std::fs::write(&txt_path, text).map_err(|e| FormatError::io(&txt_path, e))?;
        std::fs::write(&ann_path, ann).map_err(|e| FormatError::io(&ann_path, e))?;
        written.push(ann_path);
    }
    Ok(written)
}
