//! A whole training run: prepare, resume or start, epochs with checkpoints, selection on dev,
//! the output directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tch::Device;

use super::batches::{bucketed, Framing, TrainBatch};
use super::checkpoint::{Checkpoint, RunState};
use super::error::TrainError;
use super::evaluate::{dev_types, score, DevScores};
use super::examples::{encode, epoch_examples, Example, LabelScheme};
use super::gold::GoldSet;
use super::optim::LinearSchedule;
use super::options::TrainOptions;
use super::rng::SplitMix64;
use super::trainer::{check_precision, Trainer, TrainerSettings};
use crate::model::arch::Architecture;
use crate::model::manifest::{hash_file, Manifest, MANIFEST_FILE};
use crate::ner::tokens::DocTokenizer;
use crate::ner::NerOptions;

/// What was prepared before the first step.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    /// Training documents.
    pub train_documents: usize,
    /// Their content tokens.
    pub train_tokens: usize,
    /// Their entities.
    pub train_entities: usize,
    /// Entities whose boundaries fall inside a word of the word rule.
    pub misaligned_entities: usize,
    /// The labels (`id2label` order).
    pub labels: Vec<String>,
    /// Optimiser steps of the whole run.
    pub steps: usize,
    /// Steps per epoch.
    pub steps_per_epoch: Vec<usize>,
    /// Share of padding tokens in the batches.
    pub padding_share: f64,
    /// Whether the head is new (not read from the base).
    pub head_initialised: bool,
}

/// Progress after a step.
#[derive(Debug, Clone, Serialize)]
pub struct StepProgress {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Steps done in the run.
    pub step: usize,
    /// Steps of the run.
    pub steps: usize,
    /// Mean loss of the last 50 steps.
    pub loss: f64,
    /// Tokens per second since this process started training.
    pub tokens_per_second: f64,
    /// Estimated seconds to the end of training (evaluations not included).
    pub eta_seconds: f64,
}

/// What a run reports while it works.
#[derive(Debug)]
pub enum TrainEvent<'a> {
    /// Data read and tokenized, batches planned.
    Prepared(&'a Prepared),
    /// Continuing from a checkpoint.
    Resumed {
        /// Epochs already done.
        epochs_done: usize,
    },
    /// A step was taken.
    Step(&'a StepProgress),
    /// A model was scored on dev.
    Evaluated(&'a DevScores),
    /// A checkpoint was written.
    Checkpointed(&'a Path),
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// The model directory written.
    pub output: PathBuf,
    /// The selected model's development scores.
    pub selected: DevScores,
    /// Every development score.
    pub history: Vec<DevScores>,
    /// Steps taken.
    pub steps: usize,
    /// Training minutes (all attempts).
    pub minutes: f64,
}

/// Everything fixed before the first step.
struct Setup {
    train_docs: usize,
    dev: GoldSet,
    dev_types: Vec<Vec<String>>,
    scheme: LabelScheme,
    framing: Framing,
    /// Per epoch: the examples and the batches (indices into them).
    plans: Vec<(Vec<Example>, Vec<Vec<usize>>)>,
    prepared: Prepared,
    fingerprint: String,
    device: Device,
}

/// Trains a token classifier (see the module docs of [`crate::train`]).
pub fn train_ner(options: &TrainOptions, on_event: &mut dyn FnMut(TrainEvent<'_>)) -> Result<TrainSummary, TrainError> {
    options.validate()?;
    check_precision(options.precision, options.engine, options.device.to_tch()?)?;
    if options.threads > 0 {
        tch::set_num_threads(options.threads as i32);
    }
    let checkpoint = Checkpoint::of(&options.output);
    if checkpoint.exists() && !options.resume {
        return Err(TrainError::Options(format!(
            "{} holds a checkpoint of an unfinished run: continue it with --resume, or train into another directory",
            options.output.display()
        )));
    }
    let setup = prepare(options)?;
    on_event(TrainEvent::Prepared(&setup.prepared));
    let settings = TrainerSettings {
        lr: options.lr,
        weight_decay: options.weight_decay,
        layer_decay: options.layer_decay,
        clip_norm: options.clip_norm,
        schedule: LinearSchedule::new(setup.prepared.steps, options.warmup_share),
        freeze_embeddings: options.freeze_embeddings,
        dropout: options.dropout,
        seed: options.seed,
        engine: options.engine,
        precision: options.precision,
    };
    let mut trainer = Trainer::new(&options.base, &setup.prepared.labels, settings, setup.device)?;
    let mut state = start(options, &checkpoint, &setup, &mut trainer, on_event)?;
    let started = Instant::now();
    let minutes_before = state.minutes;
    let mut clock = Clock { started, tokens: 0, remaining: remaining_tokens(&setup, state.epochs_done) };
    while state.epochs_done < options.epochs {
        let stopped = run_epoch(options, &setup, &mut trainer, &mut state, &mut clock, on_event)?;
        if stopped {
            break;
        }
        state.minutes = minutes_before + started.elapsed().as_secs_f64() / 60.0;
        end_epoch(options, &setup, &mut trainer, &mut state, &checkpoint, on_event)?;
    }
    finish(options, &setup, &mut trainer, state, &checkpoint, minutes_before, started, on_event)
}

fn prepare(options: &TrainOptions) -> Result<Setup, TrainError> {
    let device = options.device.to_tch()?;
    let train = GoldSet::read(&options.train)?;
    let files = || options.train.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    if train.docs.is_empty() {
        return Err(TrainError::EmptyTraining { files: files() });
    }
    let types: Vec<String> = options.labels.clone().unwrap_or_else(|| train.types().into_iter().collect());
    if types.is_empty() {
        return Err(TrainError::Options(format!("{}: no entity in the training gold, and no --labels", files())));
    }
    train.check_types(&types)?;
    let dev = GoldSet::read(&options.dev)?;
    let dev_types = dev_types(&dev, &types)?;
    let tokenizer = DocTokenizer::from_dir(&options.base)?;
    let mut scheme = LabelScheme::new(types);
    let encoded = encode(&train, &tokenizer, &mut scheme, options)?;
    if encoded.tokens == 0 {
        return Err(TrainError::EmptyTraining { files: files() });
    }
    let max_content = usable_length(options)? - tokenizer.n_special();
    let plans: Vec<(Vec<Example>, Vec<Vec<usize>>)> = (0..options.epochs)
        .map(|e| {
            let mut rng = SplitMix64::new(options.seed, e as u64 + 1);
            let examples = epoch_examples(&encoded.segments, max_content, options.single_share, &mut rng);
            let batches =
                bucketed(&examples, options.batch_tokens, options.batch_size, tokenizer.n_special(), &mut rng);
            (examples, batches)
        })
        .collect();
    let pad = crate::model::read_config(&options.base)?.get("pad_token_id").and_then(|v| v.as_i64()).unwrap_or(0);
    let prepared = Prepared {
        train_documents: train.docs.len(),
        train_tokens: encoded.tokens,
        train_entities: encoded.entities,
        misaligned_entities: encoded.misaligned_entities,
        labels: scheme.labels(),
        steps: plans.iter().map(|p| p.1.len()).sum(),
        steps_per_epoch: plans.iter().map(|p| p.1.len()).collect(),
        padding_share: padding_share(&plans, tokenizer.n_special()),
        head_initialised: true,
    };
    Ok(Setup {
        train_docs: train.docs.len(),
        dev,
        dev_types,
        scheme,
        framing: Framing { bos: tokenizer.bos, eos: tokenizer.eos, pad },
        plans,
        prepared,
        fingerprint: fingerprint(options)?,
        device,
    })
}

/// `max_length` capped by the positions the base can take.
fn usable_length(options: &TrainOptions) -> Result<usize, TrainError> {
    let config = crate::model::read_config(&options.base)?;
    let positions = config.get("max_position_embeddings").and_then(|v| v.as_u64()).unwrap_or(512) as usize;
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or_default();
    let usable = Architecture::from_model_type(model_type).map_or(positions, |a| a.usable_positions(positions));
    Ok(options.max_length.min(usable))
}

fn padding_share(plans: &[(Vec<Example>, Vec<Vec<usize>>)], specials: usize) -> f64 {
    let (mut padded, mut real) = (0usize, 0usize);
    for (examples, batches) in plans {
        for b in batches {
            let width = b.iter().map(|&i| examples[i].ids.len() + specials).max().unwrap_or(0);
            padded += width * b.len();
            real += b.iter().map(|&i| examples[i].ids.len() + specials).sum::<usize>();
        }
    }
    if padded == 0 {
        0.0
    } else {
        1.0 - real as f64 / padded as f64
    }
}

/// sha256 of the options that shape the run and of every input file.
fn fingerprint(options: &TrainOptions) -> Result<String, TrainError> {
    let mut fixed = options.clone();
    fixed.resume = false;
    fixed.threads = 0;
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&fixed).map_err(|e| TrainError::Options(e.to_string()))?);
    let base_weights = crate::model::weights_file(&options.base)?;
    for path in options.train.iter().chain(&options.dev).chain([&base_weights]) {
        hasher.update(hash_file(path)?.sha256.as_bytes());
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// A fresh state, or the checkpoint's (weights and moments loaded into `trainer`).
fn start(
    options: &TrainOptions,
    checkpoint: &Checkpoint,
    setup: &Setup,
    trainer: &mut Trainer,
    on_event: &mut dyn FnMut(TrainEvent<'_>),
) -> Result<RunState, TrainError> {
    if !(options.resume && checkpoint.exists()) {
        return Ok(RunState {
            fingerprint: setup.fingerprint.clone(),
            epochs_done: 0,
            steps: 0,
            epoch_losses: Vec::new(),
            history: Vec::new(),
            best: None,
            minutes: 0.0,
        });
    }
    let state = checkpoint.read_state(&setup.fingerprint)?;
    let name = epoch_file(state.epochs_done);
    let named = checkpoint.read_tensors(&name)?;
    trainer
        .load_state(&named, true)
        .map_err(|m| TrainError::Checkpoint { path: checkpoint.dir().join(&name), message: m })?;
    trainer.optimizer.steps = state.steps as u64;
    on_event(TrainEvent::Resumed { epochs_done: state.epochs_done });
    Ok(state)
}

fn epoch_file(epoch: usize) -> String {
    format!("epoch-{epoch}.safetensors")
}

/// Tokens still to train on from epoch `from`.
fn remaining_tokens(setup: &Setup, from: usize) -> usize {
    let specials = usize::from(setup.framing.bos.is_some()) + usize::from(setup.framing.eos.is_some());
    setup.plans[from..].iter().flat_map(|(examples, _)| examples.iter().map(|e| e.ids.len() + specials)).sum()
}

/// Throughput bookkeeping for progress events.
struct Clock {
    started: Instant,
    tokens: usize,
    remaining: usize,
}

/// One epoch of steps; returns true when `max_steps` stopped it.
fn run_epoch(
    options: &TrainOptions,
    setup: &Setup,
    trainer: &mut Trainer,
    state: &mut RunState,
    clock: &mut Clock,
    on_event: &mut dyn FnMut(TrainEvent<'_>),
) -> Result<bool, TrainError> {
    let epoch = state.epochs_done;
    tch::manual_seed((options.seed as i64).wrapping_mul(1000).wrapping_add(epoch as i64 + 1));
    let (examples, batches) = &setup.plans[epoch];
    let mut losses = Vec::with_capacity(batches.len());
    for batch in batches {
        if options.max_steps.is_some_and(|m| state.steps >= m) {
            return Ok(true);
        }
        let rows: Vec<&Example> = batch.iter().map(|&i| &examples[i]).collect();
        let tensors = TrainBatch::new(&rows, &setup.scheme, setup.framing, setup.device);
        losses.push(trainer.step(&tensors)?);
        state.steps += 1;
        clock.tokens += tensors.tokens;
        clock.remaining = clock.remaining.saturating_sub(tensors.tokens);
        if state.steps.is_multiple_of(10) || losses.len() == batches.len() {
            let rate = clock.tokens as f64 / clock.started.elapsed().as_secs_f64().max(1e-9);
            let recent = &losses[losses.len().saturating_sub(50)..];
            on_event(TrainEvent::Step(&StepProgress {
                epoch: epoch + 1,
                step: state.steps,
                steps: setup.prepared.steps,
                loss: recent.iter().sum::<f64>() / recent.len() as f64,
                tokens_per_second: rate,
                eta_seconds: clock.remaining as f64 / rate.max(1e-9),
            }));
        }
    }
    state.epoch_losses.push(losses.iter().sum::<f64>() / losses.len().max(1) as f64);
    Ok(false)
}

/// Scores the epoch's weights, keeps the best, checkpoints.
fn end_epoch(
    options: &TrainOptions,
    setup: &Setup,
    trainer: &mut Trainer,
    state: &mut RunState,
    checkpoint: &Checkpoint,
    on_event: &mut dyn FnMut(TrainEvent<'_>),
) -> Result<(), TrainError> {
    let epoch = state.epochs_done + 1;
    let scores = score_trainer(options, setup, trainer, &format!("epoch-{epoch}"), state.steps)?;
    on_event(TrainEvent::Evaluated(&scores));
    let trained = trainer.trained_state();
    record_scores(state, checkpoint, scores, &trained)?;
    let mut named = trained;
    named.extend(trainer.optimizer_state());
    checkpoint.write_tensors(&epoch_file(epoch), &named)?;
    state.epochs_done = epoch;
    checkpoint.write_state(state)?;
    if epoch >= 3 {
        let _ = std::fs::remove_file(checkpoint.dir().join(epoch_file(epoch - 2)));
    }
    on_event(TrainEvent::Checkpointed(checkpoint.dir()));
    Ok(())
}

/// Writes the trainer's weights as a model directory and scores it on dev.
fn score_trainer(
    options: &TrainOptions,
    setup: &Setup,
    trainer: &Trainer,
    stage: &str,
    step: usize,
) -> Result<DevScores, TrainError> {
    let dir = options.output.join(".dev-model");
    write_model_dir(trainer, &options.base, &dir)?;
    let defaults = NerOptions::default();
    let stride = defaults.stride.min(options.max_length / 4);
    // fp32 whatever the inference default: selection compares the model's own accuracy
    let ner = NerOptions {
        max_length: options.max_length,
        stride,
        device: options.device,
        precision: crate::model::Precision::Fp32,
        ..defaults
    };
    let scores = score(&dir, ner, &setup.dev, &setup.dev_types, stage, step);
    let _ = std::fs::remove_dir_all(&dir);
    scores
}

/// config.json, model.safetensors and the base's tokenizer files in `dir`.
fn write_model_dir(trainer: &Trainer, base: &Path, dir: &Path) -> Result<(), TrainError> {
    trainer.save_model(dir)?;
    for name in
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "sentencepiece.bpe.model"]
    {
        let from = base.join(name);
        if from.exists() {
            std::fs::copy(&from, dir.join(name)).map_err(|e| TrainError::io(&from, e))?;
        }
    }
    Ok(())
}

/// Averages the last two epochs when asked, loads the best weights, writes the output.
#[allow(clippy::too_many_arguments)]
fn finish(
    options: &TrainOptions,
    setup: &Setup,
    trainer: &mut Trainer,
    mut state: RunState,
    checkpoint: &Checkpoint,
    minutes_before: f64,
    started: Instant,
    on_event: &mut dyn FnMut(TrainEvent<'_>),
) -> Result<TrainSummary, TrainError> {
    let stopped_early = state.epochs_done < options.epochs;
    if stopped_early {
        // --max-steps: the weights as they are are the result
        let scores = score_trainer(options, setup, trainer, &format!("step-{}", state.steps), state.steps)?;
        on_event(TrainEvent::Evaluated(&scores));
        state.history.push(scores.clone());
        state.best = Some(scores);
    } else {
        if options.average_last_two && state.epochs_done >= 2 {
            average_last_two(options, setup, trainer, &mut state, checkpoint, on_event)?;
        }
        let best = checkpoint.read_tensors("best.safetensors")?;
        trainer
            .load_state(&best, false)
            .map_err(|m| TrainError::Checkpoint { path: checkpoint.dir().into(), message: m })?;
    }
    state.minutes = minutes_before + started.elapsed().as_secs_f64() / 60.0;
    let selected = state.best.clone().ok_or_else(|| TrainError::Options("no epoch was trained".into()))?;
    write_model_dir(trainer, &options.base, &options.output)?;
    write_log(options, setup, &state, &selected)?;
    let name = options.output.file_name().map_or("ner".into(), |n| n.to_string_lossy().into_owned());
    let upstream = format!("postilla train ner from {}", options.base.display());
    Manifest::of_dir(&options.output, &name, &upstream)?.write(&options.output.join(MANIFEST_FILE))?;
    if checkpoint.exists() {
        checkpoint.remove()?;
    }
    Ok(TrainSummary {
        output: options.output.clone(),
        selected,
        history: state.history,
        steps: state.steps,
        minutes: state.minutes,
    })
}

/// Scores the mean of the last two epochs' weights; keeps it as the best if it wins.
fn average_last_two(
    options: &TrainOptions,
    setup: &Setup,
    trainer: &mut Trainer,
    state: &mut RunState,
    checkpoint: &Checkpoint,
    on_event: &mut dyn FnMut(TrainEvent<'_>),
) -> Result<(), TrainError> {
    let last = checkpoint.read_tensors(&epoch_file(state.epochs_done))?;
    let previous = checkpoint.read_tensors(&epoch_file(state.epochs_done - 1))?;
    let averaged: Vec<(String, tch::Tensor)> = trainer
        .trained_names()
        .iter()
        .filter_map(|n| Some((n.clone(), (last.get(n)? + previous.get(n)?) / 2.0)))
        .collect();
    let as_map = averaged.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
    trainer
        .load_state(&as_map, false)
        .map_err(|m| TrainError::Checkpoint { path: checkpoint.dir().into(), message: m })?;
    let scores = score_trainer(options, setup, trainer, "average-last-2", state.steps)?;
    on_event(TrainEvent::Evaluated(&scores));
    record_scores(state, checkpoint, scores, &averaged)
}

/// Adds a candidate's dev scores to the history; when they beat the best so far, its weights
/// become `best.safetensors`.
fn record_scores(
    state: &mut RunState,
    checkpoint: &Checkpoint,
    scores: DevScores,
    weights: &[(String, tch::Tensor)],
) -> Result<(), TrainError> {
    if state.best.as_ref().is_none_or(|b| scores.selection > b.selection) {
        checkpoint.write_tensors("best.safetensors", weights)?;
        state.best = Some(scores.clone());
    }
    state.history.push(scores);
    Ok(())
}

/// `training-log.json`: options, data, every score, the selection.
fn write_log(options: &TrainOptions, setup: &Setup, state: &RunState, selected: &DevScores) -> Result<(), TrainError> {
    let log = serde_json::json!({
        "tool": crate::TOOL,
        "options": options,
        "train_documents": setup.train_docs,
        "prepared": setup.prepared,
        "epoch_losses": state.epoch_losses,
        "dev": state.history,
        "selected": selected,
        "steps": state.steps,
        "minutes": (state.minutes * 10.0).round() / 10.0,
    });
    let path = options.output.join("training-log.json");
    let text = serde_json::to_string_pretty(&log).map_err(|e| TrainError::Options(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| TrainError::io(&path, e))
}
