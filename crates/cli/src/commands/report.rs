//! `postilla report RUN.jsonl [--gold GOLD.jsonl] [--pred B.jsonl] -o report.html`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use postilla_annotator::eval::EvalOptions;
use postilla_annotator::formats::LabelMap;
use postilla_annotator::jsonl::read_records;
use postilla_report::{build, render_html, ReportOptions, System};

use crate::Outcome;

/// Above this many documents without --sample, the command suggests one.
const LARGE_RUN: usize = 5000;

/// Arguments of `postilla report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The run to show (postilla/1 JSONL from `postilla annotate`).
    run: PathBuf,
    /// Gold records: the report then scores the run (as `postilla eval`) and marks its errors.
    #[arg(long)]
    gold: Option<PathBuf>,
    /// A second run over the same documents, shown side by side (with --gold: the paired
    /// bootstrap test, B = this run against A = RUN).
    #[arg(long)]
    pred: Option<PathBuf>,
    /// Output HTML file (self-contained, works offline).
    #[arg(short, long)]
    output: PathBuf,
    /// Show a deterministic sample of N documents (the scores and the corpus view still cover
    /// every document).
    #[arg(long)]
    sample: Option<usize>,
    /// Seed of the sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Page title.
    #[arg(long, default_value = "Postilla report")]
    title: String,
    /// Entity types to score (default: the types in the gold), as `postilla eval --types`.
    #[arg(long, value_delimiter = ',')]
    types: Option<Vec<String>>,
    /// Rename labels on both sides first, e.g. OTH=MISC,GPE=LOC.
    #[arg(long, default_value = "")]
    map: String,
    /// Bootstrap resamples of documents for the intervals and the paired test (0: none).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Directory that the records' relative `source` paths are read from, to show texts the
    /// records do not carry (default: the current directory).
    #[arg(long, default_value = ".")]
    source_root: PathBuf,
}

/// Runs `postilla report`.
pub fn run(args: ReportArgs) -> anyhow::Result<Outcome> {
    let mut systems = vec![load(&args.run)?];
    if let Some(b) = &args.pred {
        systems.push(load(b)?);
    }
    let gold = args.gold.as_deref().map(read_records).transpose()?;
    let opts = ReportOptions {
        title: args.title.clone(),
        sample: args.sample,
        seed: args.seed,
        eval: EvalOptions {
            types: args.types.clone(),
            map: LabelMap::parse(&args.map).map_err(anyhow::Error::msg).context("--map")?,
            bootstrap: args.bootstrap,
            seed: 1,
            min_overlap: 1.0,
            topic_sets: false,
        },
        source_root: args.source_root.clone(),
    };
    let n = systems[0].records.len();
    if n > LARGE_RUN && args.sample.is_none() {
        eprintln!("postilla: note: {n} documents; the page embeds them all (give --sample N for a smaller page)");
    }
    let data = build(&systems, gold.as_deref(), &opts)?;
    let missing = data.documents.iter().filter(|d| d.text.is_none()).count();
    if missing > 0 {
        eprintln!("postilla: note: {missing} document text(s) not found (see the page; --source-root DIR)");
    }
    std::fs::write(&args.output, render_html(&data)?).with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("wrote {} ({} of {} documents)", args.output.display(), data.shown.count, n);
    Ok(Outcome::Success)
}

fn load(path: &std::path::Path) -> anyhow::Result<System> {
    let records = read_records(path)?;
    let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    Ok(System { name, records })
}
