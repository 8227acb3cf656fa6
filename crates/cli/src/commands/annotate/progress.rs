//! What `postilla annotate` tells the person running it: a progress bar with documents/s and
//! ETA on a terminal, the resume and calibration notes, one line per document error, and the
//! summary.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use postilla_core::run::calibrate::MIN_DOCUMENTS;
use postilla_core::run::{CalibrationOutcome, RunEvent, RunSummary};

/// Turns run events into terminal output.
pub(super) struct Reporter {
    output: PathBuf,
    bar: ProgressBar,
}

impl Reporter {
    /// A reporter for a run writing `output`.
    pub(super) fn new(output: &Path) -> Self {
        Reporter { output: output.into(), bar: ProgressBar::hidden() }
    }

    /// Reports one event.
    pub(super) fn on_event(&mut self, event: RunEvent<'_>) {
        match event {
            RunEvent::Calibration(outcome) => calibration_note(&outcome),
            RunEvent::Resumed { already_done, truncated_bytes } => {
                if truncated_bytes > 0 {
                    eprintln!(
                        "postilla: resume: cut a torn last line ({truncated_bytes} bytes) from {}",
                        self.output.display()
                    );
                }
                eprintln!("postilla: resume: {already_done} documents already in {}", self.output.display());
            }
            RunEvent::Started { total } => self.bar = progress_bar(total),
            RunEvent::Batch { records } => {
                for record in records {
                    if let Some(e) = &record.error {
                        self.bar.suspend(|| eprintln!("postilla: {}: {} ({})", record.id, e.message, e.kind));
                    }
                }
                self.bar.inc(records.len() as u64);
            }
        }
    }

    /// Clears the bar and prints the summary.
    pub(super) fn finish(&self, summary: &RunSummary) {
        self.bar.finish_and_clear();
        eprintln!(
            "postilla: {} documents, {} entities, {} errors in {:.2} s ({:.1} docs/s) -> {}",
            summary.documents,
            summary.entities,
            summary.errors,
            summary.seconds,
            summary.documents as f64 / summary.seconds.max(1e-9),
            self.output.display()
        );
    }
}

fn calibration_note(outcome: &CalibrationOutcome) {
    let sizes = |s: &[(String, usize)]| s.iter().map(|(l, n)| format!("{l} {n}")).collect::<Vec<_>>().join(", ");
    match outcome {
        CalibrationOutcome::Reused { path } => {
            eprintln!("postilla: resume: reusing the topic calibration {}", path.display())
        }
        CalibrationOutcome::Calibrated { path, sample_sizes, uncalibrated } => {
            let note = if uncalibrated.is_empty() {
                String::new()
            } else {
                format!("; too few documents, uncalibrated: {}", uncalibrated.join(", "))
            };
            eprintln!(
                "postilla: topic calibration on a sample of the input ({}){note} -> {}",
                sizes(sample_sizes),
                path.display()
            );
        }
        CalibrationOutcome::TooFewDocuments { sample_sizes } => eprintln!(
            "postilla: note: --topic-calibration auto: fewer than {MIN_DOCUMENTS} documents in every language ({}): topics are uncalibrated",
            sizes(sample_sizes)
        ),
    }
}

/// A progress bar with documents/s and ETA on a terminal, hidden otherwise.
fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (ProgressBar::new(n), "{bar:40} {pos}/{len} docs  {per_sec}  ETA {eta}"),
        None => (ProgressBar::new_spinner(), "{spinner} {pos} docs  {per_sec}"),
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}
