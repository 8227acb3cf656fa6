//! A whole batch run, owned by the library: read the inputs, give each document its
//! neighbours as NER context ([`NerOptions::context`](crate::ner::NerOptions::context)), keep
//! one shard, skip what an interrupted run already wrote, annotate in chunks, write `postilla/1` JSONL with the
//! partial-file protocol, report progress through a callback, return the summary. `postilla
//! annotate` is argument parsing and a progress bar over [`run`]; research code gets the same
//! resumable, sharded run without copying it.
//!
//! ```no_run
//! use postilla_core::annotate::{Annotator, AnnotatorConfig};
//! use postilla_core::ner::NerOptions;
//! use postilla_core::run::{run, RunOptions};
//!
//! let config = AnnotatorConfig { ner: Some(("models/ner-it-de".into(), NerOptions::default())), ..Default::default() };
//! let mut annotator = Annotator::new(config)?;
//! let options = RunOptions { resume: true, ..RunOptions::new(vec!["seeds/".into()], "out/seeds.jsonl".into()) };
//! let summary = run(&mut annotator, &options, &mut |_event| {})?;
//! println!("{} documents, {} entities", summary.documents, summary.entities);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Files: `output` (the partial file, resume and rename protocol), [`calibrate`]
//! (`--topic-calibration auto`), [`merge`] (joining the outputs of a sharded run).

pub mod calibrate;
pub mod merge;
mod output;

use std::path::{Path, PathBuf};
use std::time::Instant;

use postilla_annotator::context::with_context;
use postilla_annotator::input::{flag_duplicates, jsonl_document_count, read_input, InputError, InputItem};
use postilla_annotator::jsonl::JsonlError;
use postilla_annotator::record::AnnotationRecord;
use postilla_annotator::resume::{item_id, ResumeError, ResumeState, Shard};

use crate::annotate::Annotator;
use crate::topics::TopicError;
pub use calibrate::{calibration_path, CalibrationOutcome};
use output::RunOutput;
pub use output::{partial_path, sibling};

/// What to run over which files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Inputs: directories of `.txt`, `.txt` files, `.jsonl` files, or `-` for standard input
    /// (see [`postilla_annotator::input::read_input`]).
    pub inputs: Vec<String>,
    /// The output JSONL file.
    pub output: PathBuf,
    /// Annotate only this shard of the documents.
    pub shard: Option<Shard>,
    /// Continue an interrupted run in place (see the `output` protocol).
    pub resume: bool,
    /// Documents annotated, written and made durable together.
    pub chunk_docs: usize,
    /// `--topic-calibration auto`: calibrate topics on up to this many documents per language
    /// of the input first.
    pub auto_calibration: Option<usize>,
}

impl RunOptions {
    /// A fresh, unsharded run of `inputs` into `output`, 256 documents per chunk.
    pub fn new(inputs: Vec<String>, output: PathBuf) -> Self {
        RunOptions { inputs, output, shard: None, resume: false, chunk_docs: 256, auto_calibration: None }
    }
}

/// Progress of a run, in order: at most one `Calibration`, at most one `Resumed`, one
/// `Started`, then one `Batch` per chunk.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// What `--topic-calibration auto` did.
    Calibration(CalibrationOutcome),
    /// A resumed run found earlier records.
    Resumed {
        /// Documents already in the output.
        already_done: usize,
        /// Bytes of a torn last line that were cut off.
        truncated_bytes: u64,
    },
    /// Annotation starts.
    Started {
        /// Documents the inputs hold, when known cheaply (not with a shard or standard input).
        total: Option<u64>,
    },
    /// A chunk was annotated and written.
    Batch {
        /// Its records, in input order.
        records: &'a [AnnotationRecord],
    },
}

/// Counts of a finished run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Records written by this run.
    pub documents: u64,
    /// Entities in them.
    pub entities: u64,
    /// Error records among them.
    pub errors: u64,
    /// Wall time of the annotation, in seconds.
    pub seconds: f64,
}

/// Why a run stopped. Records written before the error are kept (see [`RunError::Write`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The output's directory does not exist, or the output is a directory.
    #[error("{0}")]
    OutputPath(String),
    /// An input cannot be used at all.
    #[error("input {arg}: {source}")]
    Input {
        /// The input as given.
        arg: String,
        /// Why.
        #[source]
        source: InputError,
    },
    /// The output could not be created or opened.
    #[error(transparent)]
    Output(#[from] JsonlError),
    /// The output cannot be resumed (another configuration, malformed, a changed text).
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// Writing failed part-way.
    #[error("writing failed; the records written so far are kept in {} (rerun with --resume and the same options to continue): {source}", kept.display())]
    Write {
        /// The file holding the records written so far.
        kept: PathBuf,
        /// The cause.
        #[source]
        source: JsonlError,
    },
    /// The finished file could not be renamed.
    #[error("renaming {} to {}: {source}", from.display(), to.display())]
    Rename {
        /// The written file.
        from: PathBuf,
        /// Its final name.
        to: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Topic calibration failed.
    #[error(transparent)]
    Calibration(#[from] TopicError),
    /// `auto` calibration needs to read the input twice.
    #[error("--topic-calibration auto reads the input twice (first to sample it): standard input cannot be read twice; save it to a file")]
    CalibrationOnStdin,
}

/// Refuses an output whose directory does not exist, or that is a directory; call it before
/// loading models, so that a typo costs nothing.
pub fn check_output(output: &Path) -> Result<(), RunError> {
    let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(RunError::OutputPath(format!("output directory {} does not exist", parent.display())));
    }
    if output.is_dir() {
        return Err(RunError::OutputPath(format!("output {} is a directory", output.display())));
    }
    Ok(())
}

/// Runs `annotator` over `options.inputs` into `options.output` (see the module docs),
/// reporting progress to `on_event`.
pub fn run(
    annotator: &mut Annotator,
    options: &RunOptions,
    on_event: &mut dyn FnMut(RunEvent<'_>),
) -> Result<RunSummary, RunError> {
    check_output(&options.output)?;
    if let Some(per_language) = options.auto_calibration {
        calibrate::auto_calibrate(annotator, &options.inputs, &options.output, options.resume, per_language, on_event)?;
    }
    let (inputs, total) = open_inputs(&options.inputs)?;
    // each document's neighbours, by input order alone (before shards and resume filter them)
    let context = annotator.ner_context();
    let inputs = inputs.into_iter().map(|items| with_context(items, context));
    let (mut out, resume) = RunOutput::open(&options.output, options.resume, annotator.provenance())?;
    if let Some(state) = &resume {
        on_event(RunEvent::Resumed { already_done: state.len(), truncated_bytes: state.truncated_bytes });
    }
    on_event(RunEvent::Started { total: total.filter(|_| options.shard.is_none()) });
    let started = Instant::now();
    let mut summary = RunSummary { documents: 0, entities: 0, errors: 0, seconds: 0.0 };
    let mut pending = Vec::with_capacity(options.chunk_docs.max(1));
    for item in flag_duplicates(inputs.flatten()) {
        if !wanted(&item, options.shard, resume.as_ref())? {
            continue;
        }
        pending.push(item);
        if pending.len() >= options.chunk_docs.max(1) {
            let records = annotator.annotate_items(std::mem::take(&mut pending));
            out.write_batch(&records)?;
            count(&mut summary, &records);
            on_event(RunEvent::Batch { records: &records });
        }
    }
    if !pending.is_empty() {
        let records = annotator.annotate_items(pending);
        out.write_batch(&records)?;
        count(&mut summary, &records);
        on_event(RunEvent::Batch { records: &records });
    }
    out.finish()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// One opened input: its documents, read lazily.
type Documents = Box<dyn Iterator<Item = InputItem>>;

/// The inputs, opened in order, and the documents they hold when every count is cheap: a
/// directory's or file's from its listing, a JSONL file's from one read of its lines.
fn open_inputs(args: &[String]) -> Result<(Vec<Documents>, Option<u64>), RunError> {
    let mut inputs = Vec::with_capacity(args.len());
    let mut total = Some(0u64);
    for arg in args {
        let items = read_input(arg).map_err(|source| RunError::Input { arg: arg.clone(), source })?;
        let count = match items.size_hint() {
            (low, Some(high)) if low == high => Some(high as u64),
            _ if arg != "-" => jsonl_document_count(Path::new(arg)),
            _ => None,
        };
        total = total.zip(count).map(|(a, b)| a + b);
        inputs.push(items);
    }
    Ok((inputs, total))
}

/// Whether `item` is to be annotated: in the shard, and not already in a resumed output
/// (a document whose text changed since is an error, not annotated twice).
fn wanted(item: &InputItem, shard: Option<Shard>, resume: Option<&ResumeState>) -> Result<bool, RunError> {
    if shard.is_some_and(|s| !s.contains(item_id(item))) {
        return Ok(false);
    }
    match resume {
        Some(state) => Ok(!state.is_done(item)?),
        None => Ok(true),
    }
}

fn count(summary: &mut RunSummary, records: &[AnnotationRecord]) {
    summary.documents += records.len() as u64;
    summary.entities += records.iter().map(|r| r.entities.len() as u64).sum::<u64>();
    summary.errors += records.iter().filter(|r| r.error.is_some()).count() as u64;
}
