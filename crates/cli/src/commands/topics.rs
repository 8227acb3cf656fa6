//! `postilla topics calibrate`: measure a taxonomy's calibration for the embedding method on
//! unlabelled texts of a domain (see `postilla_core::topics::calibration`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use postilla_annotator::input::{flag_duplicates, read_input};
use postilla_core::annotate::model_identity;
use postilla_core::embed::SentenceEncoder;
use postilla_core::lang::LanguageIdentifier;
use postilla_core::model::DeviceChoice;
use postilla_core::topics::{EmbeddingOptions, EmbeddingTopicScorer, TopicCalibration, TopicTaxonomy};

use super::annotate::{DEFAULT_TOPIC_MODEL, NEWS_TAXONOMY};
use crate::Outcome;

/// Arguments of `postilla topics`.
#[derive(Args, Debug)]
pub struct TopicsArgs {
    #[command(subcommand)]
    action: TopicsAction,
}

#[derive(Subcommand, Debug)]
enum TopicsAction {
    /// Measure each topic's mean cosine over unlabelled texts of your domain, per language, and
    /// write a calibration for `postilla annotate --topic-calibration`. Labels are never read:
    /// use texts like the ones you will annotate (e.g. a sample of the corpus or a train split),
    /// never the texts you evaluate on.
    Calibrate(CalibrateArgs),
}

/// Arguments of `postilla topics calibrate`.
#[derive(Args, Debug)]
struct CalibrateArgs {
    /// Texts: directories of .txt, .txt files, .jsonl files of {"id","text"}, or -.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// The calibration file to write (JSON).
    #[arg(short, long)]
    output: PathBuf,
    /// Topic taxonomy (TOML). Default: the shipped news taxonomy.
    #[arg(long)]
    topics: Option<PathBuf>,
    /// The encoder of the embedding method.
    #[arg(long, default_value = DEFAULT_TOPIC_MODEL)]
    topic_model: PathBuf,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// libtorch threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs `postilla topics`.
pub fn run(args: TopicsArgs) -> anyhow::Result<Outcome> {
    match args.action {
        TopicsAction::Calibrate(args) => calibrate(args),
    }
}

fn calibrate(args: CalibrateArgs) -> anyhow::Result<Outcome> {
    if let Some(n) = args.threads {
        postilla_core::runtime::set_threads(n);
    }
    let taxonomy = match &args.topics {
        Some(path) => TopicTaxonomy::from_file(path)?,
        None => TopicTaxonomy::from_toml(NEWS_TAXONOMY, "taxonomies/news.toml (built in)")?,
    };
    let model_sha =
        model_identity(&args.topic_model).context("topic model")?["sha256"].as_str().unwrap_or_default().to_owned();
    let encoder = SentenceEncoder::load(&args.topic_model, args.device).context("loading the topic model")?;
    let options = EmbeddingOptions { batch_size: args.batch_size, ..EmbeddingOptions::default() };
    let scorer = EmbeddingTopicScorer::new(encoder, taxonomy, options)?;
    let lang = LanguageIdentifier::new();

    let mut cosines: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    let (mut used, mut skipped) = (0usize, 0usize);
    for input in &args.inputs {
        let items: Vec<_> = flag_duplicates(read_input(input).with_context(|| format!("input {input}"))?).collect();
        for chunk in items.chunks(256) {
            let docs: Vec<&str> = chunk.iter().filter_map(|i| i.as_ref().ok()).map(|d| d.text.as_str()).collect();
            skipped += chunk.len() - docs.len();
            let languages: Vec<&str> = docs
                .iter()
                .map(|t| scorer.taxonomy().language_for(lang.detect(t).as_ref().map(|g| g.code.as_str())).0)
                .collect();
            for (cos, l) in scorer.cosines(&docs, &languages)?.into_iter().zip(&languages) {
                cosines.entry((*l).to_owned()).or_default().push(cos);
            }
            used += docs.len();
        }
    }
    if used == 0 {
        bail!("no readable texts in the inputs");
    }
    let calibration = TopicCalibration::from_cosines(scorer.taxonomy(), &model_sha, &cosines)?;
    calibration.write(&args.output)?;
    let per_language: Vec<String> = cosines
        .iter()
        .map(|(l, rows)| {
            let note = if calibration.texts.contains_key(l) { "" } else { " (too few: left uncalibrated)" };
            format!("{l} {}{note}", rows.len())
        })
        .collect();
    eprintln!(
        "postilla: calibrated taxonomy {} on {used} texts ({}; {skipped} unreadable skipped) -> {}",
        calibration.taxonomy,
        per_language.join(", "),
        args.output.display()
    );
    Ok(Outcome::Success)
}
