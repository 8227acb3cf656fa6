//! Gold-data importers and annotation exporters.
//!
//! Import turns a corpus format into `postilla/1` records (same schema as predictions, no
//! scores): [`conll`] (CoNLL/IOB2, IOB1, KIND, GermEval), [`brat`], [`doccano`] and the topic
//! formats in [`topics`]. Export writes records as brat, doccano, CoNLL IOB2 or W3C Web
//! Annotation ([`w3c`]).
//!
//! Token-level formats have no original text: it is rebuilt by joining a sentence's tokens
//! with single spaces and a document's sentences with `\n`, and the token boundaries are kept
//! in the record (`tokens`) so that exporting back is lossless.

pub mod brat;
pub mod conll;
pub mod doccano;
pub mod topics;
pub mod w3c;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::record::AnnotationRecord;

/// Errors of importers and exporters.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of an input file is malformed.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A record cannot be exported in the requested format.
    #[error("record {id}: {message}")]
    Unexportable {
        /// The record id.
        id: String,
        /// Why.
        message: String,
    },
}

impl FormatError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io { path: path.into(), source }
    }
    pub(crate) fn malformed(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        FormatError::Malformed { path: path.into(), line, message: message.into() }
    }
}

/// The text of a record to export, or the error explaining that exports need it.
pub(crate) fn record_text(r: &AnnotationRecord) -> Result<&str, FormatError> {
    r.text.as_deref().ok_or_else(|| FormatError::Unexportable {
        id: r.id.clone(),
        message: "the record has no text (annotate with --with-text, or import gold)".into(),
    })
}

/// What an import read: documents, sentences, entities per type, topics per label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportStats {
    /// Documents written.
    pub documents: usize,
    /// Sentences read (token-level formats).
    pub sentences: usize,
    /// Entities per type.
    pub entities: BTreeMap<String, usize>,
    /// Gold topics per label.
    pub topics: BTreeMap<String, usize>,
}

impl ImportStats {
    /// Counts a finished record.
    pub fn add(&mut self, r: &AnnotationRecord) {
        self.documents += 1;
        for e in &r.entities {
            *self.entities.entry(e.label.clone()).or_default() += 1;
        }
        for t in &r.topics {
            *self.topics.entry(t.label.clone()).or_default() += 1;
        }
    }
}

/// A label-map entry that is not `FROM=TO`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not FROM=TO")]
pub struct LabelMapError(pub String);

/// Label renaming, e.g. `OTH=MISC,GPE=LOC` (applied to entity labels and topics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMap(pub BTreeMap<String, String>);

impl LabelMap {
    /// Parses `A=B,C=D`.
    ///
    /// ```
    /// let m = postilla_annotator::formats::LabelMap::parse("OTH=MISC,GPE=LOC").unwrap();
    /// assert_eq!(m.apply("OTH"), "MISC");
    /// assert_eq!(m.apply("PER"), "PER");
    /// ```
    pub fn parse(spec: &str) -> Result<Self, LabelMapError> {
        let mut map = BTreeMap::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = pair.split_once('=').ok_or_else(|| LabelMapError(pair.to_owned()))?;
            map.insert(a.trim().to_owned(), b.trim().to_owned());
        }
        Ok(LabelMap(map))
    }

    /// The mapped label.
    pub fn apply<'a>(&'a self, label: &'a str) -> &'a str {
        self.0.get(label).map_or(label, String::as_str)
    }
}
