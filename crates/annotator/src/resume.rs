//! Resuming an interrupted run and splitting a corpus into shards.
//!
//! **Resume.** Under `--resume` the output is appended in place, flushed and fsynced after every
//! batch. [`ResumeState::open`] reads what an earlier run wrote: a torn last line (the run was
//! killed mid-write) is cut off; every complete record must have been made with the same
//! configuration (provenance) as the current run, or resuming is refused. A document is
//! skipped when a record with its id and the same `text_sha256` exists (error records count by
//! id); a document whose text changed since is refused rather than annotated twice, and so is a
//! pre-tokenised document whose tokens changed (`tokens_sha256`), since its entities were read
//! on them.
//!
//! **Shards.** `--shard K/N` keeps the documents whose id hashes (first 8 bytes of its sha256,
//! big-endian) to `K` modulo `N`: deterministic, independent of input order and machine.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::input::InputItem;
use crate::record::AnnotationRecord;
use crate::text::{text_sha256, tokens_sha256};

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
    /// A pre-tokenised input document's tokens changed (or appeared, or went away) since it was
    /// annotated.
    #[error("document {id}: its tokens changed since the interrupted run (tokens_sha256 differs); refusing to annotate it twice")]
    TokensChanged {
        /// The document.
        id: String,
    },
}

/// What ties a finished record to its input: the text's hash and, for pre-tokenised input, the
/// tokens' hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    text_sha256: String,
    tokens_sha256: Option<String>,
}

/// What an earlier run already wrote.
#[derive(Debug, Default)]
pub struct ResumeState {
    /// id -> the annotated input's fingerprint (`None` for error records).
    done: HashMap<String, Option<Fingerprint>>,
    /// Bytes of a torn last line that were cut off.
    pub truncated_bytes: u64,
}

impl ResumeState {
    /// Reads and repairs `path` (missing = nothing done). `provenance` is the current run's,
    /// typed: every complete record's provenance must parse as a `P` equal to it.
    pub fn open<P: DeserializeOwned + PartialEq>(path: &Path, provenance: &P) -> Result<Self, ResumeError> {
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
            if record.error.is_none() && !same_provenance(record.provenance.as_ref(), provenance) {
                return Err(ResumeError::ConfigMismatch { path: path.display().to_string(), id: record.id });
            }
            let fingerprint =
                record.text_sha256.map(|text_sha256| Fingerprint { text_sha256, tokens_sha256: record.tokens_sha256 });
            state.done.insert(record.id, fingerprint);
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

    /// Whether `item` is already annotated; an annotated id whose text or tokens changed is an
    /// error.
    pub fn is_done(&self, item: &InputItem) -> Result<bool, ResumeError> {
        match item {
            Err(e) => Ok(self.done.contains_key(&e.id)),
            Ok(doc) => match self.done.get(&doc.id) {
                None => Ok(false),
                Some(None) => Ok(true),
                Some(Some(done)) if done.text_sha256 != text_sha256(&doc.text) => {
                    Err(ResumeError::TextChanged { id: doc.id.clone() })
                }
                Some(Some(done)) if done.tokens_sha256 != doc.tokens.as_deref().map(tokens_sha256) => {
                    Err(ResumeError::TokensChanged { id: doc.id.clone() })
                }
                Some(Some(_)) => Ok(true),
            },
        }
    }
}

/// Whether a record's provenance, read as a `P`, equals `expected` (a missing or unreadable
/// provenance does not).
pub fn same_provenance<P: DeserializeOwned + PartialEq>(found: Option<&serde_json::Value>, expected: &P) -> bool {
    found.and_then(|v| P::deserialize(v).ok()).is_some_and(|p| p == *expected)
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

/// A shard of a corpus: the documents whose id hashes to `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, in `0..count`.
    pub index: u64,
    /// N, at least 1.
    pub count: u64,
}

impl Shard {
    /// Whether the document `id` belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        shard_of(id, self.count) == self.index
    }
}

/// Why a `K/N` shard spec is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// No `/`.
    #[error("--shard {0:?}: expected K/N")]
    Syntax(String),
    /// K or N is not a number.
    #[error("--shard {spec:?}: {part} is not a number")]
    NotANumber {
        /// The spec.
        spec: String,
        /// `K` or `N`.
        part: &'static str,
    },
    /// Not `0 <= K < N`.
    #[error("--shard {0:?}: need 0 <= K < N")]
    OutOfRange(String),
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    /// Parses `K/N` (0 <= K < N).
    ///
    /// ```
    /// use postilla_annotator::resume::Shard;
    /// assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
    /// assert!("4/4".parse::<Shard>().is_err());
    /// ```
    fn from_str(spec: &str) -> Result<Self, ShardError> {
        let (k, n) = spec.split_once('/').ok_or_else(|| ShardError::Syntax(spec.into()))?;
        let number = |text: &str, part| {
            text.trim().parse::<u64>().map_err(|_| ShardError::NotANumber { spec: spec.into(), part })
        };
        let (index, count) = (number(k, "K")?, number(n, "N")?);
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange(spec.into()));
        }
        Ok(Shard { index, count })
    }
}

/// Parses `K/N` (0 <= K < N) into `(K, N)`.
pub fn parse_shard(spec: &str) -> Result<(u64, u64), ShardError> {
    let shard: Shard = spec.parse()?;
    Ok((shard.index, shard.count))
}

/// The id of an input item.
pub fn item_id(item: &InputItem) -> &str {
    match item {
        Ok(d) => &d.id,
        Err(e) => &e.id,
    }
}
