//! `postilla annotate`: parse the arguments, load the models, hand the run to
//! [`postilla_core::run::run`] and report its progress on the terminal.

mod args;
mod progress;

use anyhow::Context;
use postilla_core::annotate::Annotator;
use postilla_core::run::{check_output, run as run_annotation};

pub use args::{AdapterArgs, AnnotateArgs};

use crate::Outcome;

/// Runs `postilla annotate`.
pub fn run(args: AnnotateArgs) -> anyhow::Result<Outcome> {
    check_output(&args.output)?;
    let config = args.annotator_config()?;
    let options = args.run_options()?;
    let mut annotator = Annotator::new(config).context("loading models")?;
    let mut reporter = progress::Reporter::new(&options.output);
    let summary = run_annotation(&mut annotator, &options, &mut |event| reporter.on_event(event))?;
    reporter.finish(&summary);
    Ok(if summary.errors > 0 { Outcome::PartialFailure } else { Outcome::Success })
}
