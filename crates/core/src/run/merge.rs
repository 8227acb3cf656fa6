//! Joining the outputs of a sharded run (`--shard K/N`) into one file, in input order.
//!
//! Refused: shards made with different configurations (their [`Provenance`] differ, compared
//! typed), an id in more than one shard, and with the inputs given, an input document missing
//! from every shard or a record that is not among the inputs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use postilla_annotator::input::{flag_duplicates, read_input, InputError};
use postilla_annotator::jsonl::{read_records, JsonlError, JsonlWriter};
use postilla_annotator::record::AnnotationRecord;
use postilla_annotator::resume::item_id;

use crate::annotate::Provenance;

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A shard or the output could not be read or written.
    #[error(transparent)]
    Jsonl(#[from] JsonlError),
    /// An input cannot be read.
    #[error("input {arg}: {source}")]
    Input {
        /// The input as given.
        arg: String,
        /// Why.
        #[source]
        source: InputError,
    },
    /// A record's provenance is not one this version writes.
    #[error("{}: document {id}: provenance not written by this version of Postilla ({reason})", shard.display())]
    UnknownProvenance {
        /// The shard.
        shard: PathBuf,
        /// The record.
        id: String,
        /// The parser's message.
        reason: String,
    },
    /// Two shards were made with different configurations.
    #[error("{} and {} were made with different configurations (models or parameters)", first.display(), other.display())]
    ConfigMismatch {
        /// The first shard.
        first: PathBuf,
        /// The shard that differs.
        other: PathBuf,
    },
    /// An id is in more than one shard.
    #[error("document {0} is in more than one shard")]
    Duplicate(String),
    /// An input document is in no shard.
    #[error("input document {id} is in no shard ({merged} of {inputs} documents merged)")]
    Missing {
        /// The document.
        id: String,
        /// Records merged.
        merged: usize,
        /// Input documents.
        inputs: usize,
    },
    /// A record is not among the inputs.
    #[error("document {0} is not among the inputs")]
    NotAnInput(String),
}

/// Reads `shards`, checks them and orders their records: by the order of `inputs` when given,
/// else by id (the input order of a directory).
pub fn merge_shards(shards: &[PathBuf], inputs: &[String]) -> Result<Vec<AnnotationRecord>, MergeError> {
    let records = read_shards(shards)?;
    let mut seen = HashSet::new();
    if let Some(r) = records.iter().find(|r| !seen.insert(r.id.clone())) {
        return Err(MergeError::Duplicate(r.id.clone()));
    }
    order(records, &seen, inputs)
}

/// Writes merged records to `output` (synced).
pub fn write_merged(records: &[AnnotationRecord], output: &Path) -> Result<(), MergeError> {
    let mut writer = JsonlWriter::create(output)?;
    for r in records {
        writer.write(r)?;
    }
    writer.sync()?;
    Ok(())
}

/// Every shard's records, the provenance of all of them the same.
fn read_shards(shards: &[PathBuf]) -> Result<Vec<AnnotationRecord>, MergeError> {
    let mut records = Vec::new();
    let mut first: Option<(Provenance, &PathBuf)> = None;
    for shard in shards {
        for r in read_records(shard)? {
            if let Some(value) = &r.provenance {
                let provenance = Provenance::from_value(value).map_err(|e| MergeError::UnknownProvenance {
                    shard: shard.clone(),
                    id: r.id.clone(),
                    reason: e.to_string(),
                })?;
                match &first {
                    None => first = Some((provenance, shard)),
                    Some((p, path)) if *p != provenance => {
                        return Err(MergeError::ConfigMismatch { first: (*path).clone(), other: shard.clone() })
                    }
                    _ => {}
                }
            }
            records.push(r);
        }
    }
    Ok(records)
}

/// The records in input order (or by id without inputs), every input present exactly once.
fn order(
    mut records: Vec<AnnotationRecord>,
    ids: &HashSet<String>,
    inputs: &[String],
) -> Result<Vec<AnnotationRecord>, MergeError> {
    if inputs.is_empty() {
        records.sort_by(|a, b| a.id.cmp(&b.id));
        return Ok(records);
    }
    let mut position: HashMap<String, usize> = HashMap::new();
    for arg in inputs {
        let items = read_input(arg).map_err(|source| MergeError::Input { arg: arg.clone(), source })?;
        for item in flag_duplicates(items) {
            let n = position.len();
            position.entry(item_id(&item).to_owned()).or_insert(n);
        }
    }
    if let Some(missing) = position.keys().find(|id| !ids.contains(*id)) {
        return Err(MergeError::Missing { id: missing.clone(), merged: records.len(), inputs: position.len() });
    }
    if let Some(extra) = records.iter().find(|r| !position.contains_key(&r.id)) {
        return Err(MergeError::NotAnInput(extra.id.clone()));
    }
    records.sort_by_key(|r| position[&r.id]);
    Ok(records)
}
