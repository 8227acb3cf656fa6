//! Typed errors of the model layer. A leaf module: it names no other Postilla module, so every
//! module can return a [`ModelError`] without an import cycle (topic errors wrap it in
//! [`crate::topics::TopicError`]).

use std::path::PathBuf;

/// Everything that can go wrong while building, verifying or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file required by a model directory is absent.
    #[error("model directory {dir}: missing {file}{hint}")]
    MissingFile {
        /// The model directory.
        dir: PathBuf,
        /// The missing file name.
        file: String,
        /// Extra advice (e.g. "run `just setup`").
        hint: String,
    },
    /// Pickle weights are refused: loading them can execute code.
    #[error("{path}: pickle weights (.bin) are refused because loading them can execute code; convert them to safetensors, e.g. in Python: `AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`")]
    PickleRefused {
        /// The refused file.
        path: PathBuf,
    },
    /// A file's sha256 differs from its manifest or pin.
    #[error("{path}: sha256 {actual} does not match the expected {expected} (file corrupt, truncated or replaced)")]
    ChecksumMismatch {
        /// The file concerned.
        path: PathBuf,
        /// Expected digest (hex).
        expected: String,
        /// Actual digest (hex).
        actual: String,
    },
    /// A file is not in the expected format.
    #[error("format error: {0}")]
    Format(String),
    /// A JSON file could not be parsed.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The configuration is valid JSON but not usable.
    #[error("{path}: {message}")]
    Config {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer could not be loaded or failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A text's own tokens ([`crate::ner::NerInput::words`]) cannot be its words.
    #[error("text {index}: invalid tokens: {message}")]
    InvalidWords {
        /// The text's position in the call.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// rust-bert reported an error.
    #[error("rust-bert: {0}")]
    RustBert(#[from] rust_bert::RustBertError),
    /// The precision cannot run here: this processor or device lacks it, or the model's
    /// architecture runs outside the fused forward (which is where reduced precisions live).
    #[error("precision {precision} is not available: {reason}")]
    UnsupportedPrecision {
        /// The precision asked for (`fp32`, `bf16`, `int8`).
        precision: String,
        /// Why not.
        reason: String,
    },
    /// `--device cuda` was asked for but libtorch sees no CUDA device.
    #[error("--device cuda was asked for but no CUDA device is available (this libtorch build is CPU-only unless installed otherwise)")]
    NoCuda,
    /// A model's `id2label` does not list every class.
    #[error("{path}: id2label has no entry for class {class}")]
    MissingLabel {
        /// The config.json concerned.
        path: PathBuf,
        /// The class id without a label.
        class: i64,
    },
    /// An external command (pip) failed.
    #[error("{command}: {message}")]
    Command {
        /// The command line.
        command: String,
        /// Its error output or exit status.
        message: String,
    },
}

impl ModelError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io { path: path.into(), source }
    }
}
