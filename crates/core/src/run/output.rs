//! The output file protocol of a run.
//!
//! * A fresh run writes `OUT.partial`, flushed after every batch, and renames it to `OUT` when
//!   the run completes: `OUT` exists only complete.
//! * A resumed run (`resume`) appends to `OUT` in place (adopting an `OUT.partial` left by an
//!   interrupted fresh run), with an fsync after every batch, after
//!   [`ResumeState::open`] has cut a torn last line and checked every record's provenance.

use std::fs::File;
use std::path::{Path, PathBuf};

use postilla_annotator::jsonl::{JsonlError, JsonlWriter};
use postilla_annotator::record::AnnotationRecord;
use postilla_annotator::resume::ResumeState;

use super::RunError;
use crate::annotate::Provenance;

/// `output` with `suffix` appended to its file name.
pub fn sibling(output: &Path, suffix: &str) -> PathBuf {
    let mut name = output.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    output.with_file_name(name)
}

/// Where a fresh run writes before the rename: `OUT.partial`.
pub fn partial_path(output: &Path) -> PathBuf {
    sibling(output, ".partial")
}

/// An open run output.
pub(super) struct RunOutput {
    writer: JsonlWriter<File>,
    /// The file being written (`OUT.partial`, or `OUT` when resuming).
    written: PathBuf,
    /// The final name, when the written file is renamed at the end.
    rename_to: Option<PathBuf>,
    /// fsync after every batch (resume) or flush only.
    sync_each_batch: bool,
}

impl RunOutput {
    /// Opens `output` for a fresh run, or for resuming with `provenance` (returning what the
    /// earlier run already wrote).
    pub(super) fn open(
        output: &Path,
        resume: bool,
        provenance: &Provenance,
    ) -> Result<(Self, Option<ResumeState>), RunError> {
        let partial = partial_path(output);
        if !resume {
            let writer = JsonlWriter::create(&partial)?;
            let out = RunOutput { writer, written: partial, rename_to: Some(output.into()), sync_each_batch: false };
            return Ok((out, None));
        }
        if !output.exists() && partial.exists() {
            std::fs::rename(&partial, output).map_err(|source| RunError::Rename {
                from: partial.clone(),
                to: output.into(),
                source,
            })?;
        }
        let state = ResumeState::open(output, provenance)?;
        let writer = JsonlWriter::append(output)?;
        Ok((RunOutput { writer, written: output.into(), rename_to: None, sync_each_batch: true }, Some(state)))
    }

    /// Writes a batch of records and makes it durable (fsync under resume, flush otherwise).
    pub(super) fn write_batch(&mut self, records: &[AnnotationRecord]) -> Result<(), RunError> {
        for record in records {
            self.writer.write(record).map_err(|e| write_error(&self.written, e))?;
        }
        let done = if self.sync_each_batch { self.writer.sync() } else { self.writer.flush() };
        done.map_err(|e| write_error(&self.written, e))
    }

    /// Syncs the file and, for a fresh run, renames `OUT.partial` to `OUT`.
    pub(super) fn finish(mut self) -> Result<(), RunError> {
        self.writer.sync().map_err(|e| write_error(&self.written, e))?;
        drop(self.writer);
        if let Some(target) = self.rename_to {
            std::fs::rename(&self.written, &target).map_err(|source| RunError::Rename {
                from: self.written.clone(),
                to: target,
                source,
            })?;
        }
        Ok(())
    }
}

fn write_error(kept: &Path, source: JsonlError) -> RunError {
    RunError::Write { kept: kept.into(), source }
}
