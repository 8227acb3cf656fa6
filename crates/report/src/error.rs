//! Why a report cannot be built.

use postilla_annotator::eval::EvalError;

/// Why a report cannot be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// One or two systems are shown.
    #[error("a report shows one run or two (got {0})")]
    SystemCount(usize),
    /// A run without records.
    #[error("{0} holds no records")]
    Empty(String),
    /// Two runs over different documents.
    #[error("{0} and {1} are not over the same document ids")]
    DifferentDocuments(String, String),
    /// The gold and a run do not match (same checks as `postilla eval`).
    #[error("evaluating {system}: {source}")]
    Eval {
        /// The system.
        system: String,
        /// The evaluation's error.
        #[source]
        source: EvalError,
    },
    /// The data could not be serialized into the page.
    #[error("serializing the report data: {0}")]
    Json(#[from] serde_json::Error),
}
