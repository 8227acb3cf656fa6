//! `postilla annotate`: read documents, run the models, write postilla/1 JSONL.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use postilla_annotator::input::{flag_duplicates, read_input, InputItem};
use postilla_annotator::jsonl::JsonlWriter;
use postilla_annotator::resume::{item_id, parse_shard, shard_of, ResumeState};
use postilla_core::annotate::{Annotator, AnnotatorConfig, TopicMethod, TopicsConfig};
use postilla_core::model::manifest::{Manifest, MANIFEST_FILE};
use postilla_core::model::{DeviceChoice, Engine, MatmulKernel, Precision};
use postilla_core::ner::{Aggregation, NerOptions, WordBoundaries};
use postilla_core::topics::{
    CalibrationSample, EmbeddingOptions, NliOptions, TopicAdapter, TopicCalibration, TopicTaxonomy,
};

use crate::Outcome;

/// The default NER model directory (built by `just setup` once the project ships one).
const DEFAULT_NER: &str = "models/ner-it-de";
/// The default encoder for the embedding topic method.
pub const DEFAULT_TOPIC_MODEL: &str = "models/e5-small";
/// The shipped news taxonomy (taxonomies/news.toml), used when --topics is not given.
const NEWS_TAXONOMY: &str = include_str!("../../../../taxonomies/news.toml");

/// Where the shipped topic adapter lives in the repository (built into the binary).
const DEFAULT_TOPIC_ADAPTER: &str = "models/topic-adapters/e5-small.safetensors";
const DEFAULT_TOPIC_ADAPTER_BYTES: &[u8] = include_bytes!("../../../../models/topic-adapters/e5-small.safetensors");

/// How the embedding method's topic adapter is chosen (`--topic-adapter`, `--no-topic-adapter`).
#[derive(Args, Debug, Clone)]
pub struct AdapterArgs {
    /// Embedding method: map documents and descriptions through this topic adapter
    /// (safetensors, made by training/topic_adapter.py). Default: the shipped adapter
    /// (models/topic-adapters/e5-small.safetensors, built in) when the topic model is the
    /// encoder it was trained on (its manifest names the same weights), else none.
    #[arg(long, value_name = "FILE", conflicts_with = "no_topic_adapter")]
    pub topic_adapter: Option<PathBuf>,
    /// Embedding method: compare the encoder's own embeddings, without the topic adapter.
    #[arg(long)]
    pub no_topic_adapter: bool,
}

impl AdapterArgs {
    /// The adapter to use with the encoder in `model_dir`, with a name for messages.
    pub fn resolve(&self, model_dir: &Path) -> anyhow::Result<Option<(TopicAdapter, String)>> {
        if self.no_topic_adapter {
            return Ok(None);
        }
        if let Some(path) = &self.topic_adapter {
            return Ok(Some((TopicAdapter::read(path)?, path.display().to_string())));
        }
        let origin = format!("{DEFAULT_TOPIC_ADAPTER} (built in)");
        let adapter = TopicAdapter::from_bytes(DEFAULT_TOPIC_ADAPTER_BYTES, &origin)?;
        let manifest = model_dir.join(MANIFEST_FILE);
        let trained_on_this =
            manifest.exists() && Manifest::read(&manifest)?.weights_sha256() == Some(adapter.encoder_sha256());
        if trained_on_this {
            Ok(Some((adapter, origin)))
        } else {
            eprintln!(
                "postilla: note: the shipped topic adapter was trained on another encoder than {}: scoring without it",
                model_dir.display()
            );
            Ok(None)
        }
    }
}

/// The taxonomy of `--topics FILE`, else the shipped news taxonomy.
pub fn taxonomy(path: Option<&Path>) -> anyhow::Result<TopicTaxonomy> {
    Ok(match path {
        Some(path) => TopicTaxonomy::from_file(path)?,
        None => TopicTaxonomy::from_toml(NEWS_TAXONOMY, "taxonomies/news.toml (built in)")?,
    })
}

/// Arguments of `postilla annotate`.
#[derive(Args, Debug)]
pub struct AnnotateArgs {
    /// Inputs: directories (every *.txt below, id = relative path without .txt), .txt files,
    /// .jsonl files of {"id","text"} objects, or - for JSONL on standard input.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Output JSONL file (written to OUT.partial and renamed when the run completes).
    #[arg(short, long)]
    output: PathBuf,
    /// Token-classification model directory (Hugging Face format). Default: models/ner-it-de
    /// when it exists, else no entities.
    #[arg(long, conflicts_with = "no_ner")]
    ner: Option<PathBuf>,
    /// Do not recognise entities (topics only).
    #[arg(long)]
    no_ner: bool,
    /// Model windows per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Documents annotated (and written, and under --resume fsynced) together; their windows
    /// are sorted by length before batching. Larger chunks pad less; smaller ones lose less
    /// work to a kill. Default: 16 x --batch-size, at least 64.
    #[arg(long, value_name = "N")]
    chunk_docs: Option<usize>,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Tokens per window, special tokens included (capped at the model's limit).
    #[arg(long, default_value_t = 256)]
    max_length: usize,
    /// Tokens shared by consecutive windows of a long document.
    #[arg(long, default_value_t = 64)]
    stride: usize,
    /// Subword aggregation: first, average or max (Hugging Face semantics).
    #[arg(long, default_value = "first")]
    aggregation: Aggregation,
    /// Word boundaries: punctuation (words also end at punctuation, as the gold sets are
    /// tokenised, so that "Putin," or "(AP)" give "Putin" and "AP") or huggingface (exactly
    /// the Hugging Face pipeline's words, for parity).
    #[arg(long, default_value = "punctuation")]
    word_boundaries: WordBoundaries,
    /// libtorch threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<usize>,
    /// Forward pass of BERT and XLM-R models: fused (Postilla's, with libtorch's fused
    /// attention and GELU kernels) or rust-bert (the reference implementation, slower). Both
    /// give the same output to ~1e-6.
    #[arg(long, default_value = "fused")]
    engine: Engine,
    /// CPU kernel of the fused forward's linear layers: auto (oneDNN on AMD processors, MKL
    /// elsewhere), blas (libtorch's linear, MKL) or onednn. Same output to ~1e-6; a speed
    /// choice only.
    #[arg(long, default_value = "auto")]
    matmul: MatmulKernel,
    /// Precision of the fused forward, for the NER model and the embedding topic encoder:
    /// fp32; bf16 (processors with avx512_bf16 or amx_bf16 only, refused elsewhere); int8
    /// (linear layers dynamically quantized: per-channel int8 weights, activations quantized
    /// per batch; CPU only). Each one's dev F1 and speed: README, "Precision".
    #[arg(long, default_value = "fp32")]
    precision: Precision,
    /// Copy each document's text into its record.
    #[arg(long)]
    with_text: bool,
    /// Continue an interrupted run: documents already in OUT (same id, text and configuration)
    /// are skipped, a torn last line is cut off; OUT is appended in place with an fsync per
    /// batch. (Without --resume, OUT.partial is written and renamed at the end.)
    #[arg(long)]
    resume: bool,
    /// Annotate only shard K of N (0 <= K < N): the documents whose id hashes to K.
    #[arg(long)]
    shard: Option<String>,
    /// Topic taxonomy (TOML). Default: the shipped news taxonomy (taxonomies/news.toml).
    #[arg(long, conflicts_with = "no_topics")]
    topics: Option<PathBuf>,
    /// Do not score topics.
    #[arg(long)]
    no_topics: bool,
    /// Topic method: embedding (cosine with the taxonomy's descriptions under an e5 encoder)
    /// or nli (entailment of the label hypotheses under an NLI classifier, --topic-model).
    #[arg(long, default_value = "embedding", value_parser = ["embedding", "nli"])]
    topic_method: String,
    /// Model for the topic method: an encoder (embedding) or an NLI sequence classifier (nli).
    #[arg(long, default_value = DEFAULT_TOPIC_MODEL)]
    topic_model: PathBuf,
    /// Assign every topic above its threshold instead of ranking all topics.
    #[arg(long)]
    multi_label: bool,
    /// Multi-label threshold: cosine for embedding (topics may set their own), entailment
    /// probability for nli. Defaults: the topic adapter's (0.121 for the shipped one), 0.82
    /// for plain e5 cosines (--no-topic-adapter), 0.5 for nli.
    #[arg(long)]
    topic_threshold: Option<f64>,
    /// NLI: combine the chunks of a long document by mean or max.
    #[arg(long, default_value = "mean")]
    aggregate: postilla_core::topics::ChunkAggregation,
    /// Softmax (single-label) / sigmoid (multi-label) temperature over cosines. Default: the
    /// topic adapter's (0.05 for the shipped one), 0.02 for plain e5 cosines.
    #[arg(long)]
    topic_temperature: Option<f64>,
    /// Embedding method: calibrate cosines with FILE, made by `postilla topics calibrate` on
    /// unlabelled texts of the same domain for this taxonomy and encoder; or `auto`: calibrate
    /// on the input itself first, on up to --topic-calibration-sample documents per language
    /// chosen by a hash of their ids (every shard of a --shard run draws the same ones; labels
    /// are never read), written to OUT.topic-calibration.json, which --resume reuses and
    /// --topic-calibration FILE accepts. A language with fewer than 20 documents stays
    /// uncalibrated.
    #[arg(long, value_name = "FILE|auto")]
    topic_calibration: Option<String>,
    /// With --topic-calibration auto: documents per language in the calibration sample.
    #[arg(long, value_name = "N", default_value_t = 300)]
    topic_calibration_sample: usize,
    #[command(flatten)]
    topic_adapter: AdapterArgs,
}

/// Runs `postilla annotate`.
pub fn run(args: AnnotateArgs) -> anyhow::Result<Outcome> {
    check_output(&args.output)?;
    let ner_dir = match &args.ner {
        _ if args.no_ner => None,
        Some(dir) => Some(dir.clone()),
        None if Path::new(DEFAULT_NER).join("model.safetensors").exists() => Some(PathBuf::from(DEFAULT_NER)),
        None => {
            bail!("the default NER model {DEFAULT_NER} is not built: run `just setup` (or pass --ner DIR, or --no-ner)")
        }
    };
    let engine = match args.engine {
        Engine::Fused(_) => Engine::Fused(args.matmul),
        other => other,
    };
    let options = NerOptions {
        engine,
        max_length: args.max_length,
        stride: args.stride,
        batch_size: args.batch_size,
        aggregation: args.aggregation,
        word_boundaries: args.word_boundaries,
        device: args.device,
        precision: args.precision,
    };
    let mut inputs = Vec::new();
    let mut total = Some(0u64);
    for arg in &args.inputs {
        inputs.push(read_input(arg).with_context(|| format!("input {arg}"))?);
        total = total.zip(count_hint(arg)).map(|(a, b)| a + b);
    }
    let topics = if args.no_topics {
        None
    } else {
        let taxonomy = taxonomy(args.topics.as_deref())?;
        if !args.topic_model.join("config.json").exists() {
            bail!(
                "topic model {} is not built (run `just setup`), or pass --topic-model DIR or --no-topics",
                args.topic_model.display()
            );
        }
        let nli = args.topic_method == "nli";
        // the NLI method uses no adapter; one given explicitly goes on so that the annotator
        // refuses it, as it refuses a calibration
        let adapter = if nli && args.topic_adapter.topic_adapter.is_none() {
            None
        } else {
            args.topic_adapter.resolve(&args.topic_model)?
        };
        let method = if nli {
            TopicMethod::Nli(NliOptions {
                multi_label: args.multi_label,
                threshold: args.topic_threshold.unwrap_or(0.5),
                aggregate: args.aggregate,
                batch_size: args.batch_size,
                max_length: 512,
                device: args.device,
            })
        } else {
            let plain = EmbeddingOptions::default();
            let defaults = adapter.as_ref().map(|(a, _)| a.defaults());
            TopicMethod::Embedding(EmbeddingOptions {
                temperature: args.topic_temperature.unwrap_or(defaults.map_or(plain.temperature, |d| d.temperature)),
                multi_label: args.multi_label,
                threshold: args.topic_threshold.unwrap_or(defaults.map_or(plain.threshold, |d| d.threshold)),
                batch_size: args.batch_size,
            })
        };
        let calibration = match args.topic_calibration.as_deref() {
            Some(AUTO) | None => None,
            Some(path) => Some((TopicCalibration::read(Path::new(path))?, path.to_owned())),
        };
        Some(TopicsConfig {
            taxonomy,
            model_dir: args.topic_model.clone(),
            method,
            device: args.device,
            engine,
            precision: args.precision,
            calibration,
            adapter,
        })
    };
    let config = AnnotatorConfig {
        ner: ner_dir.map(|d| (d, options)),
        topics,
        with_text: args.with_text,
        threads: args.threads,
    };
    let mut annotator = Annotator::new(config).context("loading models")?;
    if args.topic_calibration.as_deref() == Some(AUTO) {
        if args.no_topics {
            bail!("--topic-calibration auto calibrates topics, which --no-topics turns off");
        }
        auto_calibrate(&mut annotator, &args)?;
    }

    let shard = args.shard.as_deref().map(parse_shard).transpose().map_err(anyhow::Error::msg)?;
    let mut items: Box<dyn Iterator<Item = InputItem>> = Box::new(flag_duplicates(inputs.into_iter().flatten()));
    if let Some((k, n)) = shard {
        items = Box::new(items.filter(move |item| shard_of(item_id(item), n) == k));
        total = None;
    }
    let partial = partial_path(&args.output);
    let (mut writer, target) = if args.resume {
        if !args.output.exists() && partial.exists() {
            std::fs::rename(&partial, &args.output)?;
        }
        let state = ResumeState::open(&args.output, annotator.provenance())?;
        if state.truncated_bytes > 0 {
            eprintln!(
                "postilla: resume: cut a torn last line ({} bytes) from {}",
                state.truncated_bytes,
                args.output.display()
            );
        }
        eprintln!("postilla: resume: {} documents already in {}", state.len(), args.output.display());
        // a changed document is unusable input: stop (exit 2) before annotating it twice
        items = Box::new(items.filter(move |item| match state.is_done(item) {
            Ok(done) => !done,
            Err(e) => {
                eprintln!("postilla: error: {e}");
                std::process::exit(2)
            }
        }));
        (JsonlWriter::append(&args.output)?, None)
    } else {
        (JsonlWriter::create(&partial)?, Some(partial.clone()))
    };
    let written = target.clone().unwrap_or_else(|| args.output.clone());
    let hint = || {
        format!(
            "writing failed; the records written so far are kept in {} (rerun with --resume and the same options to continue)",
            written.display()
        )
    };
    let progress = progress_bar(total);
    let started = Instant::now();
    let (mut docs, mut entities, mut errors) = (0u64, 0u64, 0u64);
    // windows are sorted by length within a chunk of documents: larger chunks pad less (3.4 %
    // of the tokens at 64 documents, 1 % at 256 on the bench corpus) but lose more work to a kill
    let chunk_docs = args.chunk_docs.unwrap_or((args.batch_size * 16).max(64)).max(1);
    for batch in annotator.records(items, chunk_docs) {
        for record in &batch {
            docs += 1;
            entities += record.entities.len() as u64;
            if let Some(e) = &record.error {
                errors += 1;
                progress.suspend(|| eprintln!("postilla: {}: {} ({})", record.id, e.message, e.kind));
            }
            writer.write(record).with_context(hint)?;
        }
        if args.resume {
            writer.sync().with_context(hint)?;
        } else {
            writer.flush().with_context(hint)?;
        }
        progress.inc(batch.len() as u64);
    }
    writer.sync().with_context(hint)?;
    drop(writer);
    if let Some(partial) = target {
        std::fs::rename(&partial, &args.output)
            .with_context(|| format!("renaming {} to {}", partial.display(), args.output.display()))?;
    }
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "postilla: {docs} documents, {entities} entities, {errors} errors in {secs:.2} s ({:.1} docs/s) -> {}",
        docs as f64 / secs.max(1e-9),
        args.output.display()
    );
    Ok(if errors > 0 { Outcome::PartialFailure } else { Outcome::Success })
}

/// The value of `--topic-calibration` that calibrates on the input.
const AUTO: &str = "auto";

/// `--topic-calibration auto`: reuses OUT.topic-calibration.json under --resume, else draws
/// the sample from every input (all shards alike), calibrates and writes the file.
fn auto_calibrate(annotator: &mut Annotator, args: &AnnotateArgs) -> anyhow::Result<()> {
    let path = sibling(&args.output, ".topic-calibration.json");
    let origin = path.display().to_string();
    if args.resume && path.exists() {
        let calibration = TopicCalibration::read(&path)?;
        annotator.apply_topic_calibration(&calibration, &origin, Some(args.topic_calibration_sample))?;
        eprintln!("postilla: resume: reusing the topic calibration {origin}");
        return Ok(());
    }
    if args.inputs.iter().any(|i| i == "-") {
        bail!("--topic-calibration auto reads the input twice (first to sample it): standard input cannot be read twice; save it to a file");
    }
    let mut sample = CalibrationSample::new(args.topic_calibration_sample);
    let mut items = Vec::new();
    for arg in &args.inputs {
        items.push(read_input(arg).with_context(|| format!("input {arg}"))?);
    }
    for doc in flag_duplicates(items.into_iter().flatten()).flatten() {
        if let Some(lang) = annotator.topic_language(&doc.text) {
            sample.offer(lang, &doc.id, &doc.text);
        }
    }
    let sizes: Vec<String> = sample.texts().iter().map(|(l, t)| format!("{l} {}", t.len())).collect();
    match annotator.calibrate_topics(&sample, &origin)? {
        Some(calibration) => {
            calibration.write(&path)?;
            let left: Vec<&String> = sample.offered().keys().filter(|l| !calibration.texts.contains_key(*l)).collect();
            let note = if left.is_empty() {
                String::new()
            } else {
                format!("; too few documents, uncalibrated: {}", left.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", "))
            };
            eprintln!("postilla: topic calibration on a sample of the input ({}){note} -> {origin}", sizes.join(", "));
        }
        None => eprintln!(
            "postilla: note: --topic-calibration auto: fewer than {} documents in every language ({}): topics are uncalibrated",
            TopicCalibration::MIN_TEXTS,
            sizes.join(", ")
        ),
    }
    Ok(())
}

/// Refuses an output whose directory does not exist, before any model is loaded.
fn check_output(output: &Path) -> anyhow::Result<()> {
    let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!("output directory {} does not exist", parent.display());
    }
    if output.is_dir() {
        bail!("output {} is a directory", output.display());
    }
    Ok(())
}

fn partial_path(output: &Path) -> PathBuf {
    sibling(output, ".partial")
}

/// `output` with `suffix` appended to its file name.
fn sibling(output: &Path, suffix: &str) -> PathBuf {
    let mut name = output.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    output.with_file_name(name)
}

/// Number of documents an input will yield, when cheap to know.
fn count_hint(arg: &str) -> Option<u64> {
    if arg == "-" {
        return None;
    }
    let path = Path::new(arg);
    if path.is_dir() {
        fn walk(p: &Path) -> u64 {
            std::fs::read_dir(p).map_or(0, |rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .map(|p| if p.is_dir() { walk(&p) } else { u64::from(p.extension().is_some_and(|e| e == "txt")) })
                    .sum()
            })
        }
        return Some(walk(path));
    }
    if path.extension().is_some_and(|e| e == "jsonl") {
        let text = std::fs::read(path).ok()?;
        return Some(text.split(|&b| b == b'\n').filter(|l| l.iter().any(|b| !b.is_ascii_whitespace())).count() as u64);
    }
    Some(1)
}

/// A progress bar with documents/s and ETA on a terminal, hidden otherwise.
fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match total {
        Some(n) => {
            let bar = ProgressBar::new(n);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} docs  {per_sec}  ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} docs  {per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        }
    }
}
