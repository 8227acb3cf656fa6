//! `postilla merge OUT... -o ALL.jsonl [--inputs INPUT...]`: join shard outputs.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use postilla_annotator::input::{flag_duplicates, read_input};
use postilla_annotator::jsonl::{read_records, JsonlWriter};
use postilla_annotator::resume::item_id;

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
    let mut records = Vec::new();
    let mut provenance: Option<(serde_json::Value, PathBuf)> = None;
    for shard in &args.shards {
        for r in read_records(shard)? {
            if let Some(p) = &r.provenance {
                match &provenance {
                    None => provenance = Some((p.clone(), shard.clone())),
                    Some((q, first)) if q != p => bail!(
                        "{} and {} were made with different configurations (models or parameters)",
                        first.display(),
                        shard.display()
                    ),
                    _ => {}
                }
            }
            records.push(r);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for r in &records {
        if !seen.insert(r.id.clone()) {
            bail!("document {} is in more than one shard", r.id);
        }
    }
    if args.inputs.is_empty() {
        records.sort_by(|a, b| a.id.cmp(&b.id));
    } else {
        let mut order: HashMap<String, usize> = HashMap::new();
        for input in &args.inputs {
            for item in flag_duplicates(read_input(input).with_context(|| format!("input {input}"))?) {
                let n = order.len();
                order.entry(item_id(&item).to_owned()).or_insert(n);
            }
        }
        if let Some(missing) = order.keys().find(|id| !seen.contains(*id)) {
            bail!("input document {missing} is in no shard ({} of {} documents merged)", records.len(), order.len());
        }
        if let Some(extra) = records.iter().find(|r| !order.contains_key(&r.id)) {
            bail!("document {} is not among the inputs", extra.id);
        }
        records.sort_by_key(|r| order[&r.id]);
    }
    let mut writer = JsonlWriter::create(&args.output)?;
    for r in &records {
        writer.write(r)?;
    }
    writer.sync()?;
    eprintln!(
        "postilla: merged {} records from {} shards -> {}",
        records.len(),
        args.shards.len(),
        args.output.display()
    );
    Ok(Outcome::Success)
}
