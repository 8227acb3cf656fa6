//! Resuming an interrupted run and splitting a corpus into shards.
//!
//! **Resume.** Under `--resume` the output is appended in place, flushed and fsynced after every
//! batch. [`ResumeState::open`] reads what an earlier run wrote: a torn last line (the run was
//! killed mid-write) is cut off; every complete record must have been made with the same
//! configuration (provenance) as the current run, or resuming is refused. A document is
//! skipped when a record with its id and the same `text_sha256` exists (error records count by
//! id); a document whose text changed since is refused rather than annotated twice.
//!
//! **Shards.** `--shard K/N` keeps the documents whose id hashes (first 8 bytes of its sha256,
//! big-endian) to `K` modulo `N`: deterministic, independent of input order and machine.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::input::InputItem;
use crate::record::AnnotationRecord;
use crate::text::text_sha256;

/// Why a run cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The output cannot be read or repaired.
    #[error("{path}: {source}")]
    Io {
        /// The output.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A complete line is not a record.
    #[error("{path}:{line}: not a postilla/1 record ({message}); refusing to resume into it")]
    Malformed {
        /// The output.
        path: String,
        /// 1-based line.
        line: usize,
        /// Parser message.
        message: String,
    },
    /// The existing records were made with another configuration.
    #[error("{path}: document {id} was annotated with another configuration (models or parameters differ); resume with the same options or write to a new file")]
    ConfigMismatch {
        /// The output.
        path: String,
        /// First mismatching document.
        id: String,
    },
    /// An input document changed since it was annotated.
    #[error("document {id}: its text changed since the interrupted run (text_sha256 differs); refusing to annotate it twice")]
    TextChanged {
        /// The document.
        id: String,
    },
}

/// What an earlier run already wrote.
#[derive(Debug, Default)]
pub struct ResumeState {
    /// id -> text_sha256 (`None` for error records).
    done: HashMap<String, Option<String>>,
    /// Bytes of a torn last line that were cut off.
    pub truncated_bytes: u64,
}

impl ResumeState {
    /// Reads and repairs `path` (missing = nothing done). `provenance` is the current run's.
    pub fn open(path: &Path, provenance: &serde_json::Value) -> Result<Self, ResumeError> {
        let io = |e| ResumeError::Io { path: path.display().to_string(), source: e };
        let mut state = ResumeState::default();
        if !path.exists() {
            return Ok(state);
        }
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            state.truncated_bytes = (bytes.len() - complete) as u64;
            file.set_len(complete as u64).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        for (i, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record: AnnotationRecord = serde_json::from_slice(line).map_err(|e| ResumeError::Malformed {
                path: path.display().to_string(),
                line: i + 1,
                message: e.to_string(),
            })?;
            if record.error.is_none() && record.provenance.as_ref() != Some(provenance) {
                return Err(ResumeError::ConfigMismatch { path: path.display().to_string(), id: record.id });
            }
            state.done.insert(record.id, record.text_sha256);
        }
        Ok(state)
    }

    /// Documents already in the output.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// True when nothing was done.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Whether `item` is already annotated; an annotated id whose text changed is an error.
    pub fn is_done(&self, item: &InputItem) -> Result<bool, ResumeError> {
        match item {
            Err(e) => Ok(self.done.contains_key(&e.id)),
            Ok(doc) => match self.done.get(&doc.id) {
                None => Ok(false),
                Some(None) => Ok(true),
                Some(Some(sha)) if *sha == text_sha256(&doc.text) => Ok(true),
                Some(Some(_)) => Err(ResumeError::TextChanged { id: doc.id.clone() }),
            },
        }
    }
}

/// The shard (0-based, `0..n`) a document id belongs to.
///
/// ```
/// use postilla_annotator::resume::shard_of;
/// assert!(shard_of("doc-1", 4) < 4);
/// assert_eq!(shard_of("doc-1", 4), shard_of("doc-1", 4));
/// ```
pub fn shard_of(id: &str, n: u64) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b) % n.max(1)
}

/// Parses `K/N` (0 <= K < N).
pub fn parse_shard(spec: &str) -> Result<(u64, u64), String> {
    let (k, n) = spec.split_once('/').ok_or_else(|| format!("--shard {spec:?}: expected K/N"))?;
    let (k, n): (u64, u64) = (
        k.trim().parse().map_err(|_| format!("--shard {spec:?}: K is not a number"))?,
        n.trim().parse().map_err(|_| format!("--shard {spec:?}: N is not a number"))?,
    );
    if n == 0 || k >= n {
        return Err(format!("--shard {spec:?}: need 0 <= K < N"));
    }
    Ok((k, n))
}

/// The id of an input item.
pub fn item_id(item: &InputItem) -> &str {
    match item {
        Ok(d) => &d.id,
        Err(e) => &e.id,
    }
}
