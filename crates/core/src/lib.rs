//! # postilla-core
//!
//! Postilla's model layer: model directories (building the default base model offline,
//! manifests, Hugging Face-format loading), tokenization with exact code-point offsets,
//! sentence embeddings and language identification, on tch and rust-bert.
//!
//! The stand-off data model lives in [`postilla_annotator`], which this crate re-exports as
//! [`annotator`].

pub mod annotate;
pub mod embed;
pub mod error;
pub mod lang;
pub mod model;
pub mod ner;
pub mod runtime;
pub mod text;
pub mod topics;

pub use error::ModelError;
pub use postilla_annotator as annotator;

/// The tool name and version written into provenance, e.g. `postilla 0.1.0`.
pub const TOOL: &str = concat!("postilla ", env!("CARGO_PKG_VERSION"));
