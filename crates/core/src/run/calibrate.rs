//! `--topic-calibration auto`: calibrate the embedding method on the run's own input before
//! annotating it.
//!
//! The sample is drawn per language by a hash of the document ids
//! ([`crate::topics::sample`]), from every input whatever the shard, so that all shards of a
//! `--shard K/N` run calibrate identically. The calibration is written to
//! `OUT.topic-calibration.json` ([`calibration_path`]); a resumed run reuses that file instead
//! of drawing again.

use std::path::{Path, PathBuf};

use postilla_annotator::input::{flag_duplicates, read_input};

use super::output::sibling;
use super::{RunError, RunEvent};
use crate::annotate::Annotator;
use crate::topics::{CalibrationSample, TopicCalibration};

/// What auto calibration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalibrationOutcome {
    /// A resumed run reused the calibration its first part wrote.
    Reused {
        /// The calibration file.
        path: PathBuf,
    },
    /// A calibration was measured on the sample and written.
    Calibrated {
        /// The calibration file.
        path: PathBuf,
        /// Sampled documents per language.
        sample_sizes: Vec<(String, usize)>,
        /// Languages of the input with too few documents, left uncalibrated.
        uncalibrated: Vec<String>,
    },
    /// No language had enough documents: topics are uncalibrated.
    TooFewDocuments {
        /// Sampled documents per language.
        sample_sizes: Vec<(String, usize)>,
    },
}

/// Where `auto` writes the calibration of a run writing `output`.
pub fn calibration_path(output: &Path) -> PathBuf {
    sibling(output, ".topic-calibration.json")
}

/// Calibrates `annotator` on a sample of `inputs` of `per_language` documents per language
/// (or reuses the calibration file under `resume`), reporting the outcome to `on_event`.
pub(super) fn auto_calibrate(
    annotator: &mut Annotator,
    inputs: &[String],
    output: &Path,
    resume: bool,
    per_language: usize,
    on_event: &mut dyn FnMut(RunEvent<'_>),
) -> Result<(), RunError> {
    let path = calibration_path(output);
    let origin = path.display().to_string();
    if resume && path.exists() {
        let calibration = TopicCalibration::read(&path).map_err(crate::topics::TopicError::from)?;
        annotator.apply_topic_calibration(&calibration, &origin, Some(per_language))?;
        on_event(RunEvent::Calibration(CalibrationOutcome::Reused { path }));
        return Ok(());
    }
    if inputs.iter().any(|i| i == "-") {
        return Err(RunError::CalibrationOnStdin);
    }
    let sample = draw_sample(annotator, inputs, per_language)?;
    let sample_sizes: Vec<(String, usize)> = sample.texts().iter().map(|(l, t)| (l.clone(), t.len())).collect();
    let outcome = match annotator.calibrate_topics(&sample, &origin)? {
        Some(calibration) => {
            calibration.write(&path).map_err(crate::topics::TopicError::from)?;
            let uncalibrated =
                sample.offered().keys().filter(|l| !calibration.texts.contains_key(*l)).cloned().collect();
            CalibrationOutcome::Calibrated { path, sample_sizes, uncalibrated }
        }
        None => CalibrationOutcome::TooFewDocuments { sample_sizes },
    };
    on_event(RunEvent::Calibration(outcome));
    Ok(())
}

/// The calibration sample of every input document, by the language its topics use.
fn draw_sample(annotator: &Annotator, inputs: &[String], per_language: usize) -> Result<CalibrationSample, RunError> {
    let mut sample = CalibrationSample::new(per_language);
    let mut items = Vec::new();
    for arg in inputs {
        items.push(read_input(arg).map_err(|source| RunError::Input { arg: arg.clone(), source })?);
    }
    for doc in flag_duplicates(items.into_iter().flatten()).flatten() {
        if let Some(lang) = annotator.topic_language(&doc.text) {
            sample.offer(lang, &doc.id, &doc.text);
        }
    }
    Ok(sample)
}

/// The minimum documents per language auto calibration needs.
pub const MIN_DOCUMENTS: usize = TopicCalibration::MIN_TEXTS;
