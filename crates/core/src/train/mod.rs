//! Fine-tuning a token classifier on gold annotations, on tch's autograd over the rust-bert
//! networks inference runs: what `postilla train ner` does, callable from research code.
//!
//! A run ([`train_ner`]), stage by stage, one module each:
//! 1. [`gold`]: read and check the `postilla/1` gold files (text and entity spans);
//! 2. [`examples`]: tokenize each document once with the model's tokenizer and Postilla's word
//!    rule (the words `postilla annotate` labels; [`spacing`] rebuilds a share of token-level
//!    gold with news spacing first), IOB2 targets on each word's first token,
//!    partial labels where a gold set lacks a type, segments at line breaks; per epoch, single
//!    segments and document-context windows;
//! 3. [`batches`]: length-bucketed batches and their tensors;
//! 4. [`trainer`]: the network built from the base directory, one step = forward in training
//!    mode (by default Postilla's fused forward over the network's variables,
//!    [`crate::model::encoder::FusedEncoder::for_training`], in fp32 or bf16 autocast; or
//!    rust-bert's `forward_t`), [`trainer::partial_label_loss`], backward, then [`optim`]
//!    (global-norm clipping, AdamW — one pass per element on the CPU —, the linear
//!    warm-up/decay schedule, all with PyTorch's semantics);
//! 5. [`evaluate`]: after every epoch the model is scored on the development files by the
//!    code of `postilla annotate` and `postilla eval` (strict micro-F1), the best kept;
//! 6. [`checkpoint`]: every epoch is checkpointed (weights, moments, progress); `resume`
//!    continues from the last one and ends with the weights of an uninterrupted run.
//!
//! The output directory is a Hugging Face token-classification directory (config.json with
//! `id2label`, model.safetensors, the base's tokenizer files) with a `manifest.json` and a
//! `training-log.json`: `postilla annotate --ner OUT` and transformers both load it.
//!
//! ```no_run
//! use postilla_core::train::{train_ner, TrainOptions};
//! let mut options = TrainOptions::new(
//!     vec!["train.gold.jsonl".into()],
//!     vec!["dev.gold.jsonl".into()],
//!     "models/e5-small".into(),
//!     "my-ner".into(),
//! );
//! options.epochs = 3;
//! let summary = train_ner(&options, &mut |_event| {})?;
//! println!("dev F1 {:.4} after {}", summary.selected.selection, summary.selected.stage);
//! # Ok::<(), postilla_core::train::TrainError>(())
//! ```

pub mod batches;
pub mod checkpoint;
pub mod error;
pub mod evaluate;
pub mod examples;
pub mod gold;
pub mod optim;
pub mod options;
pub mod rng;
mod run;
pub mod spacing;
pub mod trainer;

pub use error::TrainError;
pub use evaluate::DevScores;
pub use options::{MissingTypes, TrainOptions, TrainPrecision};
pub use run::{train_ner, Prepared, StepProgress, TrainEvent, TrainSummary};
