//! `postilla train ner --train GOLD... --dev DEV... -o OUT`: argument parsing and a progress
//! bar over [`postilla_core::train::train_ner`], which does the work.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use postilla_core::model::{DeviceChoice, Engine};
use postilla_core::train::{train_ner, MissingTypes, TrainEvent, TrainOptions, TrainPrecision};

use crate::Outcome;

/// Arguments of `postilla train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(subcommand)]
    what: TrainCommand,
}

#[derive(Subcommand, Debug)]
enum TrainCommand {
    /// Fine-tune a token classifier (NER) on postilla/1 gold files (what `postilla import`
    /// writes), with model selection on development files after every epoch. The output is a
    /// Hugging Face token-classification directory with a manifest, for `postilla annotate
    /// --ner OUT` (and transformers).
    Ner(NerArgs),
}

/// Arguments of `postilla train ner`.
#[derive(Args, Debug)]
struct NerArgs {
    /// Training gold files (postilla/1 JSONL with text).
    #[arg(long, required = true, num_args = 1..)]
    train: Vec<PathBuf>,
    /// Development gold files: strict micro-F1 (as `postilla eval`) after every epoch selects
    /// the model (the mean over the files).
    #[arg(long, required = true, num_args = 1..)]
    dev: Vec<PathBuf>,
    /// Base model directory: a BERT or XLM-R encoder or token classifier (its head is kept when
    /// it has exactly the trained labels).
    #[arg(long, default_value = "models/e5-small")]
    base: PathBuf,
    /// Output directory.
    #[arg(short, long)]
    output: PathBuf,
    /// Entity types to learn, in order (default: the types of the training gold).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    /// Epochs.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Peak learning rate (AdamW, linear warm-up over --warmup of the steps, then linear decay).
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Share of the steps spent warming up.
    #[arg(long, default_value_t = 0.06)]
    warmup: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Layer-wise learning-rate decay d: encoder layer l of L learns at lr·d^(L−l), the
    /// embeddings at lr·d^(L+1), the head at lr; biases and layer norms without weight decay.
    /// 1 (the default) is off; `just train-ner`'s recipe uses 0.8 with --lr 3e-4.
    #[arg(long, default_value_t = 1.0)]
    layer_decay: f64,
    /// Gradient clipping: largest global L2 norm.
    #[arg(long, default_value_t = 1.0)]
    clip_norm: f64,
    /// Tokens per batch, padding included (batches are bucketed by length).
    #[arg(long, default_value_t = 1024)]
    batch_tokens: usize,
    /// Examples per batch at most.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Tokens per example, special tokens included.
    #[arg(long, default_value_t = 256)]
    max_length: usize,
    /// Seed (shuffles, context windows, head initialisation, dropout).
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// CPU threads (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Device.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Precision: fp32, or bf16 (autocast as PyTorch's: fp32 master weights, the linear layers
    /// and attention in bfloat16; fused forward only; on CPUs with avx512_bf16 or amx_bf16).
    #[arg(long, default_value = "fp32")]
    precision: TrainPrecision,
    /// Forward pass: fused (the default: Postilla's fused BERT/XLM-R forward, with libtorch's
    /// attention and GELU kernels; about 9 % faster per step than rust-bert's on 2 cores; the
    /// only one that trains in bf16) or rust-bert (its modules; the same steps).
    #[arg(long)]
    engine: Option<Engine>,
    /// Train the word embeddings too (default: frozen, as the recipe of models/ner-it-de).
    #[arg(long)]
    train_embeddings: bool,
    /// `SCOPE:TYPE[,TYPE]`: in documents of language SCOPE (the record's lang, else detected) or
    /// of the training file SCOPE, an O token may be TYPE (partial label: that gold set does
    /// not annotate TYPE). E.g. it:MISC. Repeatable.
    #[arg(long)]
    missing_types: Vec<MissingTypes>,
    /// Share of examples that are single lines; the others are windows of consecutive lines
    /// of one document (document context). 1 = no context windows.
    #[arg(long, default_value_t = 0.3)]
    single_share: f64,
    /// The consecutive records of this training file form one document for the context
    /// windows (gold imported one sentence per record, e.g. KIND). Repeatable.
    #[arg(long)]
    join_records: Vec<PathBuf>,
    /// Share of the lines of token-level gold (imported from CoNLL-style files) rebuilt with news
    /// spacing ("Putin, (AP)" instead of "Putin , ( AP )") before tokenization; the Python
    /// recipe uses 0.5.
    #[arg(long, default_value_t = 0.0)]
    news_share: f64,
    /// Override the model's dropout probabilities.
    #[arg(long)]
    dropout: Option<f64>,
    /// Do not score the average of the last two epochs.
    #[arg(long)]
    no_average: bool,
    /// Continue the unfinished run in OUTPUT from its last epoch checkpoint (same command).
    #[arg(long)]
    resume: bool,
    /// Stop after N steps in all (smoke runs; the schedule stays the full run's).
    #[arg(long)]
    max_steps: Option<usize>,
}

impl NerArgs {
    fn options(self) -> TrainOptions {
        let mut o = TrainOptions::new(self.train, self.dev, self.base, self.output);
        o.labels = self.labels;
        o.epochs = self.epochs;
        o.lr = self.lr;
        o.warmup_share = self.warmup;
        o.weight_decay = self.weight_decay;
        o.layer_decay = self.layer_decay;
        o.clip_norm = self.clip_norm;
        o.batch_tokens = self.batch_tokens;
        o.batch_size = self.batch_size;
        o.max_length = self.max_length;
        o.seed = self.seed;
        o.threads = self.threads;
        o.device = self.device;
        o.precision = self.precision;
        o.engine = self.engine.unwrap_or_default();
        o.freeze_embeddings = !self.train_embeddings;
        o.missing_types = self.missing_types;
        o.single_share = self.single_share;
        o.join_records = self.join_records;
        o.dropout = self.dropout;
        o.news_share = self.news_share;
        o.average_last_two = !self.no_average;
        o.resume = self.resume;
        o.max_steps = self.max_steps;
        o
    }
}

/// Runs `postilla train`.
pub fn run(args: TrainArgs) -> anyhow::Result<Outcome> {
    let TrainCommand::Ner(args) = args.what;
    let options = args.options();
    let mut bar = ProgressBar::hidden();
    let terminal = std::io::stderr().is_terminal();
    let summary = train_ner(&options, &mut |event| match event {
        TrainEvent::Prepared(p) => {
            eprintln!("postilla: {}", serde_json::to_string(p).unwrap_or_default());
            if terminal {
                bar = ProgressBar::new(p.steps as u64);
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
        }
        TrainEvent::Resumed { epochs_done } => eprintln!("postilla: resume: {epochs_done} epochs already done"),
        TrainEvent::Step(s) => {
            let line = format!(
                "epoch {} loss {:.4} {:.0} tokens/s ETA {:.1} min",
                s.epoch,
                s.loss,
                s.tokens_per_second,
                s.eta_seconds / 60.0
            );
            if terminal {
                bar.set_position(s.step as u64);
                bar.set_message(line);
            } else if s.step.is_multiple_of(50) || s.step == s.steps {
                eprintln!("postilla: step {}/{} {line}", s.step, s.steps);
            }
        }
        TrainEvent::Evaluated(scores) => {
            bar.suspend(|| eprintln!("postilla: dev {}", serde_json::to_string(scores).unwrap_or_default()))
        }
        TrainEvent::Checkpointed(dir) => bar.suspend(|| eprintln!("postilla: checkpoint {}", dir.display())),
    })
    .with_context(|| format!("training into {}", options.output.display()))?;
    bar.finish_and_clear();
    eprintln!(
        "postilla: selected {} (dev {:.4}) after {} steps, {:.1} min -> {}",
        summary.selected.stage,
        summary.selected.selection,
        summary.steps,
        summary.minutes,
        summary.output.display()
    );
    Ok(Outcome::Success)
}
