//! Reading gold files for training: `postilla/1` records with their text and entity spans,
//! each checked (text present, spans inside the text and equal to their surface, no
//! overlapping spans), every error naming the file and line.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use postilla_annotator::record::AnnotationRecord;
use postilla_annotator::text::slice_chars;

use super::error::TrainError;

/// One gold document.
#[derive(Debug, Clone)]
pub struct GoldDoc {
    /// Index of its file in the list given.
    pub file: usize,
    /// 1-based line in that file.
    pub line: usize,
    /// The record (its `text` is present).
    pub record: AnnotationRecord,
}

impl GoldDoc {
    /// The document's text.
    pub fn text(&self) -> &str {
        self.record.text.as_deref().unwrap_or_default()
    }
}

/// The documents of some gold files, in file and line order.
#[derive(Debug, Clone)]
pub struct GoldSet {
    /// The files.
    pub files: Vec<PathBuf>,
    /// Their documents.
    pub docs: Vec<GoldDoc>,
}

impl GoldSet {
    /// Reads and checks `files`.
    pub fn read(files: &[PathBuf]) -> Result<Self, TrainError> {
        let mut docs = Vec::new();
        for (f, path) in files.iter().enumerate() {
            read_file(path, f, &mut docs)?;
        }
        Ok(GoldSet { files: files.to_vec(), docs })
    }

    /// The entity types in the gold, sorted.
    pub fn types(&self) -> BTreeSet<String> {
        self.docs.iter().flat_map(|d| d.record.entities.iter().map(|e| e.label.clone())).collect()
    }

    /// The documents of file `f`.
    pub fn docs_of(&self, f: usize) -> impl Iterator<Item = &GoldDoc> {
        self.docs.iter().filter(move |d| d.file == f)
    }

    /// Every entity's type must be one of `labels`; the first that is not is an error.
    pub fn check_types(&self, labels: &[String]) -> Result<(), TrainError> {
        for d in &self.docs {
            if let Some(e) = d.record.entities.iter().find(|e| !labels.contains(&e.label)) {
                return Err(TrainError::Gold {
                    path: self.files[d.file].clone(),
                    line: d.line,
                    message: format!(
                        "entity type {:?} is not among the trained types ({}); add it to --labels or map it away",
                        e.label,
                        labels.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

fn gold_error(path: &Path, line: usize, message: impl Into<String>) -> TrainError {
    TrainError::Gold { path: path.into(), line, message: message.into() }
}

fn read_file(path: &Path, f: usize, docs: &mut Vec<GoldDoc>) -> Result<(), TrainError> {
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => gold_error(path, n, "not valid UTF-8"),
            _ => TrainError::io(path, e),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record: AnnotationRecord =
            serde_json::from_str(&line).map_err(|e| gold_error(path, n, format!("not a postilla/1 record: {e}")))?;
        check_record(&record).map_err(|m| gold_error(path, n, format!("document {:?}: {m}", record.id)))?;
        docs.push(GoldDoc { file: f, line: n, record });
    }
    Ok(())
}

/// What makes a record unusable for training, in words.
fn check_record(record: &AnnotationRecord) -> Result<(), String> {
    if record.error.is_some() {
        return Err("is an error record".into());
    }
    let Some(text) = record.text.as_deref() else {
        return Err(
            "has no text: training needs gold with its text (what `postilla import` writes; records of `postilla annotate` need --with-text)".into(),
        );
    };
    let mut previous_end = 0;
    for e in &record.entities {
        let surface = slice_chars(text, e.start, e.end).filter(|_| e.start < e.end).ok_or_else(|| {
            format!("entity [{}, {}) lies outside the text of {} code points", e.start, e.end, text.chars().count())
        })?;
        if surface != e.text {
            return Err(format!("entity [{}, {}) is {:?} in the text, not {:?}", e.start, e.end, surface, e.text));
        }
        if e.start < previous_end {
            return Err(format!(
                "entity [{}, {}) overlaps the one before it (nested spans cannot be trained as IOB2)",
                e.start, e.end
            ));
        }
        previous_end = e.end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(lines: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gold.jsonl");
        std::fs::write(&path, lines.join("\n")).expect("write");
        (dir, path)
    }

    #[test]
    fn reads_documents_and_names_bad_lines() {
        let good = r#"{"schema":"postilla/1","id":"a","text":"Mario a Roma","entities":[{"start":0,"end":5,"label":"PER","text":"Mario"},{"start":8,"end":12,"label":"LOC","text":"Roma"}]}"#;
        let (_d, path) = write(&[good, "", good]);
        let set = GoldSet::read(std::slice::from_ref(&path)).expect("read");
        assert_eq!(set.docs.len(), 2);
        assert_eq!(set.docs[1].line, 3);
        assert_eq!(set.types().into_iter().collect::<Vec<_>>(), ["LOC", "PER"]);
        let err = set.check_types(&["PER".into()]).expect_err("LOC not trained");
        assert!(err.to_string().contains("gold.jsonl:1: entity type \"LOC\""), "{err}");

        let no_text = r#"{"schema":"postilla/1","id":"b","entities":[]}"#;
        let (_d, path) = write(&[good, no_text]);
        let err = GoldSet::read(&[path]).expect_err("no text");
        assert!(err.to_string().contains("gold.jsonl:2: document \"b\": has no text"), "{err}");

        let shifted = r#"{"schema":"postilla/1","id":"c","text":"Mario a Roma","entities":[{"start":1,"end":5,"label":"PER","text":"Mario"}]}"#;
        let (_d, path) = write(&[shifted]);
        let err = GoldSet::read(&[path]).expect_err("surface");
        assert!(err.to_string().contains(":1: document \"c\": entity [1, 5) is \"ario\""), "{err}");

        let (_d, path) = write(&["{not json"]);
        let err = GoldSet::read(&[path]).expect_err("json");
        assert!(err.to_string().contains("gold.jsonl:1: not a postilla/1 record"), "{err}");
    }
}
