//! `postilla merge OUT... -o ALL.jsonl [--inputs INPUT...]`: join shard outputs
//! ([`postilla_core::run::merge`] does the checking and ordering).

use std::path::PathBuf;

use clap::Args;
use postilla_core::run::merge::{merge_shards, write_merged};

use crate::Outcome;

/// Arguments of `postilla merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard outputs.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Merged output.
    #[arg(short, long)]
    output: PathBuf,
    /// The inputs of the sharded run, to restore their order (default: records sorted by id,
    /// which is the input order of a directory).
    #[arg(long, num_args = 1..)]
    inputs: Vec<String>,
}

/// Runs `postilla merge`: refuses shards made with different configurations and ids present
/// twice; with --inputs, also refuses inputs missing from every shard.
pub fn run(args: MergeArgs) -> anyhow::Result<Outcome> {
    let records = merge_shards(&args.shards, &args.inputs)?;
    write_merged(&records, &args.output)?;
    eprintln!(
        "postilla: merged {} records from {} shards -> {}",
        records.len(),
        args.shards.len(),
        args.output.display()
    );
    Ok(Outcome::Success)
}
