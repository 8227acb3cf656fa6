//! Each document's text. A run's records usually carry only `text_sha256` (the text stays in
//! the input); the report looks in the record (`annotate --with-text`), then in the gold, then
//! in the file named by `source` (a `.txt` path, or `FILE.jsonl:LINE`), and keeps a text only
//! when its sha256 equals the record's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use postilla_annotator::record::AnnotationRecord;
use postilla_annotator::text::text_sha256;

/// Where a document's text was found, or why it was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundText {
    /// The text, and where it came from (`record`, `gold`, `source`).
    Found(String, &'static str),
    /// Not found; the reason, for the page.
    Missing(String),
}

/// Finds texts for records; reads each JSONL source file at most once.
pub struct TextFinder<'a> {
    gold: HashMap<&'a str, &'a AnnotationRecord>,
    root: PathBuf,
    jsonl: Mutex<HashMap<PathBuf, Option<Vec<String>>>>,
}

impl<'a> TextFinder<'a> {
    /// A finder over the gold records (if any), resolving relative sources against `root`.
    pub fn new(gold: Option<&'a [AnnotationRecord]>, root: &Path) -> Self {
        let gold = gold.unwrap_or_default().iter().map(|r| (r.id.as_str(), r)).collect();
        TextFinder { gold, root: root.to_path_buf(), jsonl: Mutex::new(HashMap::new()) }
    }

    /// The text of `record`.
    pub fn find(&self, record: &AnnotationRecord) -> FoundText {
        let Some(want) = record.text_sha256.as_deref() else {
            return FoundText::Missing("the record has no text_sha256 (the document could not be read)".into());
        };
        let matches = |t: &str| text_sha256(t) == want;
        if let Some(t) = record.text.as_deref().filter(|t| matches(t)) {
            return FoundText::Found(t.to_owned(), "record");
        }
        if let Some(t) = self.gold.get(record.id.as_str()).and_then(|g| g.text.as_deref()).filter(|t| matches(t)) {
            return FoundText::Found(t.to_owned(), "gold");
        }
        let Some(source) = record.source.as_deref() else {
            return FoundText::Missing("the record carries no text and names no source".into());
        };
        match self.read_source(source) {
            Some(t) if matches(&t) => FoundText::Found(t, "source"),
            Some(_) => FoundText::Missing(format!("{source} has changed since the run (text_sha256 differs)")),
            None => FoundText::Missing(format!("{source} cannot be read from here")),
        }
    }

    fn read_source(&self, source: &str) -> Option<String> {
        if let Some((file, line)) = jsonl_source(source) {
            return self.jsonl_line(&self.root.join(file), line);
        }
        let text = std::fs::read_to_string(self.root.join(source)).ok()?;
        // the input reader strips a byte-order mark
        Some(text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text))
    }

    fn jsonl_line(&self, path: &Path, line: usize) -> Option<String> {
        let mut cache = self.jsonl.lock().ok()?;
        let lines = cache
            .entry(path.to_path_buf())
            .or_insert_with(|| std::fs::read_to_string(path).ok().map(|s| s.lines().map(str::to_owned).collect()));
        let raw = lines.as_ref()?.get(line.checked_sub(1)?)?;
        let value: serde_json::Value = serde_json::from_str(raw).ok()?;
        value.get("text")?.as_str().map(str::to_owned)
    }
}

/// `FILE.jsonl:LINE` as (file, line).
fn jsonl_source(source: &str) -> Option<(&str, usize)> {
    let (file, line) = source.rsplit_once(':')?;
    let line = line.parse().ok()?;
    (file.ends_with(".jsonl") || file.ends_with(".json")).then_some((file, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_come_from_the_record_the_gold_or_the_source_and_must_match_the_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "\u{feff}Roma e Berlino").expect("write");
        std::fs::write(
            dir.path().join("in.jsonl"),
            "{\"id\":\"x\",\"text\":\"zero\"}\n{\"id\":\"b\",\"text\":\"Milano\"}\n",
        )
        .expect("write");
        let mut a = AnnotationRecord::for_text("a", "Roma e Berlino");
        a.source = Some("a.txt".into());
        let mut b = AnnotationRecord::for_text("b", "Milano");
        b.source = Some("in.jsonl:2".into());
        let mut c = AnnotationRecord::for_text("c", "Torino");
        c.source = Some("a.txt".into());
        let mut g = AnnotationRecord::for_text("c", "Torino");
        g.text = Some("Torino".into());
        let gold = [g];
        let f = TextFinder::new(Some(&gold), dir.path());
        assert_eq!(f.find(&a), FoundText::Found("Roma e Berlino".into(), "source"));
        assert_eq!(f.find(&b), FoundText::Found("Milano".into(), "source"));
        assert_eq!(f.find(&c), FoundText::Found("Torino".into(), "gold"));
        let no_gold = TextFinder::new(None, dir.path());
        assert!(matches!(no_gold.find(&c), FoundText::Missing(m) if m.contains("changed")));
        let mut d = AnnotationRecord::for_text("d", "Napoli");
        d.source = Some("missing.txt".into());
        assert!(matches!(no_gold.find(&d), FoundText::Missing(m) if m.contains("cannot be read")));
        d.text = Some("Napoli".into());
        assert_eq!(no_gold.find(&d), FoundText::Found("Napoli".into(), "record"));
    }
}
