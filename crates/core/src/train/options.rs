//! The settings of a training run ([`TrainOptions`]), as serde data: the CLI fills them, the
//! run records them in its log and checks them on `--resume`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::TrainError;
use crate::model::{DeviceChoice, Engine};

/// Settings of [`crate::train::train_ner`]. [`TrainOptions::new`] gives the default recipe
/// (the one `models/ner-it-de` was trained with by `training/train_ner.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Gold files (`postilla/1` JSONL with `text`) to train on.
    pub train: Vec<PathBuf>,
    /// Gold files for model selection after every epoch.
    pub dev: Vec<PathBuf>,
    /// The base model directory (BERT or XLM-R; an encoder or a token classifier).
    pub base: PathBuf,
    /// The output directory.
    pub output: PathBuf,
    /// Entity types to learn; `None` = the types of the training gold.
    pub labels: Option<Vec<String>>,
    /// Epochs over the training set.
    pub epochs: usize,
    /// Peak learning rate of AdamW.
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Layer-wise learning-rate decay d: encoder layer l of L learns at lr·d^(L−l), the
    /// embeddings at lr·d^(L+1), the head at lr, biases and layer norms without weight decay
    /// ([`crate::train::trainer::parameter_groups`]); 1 = off (one rate, weight decay on all).
    #[serde(default = "no_layer_decay")]
    pub layer_decay: f64,
    /// Share of the steps spent warming up linearly from 0 (then linear decay to 0).
    pub warmup_share: f64,
    /// Gradient clipping: the largest global L2 norm.
    pub clip_norm: f64,
    /// Tokens per batch, padding and special tokens included (length-bucketed batches).
    pub batch_tokens: usize,
    /// At most this many examples per batch.
    pub batch_size: usize,
    /// Tokens per example, special tokens included (capped by the model).
    pub max_length: usize,
    /// Seed of the shuffles, window lengths, head initialisation and dropout.
    pub seed: u64,
    /// CPU threads (0 = libtorch's default).
    pub threads: usize,
    /// Device.
    pub device: DeviceChoice,
    /// Precision of the forward and backward passes.
    pub precision: TrainPrecision,
    /// The forward: Postilla's fused forward for BERT/XLM-R (the default: libtorch's attention
    /// and GELU kernels, about 9 % faster per step than rust-bert's on 2 cores in fp32; the only
    /// one that trains in bf16; rust-bert's where it does not apply) or rust-bert's modules (the
    /// same steps).
    pub engine: Engine,
    /// Keep the word embeddings fixed (the recipe's choice: they are most of the parameters
    /// and the rare words' rows would be overwritten by the few training examples).
    pub freeze_embeddings: bool,
    /// Gold sets that lack some types: an `O` token there may be one of them (partial label).
    pub missing_types: Vec<MissingTypes>,
    /// Document context: the share of examples that are single segments (lines); the rest are
    /// windows of consecutive segments of one document, of a random length from 64 tokens up
    /// to `max_length`. 1.0 = no context windows.
    pub single_share: f64,
    /// Share of the lines of token-level gold (records with `tokens`) rebuilt with news
    /// spacing ("Putin, (AP)") before tokenization ([`crate::train::spacing`]); 0 = none.
    pub news_share: f64,
    /// Training files whose consecutive records form one document for the context windows
    /// (gold imported one sentence per record, such as KIND).
    pub join_records: Vec<PathBuf>,
    /// Override the model's dropout probabilities (hidden, attention, classifier); `None`
    /// keeps config.json's.
    pub dropout: Option<f64>,
    /// Also score the average of the last two epochs' weights and keep it if it wins on dev.
    pub average_last_two: bool,
    /// Continue from the checkpoint in `output`.
    pub resume: bool,
    /// Stop after this many optimiser steps in total (tests and smoke runs; the schedule is
    /// still the full run's). `None` = run every epoch.
    pub max_steps: Option<usize>,
}

impl TrainOptions {
    /// The default recipe for the given files.
    pub fn new(train: Vec<PathBuf>, dev: Vec<PathBuf>, base: PathBuf, output: PathBuf) -> Self {
        TrainOptions {
            train,
            dev,
            base,
            output,
            labels: None,
            epochs: 2,
            lr: 1e-4,
            weight_decay: 0.01,
            layer_decay: 1.0,
            warmup_share: 0.06,
            clip_norm: 1.0,
            batch_tokens: 1024,
            batch_size: 64,
            max_length: 256,
            seed: 13,
            threads: 0,
            device: DeviceChoice::Cpu,
            precision: TrainPrecision::Fp32,
            engine: Engine::default(),
            freeze_embeddings: true,
            missing_types: Vec::new(),
            single_share: 0.3,
            join_records: Vec::new(),
            news_share: 0.0,
            dropout: None,
            average_last_two: true,
            resume: false,
            max_steps: None,
        }
    }

    /// Checks the numbers are usable.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::Options(m.into()));
        if self.train.is_empty() {
            return bad("no training file (--train)");
        }
        if self.dev.is_empty() {
            return bad("no development file (--dev): a model is selected on it after every epoch");
        }
        if self.epochs == 0 {
            return bad("--epochs must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("--lr must be a positive number");
        }
        if !(self.layer_decay > 0.0 && self.layer_decay <= 1.0) {
            return bad("--layer-decay must be in (0, 1] (1: no layer-wise decay)");
        }
        if !(0.0..=1.0).contains(&self.news_share) {
            return bad("--news-share must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.single_share) || !(0.0..1.0).contains(&self.warmup_share) {
            return bad("--single-share must be in [0, 1] and the warm-up share in [0, 1)");
        }
        if self.max_length < 8 || self.batch_tokens < self.max_length || self.batch_size == 0 {
            return bad(
                "--max-length must be at least 8, --batch-tokens at least --max-length, --batch-size at least 1",
            );
        }
        if self.dropout.is_some_and(|p| !(0.0..1.0).contains(&p)) {
            return bad("--dropout must be in [0, 1)");
        }
        Ok(())
    }
}

/// `layer_decay` of a run log written before the option existed: off.
fn no_layer_decay() -> f64 {
    1.0
}

/// Precision of training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainPrecision {
    /// fp32 throughout.
    #[default]
    Fp32,
    /// bf16 autocast with fp32 master weights (the fused forward only; see
    /// [`crate::model::encoder::FusedEncoder::for_training`]).
    Bf16,
}

crate::names::named_values!(TrainPrecision, "training precision", [Fp32 => "fp32", Bf16 => "bf16"]);

/// `SCOPE:TYPE[,TYPE]`: in the documents of `SCOPE` (a language code such as `it`, matched
/// against the record's `lang` or, when it has none, the detected language; or a training
/// file's path) an `O` token may be any of `types` (trained with the partial label
/// {O, B-T, I-T, ...}: the gold set does not annotate these types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingTypes {
    /// A language code or a file path.
    pub scope: String,
    /// The types that gold does not annotate.
    pub types: Vec<String>,
}

impl std::str::FromStr for MissingTypes {
    type Err = String;
    /// ```
    /// use postilla_core::train::MissingTypes;
    /// let m: MissingTypes = "it:MISC".parse().unwrap();
    /// assert_eq!((m.scope.as_str(), m.types), ("it", vec!["MISC".to_string()]));
    /// assert!("it".parse::<MissingTypes>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scope, types) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("--missing-types {s:?}: expected SCOPE:TYPE[,TYPE] (e.g. it:MISC)"))?;
        let types: Vec<String> = types.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
        if scope.is_empty() || types.is_empty() {
            return Err(format!("--missing-types {s:?}: expected SCOPE:TYPE[,TYPE] (e.g. it:MISC)"));
        }
        Ok(MissingTypes { scope: scope.into(), types })
    }
}
