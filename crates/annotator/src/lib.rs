//! # postilla-annotator
//!
//! The light layer of Postilla: the `postilla/1` stand-off record ([`record`]), JSONL reading
//! and writing ([`jsonl`]). It has no libtorch dependency, so annotations can be read,
//! converted and evaluated anywhere.
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

pub mod eval;
pub mod formats;
pub mod input;
pub mod jsonl;
pub mod record;
pub mod resume;
pub mod text;

pub use record::{AnnotationRecord, EntitySpan, LanguageTag, RecordError, TopicScore};
