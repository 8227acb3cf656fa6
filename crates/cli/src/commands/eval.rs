//! `postilla eval --gold GOLD.jsonl --pred PRED.jsonl [--pred B.jsonl]`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use postilla_annotator::eval::{align, compare, error_lines, evaluate, render_table, EvalOptions};
use postilla_annotator::formats::LabelMap;
use postilla_annotator::jsonl::read_records;

use crate::Outcome;

/// Arguments of `postilla eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Gold records.
    #[arg(long)]
    gold: PathBuf,
    /// Predicted records; give two for a paired bootstrap comparison (B against A).
    #[arg(long, required = true, num_args = 1)]
    pred: Vec<PathBuf>,
    /// Print every number as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Entity types to score (default: the types in the gold; other predicted types are
    /// ignored and reported).
    #[arg(long, value_delimiter = ',')]
    types: Option<Vec<String>>,
    /// Rename labels on both sides first, e.g. OTH=MISC,GPE=LOC.
    #[arg(long, default_value = "")]
    map: String,
    /// Bootstrap resamples of documents for 95% intervals (and for --pred A --pred B).
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Minimum overlap (per cent of the gold span) for partial/type matches.
    #[arg(long, default_value_t = 1.0)]
    min_overlap: f64,
    /// Score topics as label sets (a prediction's whole topic list against the gold's), even
    /// when every gold record has one topic: multi-label predictions against single-label gold.
    #[arg(long)]
    topic_sets: bool,
    /// Write one JSON line per document with its missed, spurious, mislabelled and
    /// boundary errors.
    #[arg(long)]
    errors: Option<PathBuf>,
}

/// Runs `postilla eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<Outcome> {
    if args.pred.len() > 2 {
        bail!("give one --pred, or two for a paired comparison");
    }
    let opts = EvalOptions {
        types: args.types.clone(),
        map: LabelMap::parse(&args.map).map_err(anyhow::Error::msg).context("--map")?,
        bootstrap: args.bootstrap,
        seed: args.seed,
        min_overlap: args.min_overlap,
        topic_sets: args.topic_sets,
    };
    let gold = read_records(&args.gold)?;
    let preds = args.pred.iter().map(|p| read_records(p)).collect::<Result<Vec<_>, _>>()?;
    if let [a, b] = preds.as_slice() {
        if opts.bootstrap == 0 {
            bail!("a paired comparison needs --bootstrap N (e.g. 1000)");
        }
        let cmp = compare(&gold, a, b, &opts)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&cmp)?);
        } else {
            println!(
                "paired bootstrap, {} resamples, seed {}: B = {}, A = {}",
                cmp.samples,
                cmp.seed,
                args.pred[1].display(),
                args.pred[0].display()
            );
            println!("{:<34} {:>8} {:>8} {:>8} {:>8}", "metric", "A", "B", "B-A", "p");
            for (k, m) in &cmp.metrics {
                println!("{k:<34} {:>8.4} {:>8.4} {:>+8.4} {:>8.4}", m.a, m.b, m.delta, m.p_value);
            }
        }
        return Ok(Outcome::Success);
    }
    let pred = &preds[0];
    let report = evaluate(&gold, pred, &opts)?;
    if let Some(path) = &args.errors {
        let aligned = align(&gold, pred, &opts)?;
        let lines: Vec<String> = error_lines(&gold, &aligned).iter().map(|v| v.to_string()).collect();
        std::fs::write(path, lines.join("\n") + if lines.is_empty() { "" } else { "\n" })
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_table(&report));
    }
    Ok(Outcome::Success)
}
