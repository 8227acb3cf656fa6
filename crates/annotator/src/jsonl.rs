//! JSONL I/O for `postilla/1` records: a writer that flushes (and optionally fsyncs) per batch,
//! and a reader that names the line of a malformed record.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::record::AnnotationRecord;

/// Errors of JSONL reading and writing.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid record.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Writes one record per line.
pub struct JsonlWriter<W: Write> {
    out: BufWriter<W>,
    path: PathBuf,
}

impl JsonlWriter<File> {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, JsonlError> {
        let f = File::create(path).map_err(|e| JsonlError::Io { path: path.into(), source: e })?;
        Ok(JsonlWriter { out: BufWriter::new(f), path: path.into() })
    }

    /// Opens `path` for appending (created when missing).
    pub fn append(path: &Path) -> Result<Self, JsonlError> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| JsonlError::Io { path: path.into(), source: e })?;
        Ok(JsonlWriter { out: BufWriter::new(f), path: path.into() })
    }

    /// Flushes buffered lines and asks the OS to put them on disk.
    pub fn sync(&mut self) -> Result<(), JsonlError> {
        self.flush()?;
        self.out.get_ref().sync_data().map_err(|e| JsonlError::Io { path: self.path.clone(), source: e })
    }
}

impl<W: Write> JsonlWriter<W> {
    /// Wraps any writer; `name` is used in error messages.
    pub fn new(inner: W, name: &str) -> Self {
        JsonlWriter { out: BufWriter::new(inner), path: name.into() }
    }

    /// Writes one record as one line.
    pub fn write(&mut self, record: &AnnotationRecord) -> Result<(), JsonlError> {
        let line = serde_json::to_string(record).map_err(|e| JsonlError::Malformed {
            path: self.path.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        self.out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(|e| JsonlError::Io { path: self.path.clone(), source: e })
    }

    /// Flushes buffered lines to the underlying writer (call once per batch).
    pub fn flush(&mut self) -> Result<(), JsonlError> {
        self.out.flush().map_err(|e| JsonlError::Io { path: self.path.clone(), source: e })
    }
}

/// Reads every record of a JSONL file; blank lines are skipped, the first malformed line is an
/// error naming its line number.
///
/// ```
/// use std::io::Write;
/// let mut f = tempfile::NamedTempFile::new().unwrap();
/// writeln!(f, r#"{{"schema":"postilla/1","id":"a","text_sha256":"00","entities":[],"topics":[]}}"#).unwrap();
/// writeln!(f, "not json").unwrap();
/// let err = postilla_annotator::jsonl::read_records(f.path()).unwrap_err();
/// assert!(err.to_string().contains(":2:"));
/// ```
pub fn read_records(path: &Path) -> Result<Vec<AnnotationRecord>, JsonlError> {
    let f = File::open(path).map_err(|e| JsonlError::Io { path: path.into(), source: e })?;
    parse_records(BufReader::new(f), path)
}

/// Like [`read_records`] over any reader.
pub fn parse_records(reader: impl BufRead, path: &Path) -> Result<Vec<AnnotationRecord>, JsonlError> {
    let mut records = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| JsonlError::Io { path: path.into(), source: e })?;
        let malformed = |message: String| JsonlError::Malformed { path: path.into(), line: i + 1, message };
        let line = std::str::from_utf8(&line).map_err(|e| malformed(format!("invalid UTF-8: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: AnnotationRecord = serde_json::from_str(line).map_err(|e| malformed(e.to_string()))?;
        records.push(record);
    }
    Ok(records)
}
