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
use postilla_core::topics::{EmbeddingOptions, EmbeddingTopicScorer};

use super::annotate::AdapterArgs;
use crate::Outcome;
use postilla_core::defaults;

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
    #[arg(long, default_value = defaults::TOPIC_MODEL_DIR)]
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
    /// The adapter the calibration is measured through; `postilla annotate` must use the same.
    #[command(flatten)]
    topic_adapter: AdapterArgs,
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
    let taxonomy = defaults::taxonomy_or_news(args.topics.as_deref())?;
    let model_sha = model_identity(&args.topic_model).context("topic model")?.sha256;
    let encoder = SentenceEncoder::load(&args.topic_model, args.device).context("loading the topic model")?;
    let options = EmbeddingOptions { batch_size: args.batch_size, ..EmbeddingOptions::default() };
    let scorer = match args.topic_adapter.resolve(&args.topic_model)? {
        Some((adapter, origin)) => {
            EmbeddingTopicScorer::with_adapter(encoder, taxonomy, options, adapter, &model_sha, &origin)?
        }
        None => EmbeddingTopicScorer::new(encoder, taxonomy, options)?,
    };
    let lang = LanguageIdentifier::new();

    let (mut texts, mut skipped) = (Vec::new(), 0usize);
    for input in &args.inputs {
        for item in flag_duplicates(read_input(input).with_context(|| format!("input {input}"))?) {
            match item {
                Ok(doc) => texts.push(doc.text),
                Err(_) => skipped += 1,
            }
        }
    }
    if texts.is_empty() {
        bail!("no readable texts in the inputs");
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let languages: Vec<&str> = texts
        .iter()
        .map(|t| scorer.taxonomy().language_for(lang.detect(t).as_ref().map(|g| g.code.as_str())).0)
        .collect();
    let calibration = scorer.calibration(&texts, &languages, &model_sha)?;
    calibration.write(&args.output)?;
    let mut per_language: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &languages {
        *per_language.entry(l).or_default() += 1;
    }
    let per_language: Vec<String> = per_language
        .iter()
        .map(|(l, n)| {
            let note = if calibration.texts.contains_key(*l) { "" } else { " (too few: left uncalibrated)" };
            format!("{l} {n}{note}")
        })
        .collect();
    eprintln!(
        "postilla: calibrated taxonomy {} on {} texts ({}; {skipped} unreadable skipped) -> {}",
        calibration.taxonomy,
        texts.len(),
        per_language.join(", "),
        args.output.display()
    );
    Ok(Outcome::Success)
}
