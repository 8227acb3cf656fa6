//! The `postilla/1` stand-off record: one JSON object per document and line.
//!
//! Offsets are half-open and count Unicode code points (what Python's `text[start:end]`,
//! spaCy, doccano and Hugging Face pipelines use). Every entity repeats its surface in `text`
//! so that a reader can check alignment, and `text_sha256` ties the record to the exact text.
//! A document that could not be processed is a record too, with `error` set and no
//! annotations. The JSON Schema is `schema/postilla-1.schema.json` in the repository.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::text::tokens_sha256;
use crate::text::{slice_chars, text_sha256};

/// The schema tag of every record.
pub const SCHEMA: &str = "postilla/1";

/// One document's annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationRecord {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Document id (unique within a file).
    pub id: String,
    /// Where the text came from (a path, `stdin`, `file.jsonl:LINE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// sha256 of the document's UTF-8 text; absent only on error records whose text could not
    /// be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_sha256: Option<String>,
    /// sha256 of the document's own tokens ([`tokens_sha256`]) when the input was pre-tokenised:
    /// its entities were read on those tokens, so `annotate --resume` checks them too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_sha256: Option<String>,
    /// The document text itself, when the record carries it (gold files rebuilt from tokens,
    /// `annotate --with-text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Token boundaries (code points) when the text was rebuilt from a token-level format,
    /// so that an export back to that format is lossless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<[usize; 2]>>,
    /// Detected language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<LanguageTag>,
    /// Named entities, sorted by start then end.
    #[serde(default)]
    pub entities: Vec<EntitySpan>,
    /// Topics, sorted by descending score.
    #[serde(default)]
    pub topics: Vec<TopicScore>,
    /// Tool, models and parameters that produced the record (absent in gold files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<serde_json::Value>,
    /// Set when the document could not be processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordError>,
}

/// A detected language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageTag {
    /// ISO 639-1 code.
    pub code: String,
    /// Detector confidence in [0, 1].
    pub score: f64,
    /// Set when topics were scored in another language than `code` (the taxonomy's fallback,
    /// because it has no wording in `code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_language: Option<String>,
}

/// A named entity: code points `[start, end)` of the document, with label and surface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitySpan {
    /// First code point.
    pub start: usize,
    /// One past the last code point.
    pub end: usize,
    /// Entity type, e.g. `PER`.
    pub label: String,
    /// Model confidence (mean of the word probabilities); absent in gold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The surface `text[start..end]`.
    pub text: String,
}

impl EntitySpan {
    /// Builds a span from code-point offsets into `text`; `None` when out of range.
    pub fn from_text(text: &str, start: usize, end: usize, label: &str, score: Option<f64>) -> Option<Self> {
        let surface = slice_chars(text, start, end)?;
        Some(EntitySpan { start, end, label: label.to_owned(), score, text: surface.to_owned() })
    }
}

/// A topic with its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicScore {
    /// Topic id from the taxonomy, e.g. `politics`.
    pub label: String,
    /// Score in [0, 1]; absent in gold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// Why a document has no annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// Machine-readable kind, e.g. `invalid_utf8`, `empty`, `unreadable`, `model`.
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
}

impl AnnotationRecord {
    /// An empty record for a document text (hash computed, no annotations).
    pub fn for_text(id: &str, text: &str) -> Self {
        AnnotationRecord {
            schema: SCHEMA.into(),
            id: id.into(),
            source: None,
            text_sha256: Some(text_sha256(text)),
            tokens_sha256: None,
            text: None,
            tokens: None,
            lang: None,
            entities: Vec::new(),
            topics: Vec::new(),
            provenance: None,
            error: None,
        }
    }

    /// An error record: the document `id` could not be processed.
    pub fn for_error(id: &str, kind: &str, message: impl Into<String>) -> Self {
        AnnotationRecord {
            error: Some(RecordError { kind: kind.into(), message: message.into() }),
            text_sha256: None,
            ..AnnotationRecord::for_text(id, "")
        }
    }

    /// Checks the record against `text`: the hash matches and every entity's surface equals
    /// the code points it points at. Returns the first problem found.
    pub fn check_against(&self, text: &str) -> Result<(), AlignmentError> {
        if self.text_sha256.as_deref() != Some(text_sha256(text).as_str()) {
            return Err(AlignmentError::TextChanged { id: self.id.clone() });
        }
        for e in &self.entities {
            match slice_chars(text, e.start, e.end) {
                Some(s) if s == e.text => {}
                other => {
                    return Err(AlignmentError::Surface {
                        id: self.id.clone(),
                        start: e.start,
                        end: e.end,
                        says: e.text.clone(),
                        found: other.map(str::to_owned),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Why a record does not fit a text ([`AnnotationRecord::check_against`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlignmentError {
    /// The record's `text_sha256` is not the text's.
    #[error("{id}: text_sha256 does not match the text")]
    TextChanged {
        /// The document.
        id: String,
    },
    /// An entity's surface is not the text at its offsets.
    #[error("{id}: entity [{start}, {end}) says {says:?} but the text has {found:?}")]
    Surface {
        /// The document.
        id: String,
        /// Start (code points).
        start: usize,
        /// End (code points).
        end: usize,
        /// The entity's `text`.
        says: String,
        /// The text at those offsets (`None`: out of range).
        found: Option<String>,
    },
}
