//! # postilla-annotator
//!
//! The light layer of Postilla: the `postilla/1` stand-off record and everything that reads,
//! converts, checks or scores records. It has no libtorch dependency, so annotations can be
//! read, converted and evaluated anywhere.
//!
//! ## Map
//!
//! | module | what it does |
//! |---|---|
//! | [`record`] | the `postilla/1` record (entities, topics, language, provenance, error) |
//! | [`text`] | code-point offsets and text hashes, the two facts that tie a record to its text |
//! | [`hash`] | the workspace's sha256 helper (a leaf) |
//! | [`input`] | reading documents: directories of `.txt`, `.txt`, JSONL, stdin; document errors |
//! | [`context`] | the documents around a document in its input, read by the NER as context |
//! | [`jsonl`] | JSONL reading and writing, per-batch flush and fsync |
//! | [`resume`] | what an interrupted run wrote (torn lines, provenance check), `--shard K/N` |
//! | [`formats`] | gold formats in and out: CoNLL, IOB1, GermEval, KIND, brat, doccano, W3C, SIB-200, ... |
//! | [`eval`] | scores against gold: alignment, entity schemas, topics, bootstrap, paired test, errors |
//!
//! Where each behaviour lives across the workspace and the invariants it keeps:
//! `docs/architecture.md`.
//!
//! ```
//! use postilla_annotator::record::{AnnotationRecord, EntitySpan};
//! let text = "Wang Yi incontra Blinken a Roma.";
//! let mut rec = AnnotationRecord::for_text("doc-1", text);
//! rec.entities.push(EntitySpan::from_text(text, 0, 7, "PER", Some(0.99)).unwrap());
//! assert_eq!(rec.entities[0].text, "Wang Yi");
//! let line = serde_json::to_string(&rec).unwrap();
//! assert!(line.starts_with(r#"{"schema":"postilla/1","id":"doc-1""#));
//! ```

#![warn(missing_docs)]

pub mod context;
pub mod eval;
pub mod formats;
pub mod hash;
pub mod input;
pub mod jsonl;
pub mod record;
pub mod resume;
pub mod text;

pub use record::{AnnotationRecord, EntitySpan, LanguageTag, RecordError, TopicScore};
