//! `postilla annotate`.

use clap::Args;

use crate::Outcome;

/// Arguments of `postilla annotate`.
#[derive(Args, Debug)]
pub struct AnnotateArgs {}

/// Runs `postilla annotate`.
pub fn run(_args: AnnotateArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("not yet")
}
