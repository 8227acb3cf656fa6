//! What can go wrong in a training run, as values ([`TrainError`]).

use std::path::PathBuf;

use crate::error::ModelError;

/// A training run's errors. Input errors name the file and, where there is one, the line.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A gold file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A gold record is unusable for training.
    #[error("{path}:{line}: {message}")]
    Gold {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No training example: the training files hold no document with text.
    #[error("empty training set: {files} hold no document with text")]
    EmptyTraining {
        /// The files, comma-separated.
        files: String,
    },
    /// A development file has no entity of the trained types, so it cannot select a model.
    #[error("{path}: the development set has no entity of the trained types ({types}); it cannot select a model")]
    DevWithoutEntities {
        /// The file.
        path: PathBuf,
        /// The trained types.
        types: String,
    },
    /// An option is invalid (a bad `--missing-types` spec, zero epochs, ...).
    #[error("{0}")]
    Options(String),
    /// The base model cannot be trained by Postilla.
    #[error("{path}: {message}")]
    Base {
        /// The base directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A checkpoint is missing, corrupt or belongs to another run.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Loading or running a model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// The loss is not a number: the learning rate is too high or the data is degenerate.
    #[error("the loss became {loss} at step {step} (learning rate too high?)")]
    Diverged {
        /// The step.
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// Scoring on the development set failed.
    #[error("development scoring: {0}")]
    Eval(#[from] postilla_annotator::eval::EvalError),
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io { path: path.into(), source }
    }
}
