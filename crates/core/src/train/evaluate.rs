//! Model selection: after every epoch the model is written as a model directory, loaded by
//! [`NerPipeline`] exactly as `postilla annotate --ner` loads it, run over each development
//! file, and scored by [`postilla_annotator::eval::evaluate`] (what `postilla eval` computes):
//! strict entity-level micro-F1 per file, on the trained types that the file's gold annotates.
//! Each record is read alone, as `postilla annotate --context 0` reads it: selection compares
//! the model's epochs, and the neighbours' context (annotate's default) would multiply the time
//! of scoring sentence-level dev files by about five.

use std::collections::BTreeMap;

use postilla_annotator::eval::entities::Schema;
use postilla_annotator::eval::{evaluate, EvalOptions};
use postilla_annotator::record::{AnnotationRecord, EntitySpan};
use serde::{Deserialize, Serialize};

use super::error::TrainError;
use super::gold::GoldSet;
use crate::ner::{NerInput, NerOptions, NerPipeline};

/// Development scores of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevScores {
    /// Which weights: `epoch-N` or `average-last-2`.
    pub stage: String,
    /// Optimiser steps taken.
    pub step: usize,
    /// Strict micro-F1 per development file (path as given).
    pub f1: BTreeMap<String, f64>,
    /// The mean over the files: what selects the model.
    pub selection: f64,
}

/// The types each development file is scored on: the trained types its gold annotates; a
/// file without any is an error.
pub fn dev_types(dev: &GoldSet, trained: &[String]) -> Result<Vec<Vec<String>>, TrainError> {
    (0..dev.files.len())
        .map(|f| {
            let present: std::collections::BTreeSet<&str> =
                dev.docs_of(f).flat_map(|d| d.record.entities.iter().map(|e| e.label.as_str())).collect();
            let types: Vec<String> = trained.iter().filter(|t| present.contains(t.as_str())).cloned().collect();
            if types.is_empty() {
                return Err(TrainError::DevWithoutEntities { path: dev.files[f].clone(), types: trained.join(", ") });
            }
            Ok(types)
        })
        .collect()
}

/// Scores the model directory `model_dir` on every development file.
pub fn score(
    model_dir: &std::path::Path,
    ner_options: NerOptions,
    dev: &GoldSet,
    types: &[Vec<String>],
    stage: &str,
    step: usize,
) -> Result<DevScores, TrainError> {
    let ner = NerPipeline::load(model_dir, ner_options)?;
    let mut f1 = BTreeMap::new();
    for (f, file_types) in types.iter().enumerate() {
        let gold: Vec<AnnotationRecord> = dev.docs_of(f).map(|d| d.record.clone()).collect();
        let mut pred = Vec::with_capacity(gold.len());
        for chunk in gold.chunks(256) {
            // the records' own tokens are the words, as `postilla annotate` reads gold files
            let inputs: Vec<NerInput> = chunk
                .iter()
                .map(|r| NerInput {
                    text: r.text.as_deref().unwrap_or_default(),
                    words: r.tokens.as_deref(),
                    before: "",
                    after: "",
                })
                .collect();
            for (record, entities) in chunk.iter().zip(ner.predict_inputs(&inputs)?) {
                let text = record.text.as_deref().unwrap_or_default();
                let entities = entities
                    .iter()
                    .filter_map(|e| EntitySpan::from_text(text, e.start, e.end, &e.label, Some(e.score)))
                    .collect();
                pred.push(AnnotationRecord { entities, ..AnnotationRecord::for_text(&record.id, text) });
            }
        }
        let options = EvalOptions { types: Some(file_types.clone()), ..EvalOptions::default() };
        let report = evaluate(&gold, &pred, &options)?;
        let strict = report.entities.as_ref().and_then(|e| e.get(&Schema::Strict)).map_or(0.0, |s| s.micro.f1);
        f1.insert(dev.files[f].display().to_string(), round4(strict));
    }
    let selection = round4(f1.values().sum::<f64>() / f1.len().max(1) as f64);
    Ok(DevScores { stage: stage.into(), step, f1, selection })
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}
