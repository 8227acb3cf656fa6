//! Reading the documents to annotate: a directory of `.txt` files (recursively), single `.txt`
//! files, JSONL files of `{"id", "text"}` objects, or JSONL on standard input (`-`). A JSONL
//! object may carry its own tokenisation as `"tokens": [[start, end], ...]` (code points, in
//! order, not overlapping), as the gold files of `postilla import` do; the NER then takes those
//! tokens as its words.
//!
//! A document that cannot be read becomes a [`DocumentError`] carrying its id, never a silent
//! omission, so that a batch run writes an error record for it and goes on.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A document to annotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Document id: path relative to the input directory without `.txt`, the file stem of a
    /// single file, or the `id` field of a JSONL object.
    pub id: String,
    /// The text.
    pub text: String,
    /// The document's own tokens (code-point spans, in order, not overlapping), when the input
    /// is pre-tokenised (a JSONL object's `tokens`); `None` for raw text.
    pub tokens: Option<Vec<[usize; 2]>>,
    /// Where it came from (path, `path:line` or `stdin:line`).
    pub source: String,
    /// The texts around it in its input, for the NER to read as context (empty unless
    /// [`crate::context::with_context`] set them).
    pub context: DocumentContext,
}

impl Document {
    /// A raw-text document (no tokens, no context).
    pub fn new(id: &str, text: &str, source: &str) -> Self {
        Document {
            id: id.into(),
            text: text.into(),
            tokens: None,
            source: source.into(),
            context: DocumentContext::default(),
        }
    }
}

/// The texts of a document's neighbours in its input ([`crate::context`]), in order, joined by
/// line breaks; empty when it has none (or context is off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentContext {
    /// The documents before it, the nearest last.
    pub before: String,
    /// The documents after it, the nearest first.
    pub after: String,
}

/// A document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// The id the document would have had.
    pub id: String,
    /// Machine-readable kind: `invalid_utf8`, `empty`, `unreadable`, `malformed_jsonl`,
    /// `missing_text`, `binary`, `invalid_id`, `duplicate_id`, `invalid_tokens`.
    pub kind: &'static str,
    /// Explanation.
    pub message: String,
    /// Where it came from.
    pub source: String,
}

/// One input item.
pub type InputItem = Result<Document, DocumentError>;

/// Errors that make an input unusable as a whole (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The input path does not exist or cannot be listed.
    #[error("{path}: {message}")]
    Unusable {
        /// The input.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Lists the documents of one input argument, in a deterministic order (directory entries
/// sorted by path), reading texts lazily.
pub fn read_input(arg: &str) -> Result<Box<dyn Iterator<Item = InputItem>>, InputError> {
    if arg == "-" {
        let stdin = std::io::stdin();
        return Ok(Box::new(jsonl_items(BufReader::new(stdin), "stdin".into())));
    }
    let path = PathBuf::from(arg);
    let meta =
        std::fs::metadata(&path).map_err(|e| InputError::Unusable { path: path.clone(), message: e.to_string() })?;
    if meta.is_dir() {
        let mut files = Vec::new();
        collect_txt(&path, &mut files)
            .map_err(|e| InputError::Unusable { path: path.clone(), message: e.to_string() })?;
        files.sort();
        let root = path.clone();
        return Ok(Box::new(files.into_iter().map(move |f| {
            let rel = f.strip_prefix(&root).unwrap_or(&f).with_extension("");
            let id = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            read_txt(&f, id)
        })));
    }
    if path.extension().is_some_and(|e| e == "jsonl") {
        let f = std::fs::File::open(&path)
            .map_err(|e| InputError::Unusable { path: path.clone(), message: e.to_string() })?;
        return Ok(Box::new(jsonl_items(BufReader::new(f), path.display().to_string())));
    }
    let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| arg.to_owned());
    Ok(Box::new(std::iter::once(read_txt(&path, id))))
}

/// Documents a JSONL input holds (its non-blank lines), counted with one sequential read;
/// `None` when it cannot be read (reading it will then report why).
pub fn jsonl_document_count(path: &Path) -> Option<u64> {
    let mut reader = BufReader::new(std::fs::File::open(path).ok()?);
    let (mut count, mut line) = (0u64, Vec::new());
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return Some(count);
        }
        count += u64::from(line.iter().any(|b| !b.is_ascii_whitespace()));
    }
}

fn collect_txt(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_txt(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "txt") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one `.txt` file as a document (UTF-8; a leading BOM is removed).
pub fn read_txt(path: &Path, id: String) -> InputItem {
    let source = path.display().to_string();
    let err = |kind, message: String| DocumentError { id: id.clone(), kind, message, source: source.clone() };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| err("unreadable", e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        err("invalid_utf8", format!("not UTF-8: invalid byte sequence at byte {}", e.utf8_error().valid_up_to()))
    })?;
    document(id.clone(), strip_bom(text), None, source)
}

fn strip_bom(text: String) -> String {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// Checks a text, its tokens and id and builds the document.
fn document(id: String, text: String, tokens: Option<Vec<[usize; 2]>>, source: String) -> InputItem {
    let err =
        |kind, message: &str| DocumentError { id: id.clone(), kind, message: message.into(), source: source.clone() };
    if let Some(problem) = id_problem(&id) {
        return Err(err("invalid_id", problem));
    }
    if text.trim().is_empty() {
        return Err(err(
            "empty",
            if text.is_empty() { "the document is empty" } else { "the document is whitespace only" },
        ));
    }
    if text.contains('\0') {
        return Err(err("binary", "the document contains NUL bytes (a binary file?)"));
    }
    if let Some(problem) = tokens.as_deref().and_then(|t| token_problem(t, text.chars().count())) {
        return Err(DocumentError { id, kind: "invalid_tokens", message: problem, source });
    }
    Ok(Document { id, text, tokens, source, context: DocumentContext::default() })
}

/// Why a document's tokens cannot be its words: a span that is empty, reversed, past the end
/// of the text (`n_chars` code points), or that starts before the previous one ends.
pub fn token_problem(tokens: &[[usize; 2]], n_chars: usize) -> Option<String> {
    let mut previous_end = 0;
    for (i, &[start, end]) in tokens.iter().enumerate() {
        if start >= end {
            return Some(format!("token {i} [{start}, {end}] is empty or reversed"));
        }
        if end > n_chars {
            return Some(format!("token {i} [{start}, {end}] ends past the text ({n_chars} code points)"));
        }
        if start < previous_end {
            return Some(format!("token {i} [{start}, {end}] starts before the previous token ends ({previous_end})"));
        }
        previous_end = end;
    }
    None
}

/// A JSONL object's `tokens`: absent or `null` is none; anything but an array of
/// `[start, end]` pairs of non-negative integers is an error message.
fn json_tokens(value: &serde_json::Value) -> Result<Option<Vec<[usize; 2]>>, String> {
    match value.get("tokens") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(tokens) => serde_json::from_value::<Vec<[usize; 2]>>(tokens.clone())
            .map(Some)
            .map_err(|e| format!("\"tokens\" is not a list of [start, end] code-point pairs: {e}")),
    }
}

/// Ids are written into records and used as file names by exporters: no control characters,
/// no `..` components, no backslashes, not empty.
fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("the id is empty")
    } else if id.chars().any(char::is_control) {
        Some("the id contains control characters")
    } else if id.contains('\\') || id.split('/').any(|c| c == ".." || c == "." || c.is_empty()) || id.starts_with('/') {
        Some("the id is not a clean relative path (no empty, '.' or '..' components, no backslashes)")
    } else {
        None
    }
}

fn jsonl_items(reader: impl BufRead + 'static, name: String) -> impl Iterator<Item = InputItem> {
    reader.split(b'\n').enumerate().filter_map(move |(i, line)| {
        let source = format!("{name}:{}", i + 1);
        let fallback_id = format!("{name}:{}", i + 1);
        let err = |kind, message: String| {
            Some(Err(DocumentError { id: fallback_id.clone(), kind, message, source: source.clone() }))
        };
        let line = match line {
            Ok(l) => l,
            Err(e) => return err("unreadable", e.to_string()),
        };
        let Ok(line) = String::from_utf8(line) else {
            return err("invalid_utf8", "the line is not UTF-8".into());
        };
        if line.trim().is_empty() {
            return None;
        }
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => return err("malformed_jsonl", format!("not JSON: {e}")),
        };
        let id = match value.get("id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return err("malformed_jsonl", "the object has no string \"id\"".into()),
        };
        let tokens = match json_tokens(&value) {
            Ok(t) => t,
            Err(message) => return Some(Err(DocumentError { id, kind: "invalid_tokens", message, source })),
        };
        match value.get("text").and_then(|t| t.as_str()) {
            // a JSON string is the text verbatim (a BOM inside it is content, not encoding)
            Some(text) => Some(document(id, text.to_owned(), tokens, source)),
            None => Some(Err(DocumentError {
                id,
                kind: "missing_text",
                message: "the object has no string \"text\"".into(),
                source,
            })),
        }
    })
}

/// Marks every repeated id after its first occurrence as a `duplicate_id` error.
pub fn flag_duplicates(items: impl Iterator<Item = InputItem>) -> impl Iterator<Item = InputItem> {
    let mut seen = std::collections::HashSet::new();
    items.map(move |item| match item {
        Ok(doc) if !seen.insert(doc.id.clone()) => Err(DocumentError {
            message: format!("id {:?} was already used by an earlier document", doc.id),
            id: doc.id,
            kind: "duplicate_id",
            source: doc.source,
        }),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn txt_files_bad_and_good() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir(p.join("sub")).unwrap();
        std::fs::write(p.join("a.txt"), "\u{feff}Ciao Roma").unwrap();
        std::fs::write(p.join("sub/b.txt"), [0x66, 0x6f, 0xff, 0x6f]).unwrap();
        std::fs::write(p.join("c.txt"), "  \n\t ").unwrap();
        std::fs::write(p.join("d.txt"), "").unwrap();
        std::fs::write(p.join("e.txt"), b"\x7fELF\0\0\x01").unwrap();
        std::fs::write(p.join("ignored.md"), "x").unwrap();
        let items: Vec<InputItem> = read_input(p.to_str().unwrap()).unwrap().collect();
        let summary: Vec<(String, &str)> = items
            .iter()
            .map(|i| match i {
                Ok(d) => (d.id.clone(), "ok"),
                Err(e) => (e.id.clone(), e.kind),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a".into(), "ok"),
                ("c".into(), "empty"),
                ("d".into(), "empty"),
                ("e".into(), "binary"),
                ("sub/b".into(), "invalid_utf8")
            ]
        );
        assert_eq!(items[0].as_ref().unwrap().text, "Ciao Roma", "BOM removed");
    }

    #[test]
    fn jsonl_lines_bad_and_good() {
        let mut f = tempfile::Builder::new().suffix(".jsonl").tempfile().unwrap();
        writeln!(f, r#"{{"id":"1","text":"Roma"}}"#).unwrap();
        writeln!(f, "not json").unwrap();
        writeln!(f, r#"{{"id":"3"}}"#).unwrap();
        writeln!(f).unwrap();
        writeln!(f, r#"{{"id":"../x","text":"t"}}"#).unwrap();
        writeln!(f, r#"{{"id":"a\u0007b","text":"t"}}"#).unwrap();
        writeln!(f, r#"{{"id":"1","text":"dup"}}"#).unwrap();
        let items: Vec<InputItem> = flag_duplicates(read_input(f.path().to_str().unwrap()).unwrap()).collect();
        let kinds: Vec<&str> = items.iter().map(|i| i.as_ref().map_or_else(|e| e.kind, |_| "ok")).collect();
        assert_eq!(kinds, vec!["ok", "malformed_jsonl", "missing_text", "invalid_id", "invalid_id", "duplicate_id"]);
        assert!(items[1].as_ref().unwrap_err().source.ends_with(":2"), "line number in the source");
    }

    #[test]
    fn jsonl_tokens_are_read_and_checked() {
        let mut f = tempfile::Builder::new().suffix(".jsonl").tempfile().unwrap();
        writeln!(f, r#"{{"id":"a","text":"S.p.A. è","tokens":[[0,6],[7,8]]}}"#).unwrap();
        writeln!(f, r#"{{"id":"b","text":"Roma","tokens":null}}"#).unwrap();
        writeln!(f, r#"{{"id":"c","text":"Roma","tokens":[[0,5]]}}"#).unwrap();
        writeln!(f, r#"{{"id":"d","text":"Roma X","tokens":[[0,4],[2,6]]}}"#).unwrap();
        writeln!(f, r#"{{"id":"e","text":"Roma","tokens":[[2,2]]}}"#).unwrap();
        writeln!(f, r#"{{"id":"f","text":"Roma","tokens":"0-4"}}"#).unwrap();
        writeln!(f, r#"{{"id":"g","text":"Roma","tokens":[[0,-4]]}}"#).unwrap();
        let items: Vec<InputItem> = read_input(f.path().to_str().unwrap()).unwrap().collect();
        assert_eq!(items[0].as_ref().unwrap().tokens, Some(vec![[0, 6], [7, 8]]));
        assert_eq!(items[1].as_ref().unwrap().tokens, None);
        let errors: Vec<(&str, &str)> =
            items[2..].iter().map(|i| i.as_ref().map_or_else(|e| (e.id.as_str(), e.kind), |_| ("?", "ok"))).collect();
        assert_eq!(
            errors,
            vec![
                ("c", "invalid_tokens"),
                ("d", "invalid_tokens"),
                ("e", "invalid_tokens"),
                ("f", "invalid_tokens"),
                ("g", "invalid_tokens")
            ]
        );
        let message = &items[2].as_ref().unwrap_err().message;
        assert!(message.contains("past the text (4 code points)"), "{message}");
        assert!(items[3].as_ref().unwrap_err().message.contains("before the previous token ends"));
    }
}
