//! `postilla import FORMAT FILE... -o GOLD.jsonl`: gold data to postilla/1 records.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use postilla_annotator::formats::conll::{self, ConllOptions, TokenFormat};
use postilla_annotator::formats::topics::{self, TopicFormat};
use postilla_annotator::formats::{brat, doccano, ImportStats, LabelMap};
use postilla_annotator::jsonl::JsonlWriter;

use crate::Outcome;

/// The importable formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportFormat {
    /// CoNLL: `token … tag` (space or tab), IOB2, `-DOCSTART-` document breaks.
    Conll,
    /// Like conll, IOB1 (an I- may start an entity).
    Iob1,
    /// GermEval 2014: index, token, outer, nested (OTH -> MISC; *deriv/*part dropped).
    Germeval,
    /// KIND: token<TAB>tag, IOB2.
    Kind,
    /// SIB-200 topic TSV (index_id, category, text).
    Sib200,
    /// 10kGNAD topic CSV (label;text with ' quoting).
    Gnad10k,
    /// XGLUE news classification (title<TAB>body<TAB>label).
    XglueNc,
    /// brat standoff (.txt + .ann pairs; give either file).
    Brat,
    /// doccano JSONL (label: [[s, e, L]] or entities).
    Doccano,
}

/// Arguments of `postilla import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Input format.
    format: ImportFormat,
    /// Input files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output JSONL.
    #[arg(short, long)]
    output: PathBuf,
    /// Token formats: one document per sentence (default: per -DOCSTART- block when the file
    /// has them, else per sentence).
    #[arg(long)]
    doc_per_sentence: bool,
    /// GermEval: read the nested (inner) column.
    #[arg(long)]
    nested: bool,
    /// GermEval: keep *deriv/*part labels.
    #[arg(long)]
    keep_deriv_part: bool,
    /// Rename labels, e.g. OTH=MISC,GPE=LOC.
    #[arg(long, default_value = "")]
    map: String,
}

/// Runs `postilla import`.
pub fn run(args: ImportArgs) -> anyhow::Result<Outcome> {
    let map = LabelMap::parse(&args.map).map_err(anyhow::Error::msg).context("--map")?;
    let opts = ConllOptions {
        doc_per_sentence: args.doc_per_sentence,
        nested: args.nested,
        keep_deriv_part: args.keep_deriv_part,
        map: map.clone(),
    };
    let mut stats = ImportStats::default();
    let mut records = Vec::new();
    for file in &args.files {
        let stats = &mut stats;
        let mut got = match args.format {
            ImportFormat::Conll => conll::import_file(file, TokenFormat::Conll, &opts, stats)?,
            ImportFormat::Iob1 => conll::import_file(file, TokenFormat::Iob1, &opts, stats)?,
            ImportFormat::Germeval => conll::import_file(file, TokenFormat::Germeval, &opts, stats)?,
            ImportFormat::Kind => conll::import_file(file, TokenFormat::Kind, &opts, stats)?,
            ImportFormat::Sib200 => topics::import_file(file, TopicFormat::Sib200, &map, stats)?,
            ImportFormat::Gnad10k => topics::import_file(file, TopicFormat::Gnad10k, &map, stats)?,
            ImportFormat::XglueNc => topics::import_file(file, TopicFormat::XglueNc, &map, stats)?,
            ImportFormat::Brat => vec![brat::import_pair(file, &map, stats)?],
            ImportFormat::Doccano => doccano::import_file(file, &map, stats)?,
        };
        records.append(&mut got);
    }
    let mut seen = std::collections::HashSet::new();
    for r in &records {
        if !seen.insert(r.id.as_str()) {
            anyhow::bail!("two documents have the id {:?} (importing several files with the same name?)", r.id);
        }
    }
    let mut writer = JsonlWriter::create(&args.output)?;
    for r in &records {
        writer.write(r)?;
    }
    writer.sync()?;
    eprintln!(
        "postilla: imported {} documents, {} sentences, entities {:?}, topics {:?} -> {}",
        stats.documents,
        stats.sentences,
        stats.entities,
        stats.topics,
        args.output.display()
    );
    Ok(Outcome::Success)
}
