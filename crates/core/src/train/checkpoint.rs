//! Epoch checkpoints in `OUT/checkpoint/`: after every epoch, the trained parameters and the
//! optimiser's moments (`state.safetensors`), the best weights so far (`best.safetensors`),
//! the previous epoch's weights for averaging (`previous.safetensors`) and the run's
//! progress (`state.json`, written last: a checkpoint counts once its state.json is there).
//! Each file is written beside its place and renamed over it, so a kill leaves the last
//! complete checkpoint. The schedule is a function of the step, and every epoch's shuffles
//! and dropout are seeded by (seed, epoch), so `--resume` ends with the weights an
//! uninterrupted run ends with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::error::TrainError;
use super::evaluate::DevScores;

/// A run's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// What the run was started with (hash of the options and input files): a resume with
    /// other settings or data is refused.
    pub fingerprint: String,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Mean training loss of each completed epoch.
    pub epoch_losses: Vec<f64>,
    /// Development scores after every epoch (and of the averaged weights).
    pub history: Vec<DevScores>,
    /// The best scores so far.
    pub best: Option<DevScores>,
    /// Training minutes spent so far (over all attempts).
    pub minutes: f64,
}

/// The checkpoint directory of an output directory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
}

fn corrupt(path: &Path, message: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.into(), message: message.to_string() }
}

impl Checkpoint {
    /// `output/checkpoint`.
    pub fn of(output: &Path) -> Self {
        Checkpoint { dir: output.join("checkpoint") }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a complete checkpoint exists.
    pub fn exists(&self) -> bool {
        self.dir.join("state.json").exists()
    }

    /// Writes `named` tensors to `name` atomically.
    pub fn write_tensors(&self, name: &str, named: &[(String, Tensor)]) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| TrainError::io(&self.dir, e))?;
        let path = self.dir.join(name);
        let partial = self.dir.join(format!("{name}.partial"));
        Tensor::write_safetensors(named, &partial)?;
        std::fs::rename(&partial, &path).map_err(|e| TrainError::io(&path, e))
    }

    /// Reads the tensors of `name`.
    pub fn read_tensors(&self, name: &str) -> Result<BTreeMap<String, Tensor>, TrainError> {
        let path = self.dir.join(name);
        Ok(Tensor::read_safetensors(&path).map_err(|e| corrupt(&path, e))?.into_iter().collect())
    }

    /// Whether `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    /// Commits the checkpoint: writes state.json atomically.
    pub fn write_state(&self, state: &RunState) -> Result<(), TrainError> {
        let path = self.dir.join("state.json");
        let partial = self.dir.join("state.json.partial");
        let json = serde_json::to_string_pretty(state).map_err(|e| corrupt(&path, e))?;
        std::fs::write(&partial, json).map_err(|e| TrainError::io(&partial, e))?;
        if let Ok(f) = std::fs::File::open(&partial) {
            let _ = f.sync_all();
        }
        std::fs::rename(&partial, &path).map_err(|e| TrainError::io(&path, e))
    }

    /// Reads state.json and checks that it belongs to a run with `fingerprint`.
    pub fn read_state(&self, fingerprint: &str) -> Result<RunState, TrainError> {
        let path = self.dir.join("state.json");
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        let state: RunState = serde_json::from_str(&text).map_err(|e| corrupt(&path, e))?;
        if state.fingerprint != fingerprint {
            return Err(corrupt(
                &path,
                "it was written by a run with other options or other input files; resume with the same command, or train into another directory",
            ));
        }
        Ok(state)
    }

    /// Removes the checkpoint (after the run wrote its model).
    pub fn remove(&self) -> Result<(), TrainError> {
        std::fs::remove_dir_all(&self.dir).map_err(|e| TrainError::io(&self.dir, e))
    }
}
