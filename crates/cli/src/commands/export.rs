//! `postilla export FORMAT IN.jsonl -o OUT`: records to brat, doccano, CoNLL or W3C.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use postilla_annotator::formats::{brat, conll, doccano, w3c};
use postilla_annotator::jsonl::read_records;

use crate::Outcome;

/// The export formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// brat standoff: OUT is a directory receiving ID.txt and ID.ann.
    Brat,
    /// doccano JSONL (label: [[start, end, label]]).
    Doccano,
    /// CoNLL IOB2 (token<TAB>tag; the record's tokens, else letters/digits runs and single
    /// punctuation characters, cut at entity boundaries).
    Conll,
    /// W3C Web Annotation JSON-LD (TextPositionSelector + TextQuoteSelector).
    W3c,
}

/// Arguments of `postilla export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Output format.
    format: ExportFormat,
    /// Input postilla/1 JSONL (records need their text, except for w3c).
    input: PathBuf,
    /// Output file (a directory for brat).
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs `postilla export`.
pub fn run(args: ExportArgs) -> anyhow::Result<Outcome> {
    let records = read_records(&args.input)?;
    let ok: Vec<_> = records.into_iter().filter(|r| r.error.is_none()).collect();
    match args.format {
        ExportFormat::Brat => {
            std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
            brat::export(&ok, &args.output)?;
        }
        ExportFormat::Doccano => std::fs::write(&args.output, doccano::export(&ok)?)?,
        ExportFormat::Conll => std::fs::write(&args.output, conll::export(&ok)?)?,
        ExportFormat::W3c => {
            std::fs::write(&args.output, serde_json::to_string_pretty(&w3c::export(&ok))? + "\n")?;
        }
    }
    eprintln!("postilla: exported {} records -> {}", ok.len(), args.output.display());
    Ok(Outcome::Success)
}
