//! The arguments of `postilla annotate` and their translation into the library's
//! configuration ([`AnnotatorConfig`], [`RunOptions`]). Defaults and policies live in the
//! library ([`postilla_core::defaults`]); this file only maps flags onto them.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use postilla_core::annotate::{AnnotatorConfig, TopicMethod, TopicsConfig};
use postilla_core::defaults::{self, DefaultAdapter};
use postilla_core::model::{DeviceChoice, Engine, MatmulKernel, Precision};
use postilla_core::ner::{Aggregation, Decoding, FunctionWords, NerOptions, WordBoundaries};
use postilla_core::run::RunOptions;
use postilla_core::topics::{EmbeddingOptions, NliOptions, TopicAdapter, TopicCalibration};

/// The value of `--topic-calibration` that calibrates on the input.
const AUTO: &str = "auto";

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
    /// The adapter to use with the encoder in `model_dir`, with a name for messages: the one
    /// given, none, or the library's default policy ([`defaults::default_topic_adapter`]).
    pub fn resolve(&self, model_dir: &Path) -> anyhow::Result<Option<(TopicAdapter, String)>> {
        if self.no_topic_adapter {
            return Ok(None);
        }
        if let Some(path) = &self.topic_adapter {
            return Ok(Some((TopicAdapter::read(path)?, path.display().to_string())));
        }
        match defaults::default_topic_adapter(model_dir)? {
            DefaultAdapter::Shipped(adapter, origin) => Ok(Some((adapter, origin))),
            DefaultAdapter::OtherEncoder => {
                eprintln!(
                    "postilla: note: the shipped topic adapter was trained on another encoder than {}: scoring without it",
                    model_dir.display()
                );
                Ok(None)
            }
        }
    }
}

/// Arguments of `postilla annotate`.
#[derive(Args, Debug)]
pub struct AnnotateArgs {
    /// Inputs: directories (every *.txt below, id = relative path without .txt), .txt files,
    /// .jsonl files of {"id","text"} objects, or - for JSONL on standard input.
    #[arg(required = true)]
    pub(super) inputs: Vec<String>,
    /// Output JSONL file (written to OUT.partial and renamed when the run completes).
    #[arg(short, long)]
    pub(super) output: PathBuf,
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
    /// Ignore the tokens of pre-tokenised input. By default a JSONL document that carries
    /// "tokens" ([start, end] code points, as `postilla import` writes them) is labelled word
    /// by word on those tokens, so entities start and end at token boundaries and never cross
    /// a line (its lines are its sentences); with this flag its words come from
    /// --word-boundaries, as for raw text.
    #[arg(long)]
    ignore_input_tokens: bool,
    /// How word labels become entities: viterbi (the most probable well-formed tag sequence:
    /// an I- tag only continues an entity of its own type, and nothing continues across a
    /// glued sentence mark) or greedy (each word's most probable label, grouped as Hugging
    /// Face's pipeline does; with --word-boundaries huggingface and --function-words keep, the
    /// pipeline's exact output).
    #[arg(long, default_value = "viterbi")]
    decoding: Decoding,
    /// Entity ends: trim (an entity never ends on a lowercase preposition, article or
    /// conjunction of Italian, German or English standing as a word of its own: "Tribunale di"
    /// gives "Tribunale", and an entity of such words only is dropped) or keep (spans as the
    /// tags group them; with --word-boundaries huggingface --decoding greedy, the Hugging Face
    /// pipeline's exact output).
    #[arg(long, default_value = "trim")]
    function_words: FunctionWords,
    /// Documents before and after each one in its input that the NER model reads with it as
    /// context, never labelled (FLERT): for a corpus split into sentences, one record each,
    /// in document order (KIND, EVALITA). The model reads as much of them as fills the
    /// document's window (--max-length tokens), so a document that fills it alone is unaffected.
    /// Neighbours are fixed by input order, so --shard and --resume give a single run's output.
    /// 0 turns it off; 4, the default, was chosen on dev (KIND WN and CoNLL-2003 German).
    #[arg(long, default_value_t = 4)]
    context: usize,
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
    /// Precision of the NER model's forward: auto (the default: the fastest precision measured
    /// within 0.2 dev F1 points of fp32 on this kind of processor: int8 on processors with
    /// VNNI instructions, avx512_vnni or avx_vnni; fp32 elsewhere and on GPUs; provenance
    /// records the one that ran); fp32 (the reference of every model card figure); bf16
    /// (processors with avx512_bf16 or amx_bf16 only, refused elsewhere; its entities depend
    /// slightly on batching); int8 (every linear layer in int8: per-channel weights, activations
    /// quantized per token, exact integer products; the same entities whatever the batching;
    /// CPU only, the fastest; 7-bit weights on processors without VNNI, whose int8 kernel
    /// would saturate with 8). Each one's dev F1 and speed: README, "Precision".
    #[arg(long, default_value = "auto")]
    precision: Precision,
    /// Precision of the embedding topic encoder: fp32 (the default: every topic figure of the
    /// README is fp32), bf16, int8, or auto (as --precision's rule).
    #[arg(long, default_value = "fp32")]
    topic_precision: Precision,
    /// Copy each document's text into its record, and a pre-tokenised document's `tokens` too
    /// (an export to CoNLL then keeps the input's tokens).
    #[arg(long)]
    with_text: bool,
    /// Continue an interrupted run: documents already in OUT (same id, text, input tokens and
    /// configuration) are skipped, one whose text or tokens changed is refused, a torn last
    /// line is cut off; OUT is appended in place with an fsync per batch. (Without --resume,
    /// OUT.partial is written and renamed at the end.)
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
    #[arg(long, default_value = defaults::TOPIC_MODEL_DIR)]
    topic_model: PathBuf,
    /// Assign every topic above its threshold instead of ranking all topics.
    #[arg(long)]
    multi_label: bool,
    /// Multi-label threshold: cosine for embedding (topics may set their own), entailment
    /// probability for nli. Defaults: the topic adapter's (0.121 for the shipped one), 0.82
    /// for plain e5 cosines (--no-topic-adapter), 0.5 for nli.
    #[arg(long)]
    topic_threshold: Option<f64>,
    /// Embedding method, multi-label, calibrated languages (--topic-calibration): assign a
    /// topic when its cosine lies Z standard deviations above its mean over the calibration
    /// sample, instead of an absolute cosine threshold; `off` keeps the absolute threshold.
    /// Default: 1.0 (chosen on SIB-200 train).
    #[arg(long, value_parser = parse_relative_threshold)]
    topic_relative_threshold: Option<RelativeThreshold>,
    /// Embedding method: add a long document's lead (its first 400 characters: title and first
    /// sentences), with this weight, to its whole-text embedding (0: whole text only).
    #[arg(long, default_value_t = 0.0, value_parser = parse_lead_weight)]
    topic_lead_weight: f64,
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

impl AnnotateArgs {
    /// The models and options to load.
    pub(super) fn annotator_config(&self) -> anyhow::Result<AnnotatorConfig> {
        let ner = self.ner_dir()?.map(|dir| (dir, self.ner_options()));
        let topics = if self.no_topics { None } else { Some(self.topics_config()?) };
        Ok(AnnotatorConfig { ner, topics, with_text: self.with_text, threads: self.threads })
    }

    /// The run over the inputs.
    pub(super) fn run_options(&self) -> anyhow::Result<RunOptions> {
        let auto = self.topic_calibration.as_deref() == Some(AUTO);
        if auto && self.no_topics {
            bail!("--topic-calibration auto calibrates topics, which --no-topics turns off");
        }
        Ok(RunOptions {
            inputs: self.inputs.clone(),
            output: self.output.clone(),
            shard: self.shard.as_deref().map(str::parse).transpose()?,
            resume: self.resume,
            // windows are sorted by length within a chunk of documents: larger chunks pad less
            // (3.4 % of the tokens at 64 documents, 1 % at 256 on the bench corpus) but lose
            // more work to a kill
            chunk_docs: self.chunk_docs.unwrap_or((self.batch_size * 16).max(64)).max(1),
            auto_calibration: auto.then_some(self.topic_calibration_sample),
        })
    }

    /// `--ner`, else the default model when it is built; `None` under `--no-ner`.
    fn ner_dir(&self) -> anyhow::Result<Option<PathBuf>> {
        let default = defaults::NER_MODEL_DIR;
        Ok(match &self.ner {
            _ if self.no_ner => None,
            Some(dir) => Some(dir.clone()),
            None if Path::new(default).join("model.safetensors").exists() => Some(PathBuf::from(default)),
            None => {
                bail!("the default NER model {default} is not built: run `just setup` (or pass --ner DIR, or --no-ner)")
            }
        })
    }

    fn engine(&self) -> Engine {
        match self.engine {
            Engine::Fused(_) => Engine::Fused(self.matmul),
            other => other,
        }
    }

    fn ner_options(&self) -> NerOptions {
        NerOptions {
            engine: self.engine(),
            max_length: self.max_length,
            stride: self.stride,
            batch_size: self.batch_size,
            aggregation: self.aggregation,
            word_boundaries: self.word_boundaries,
            input_tokens: !self.ignore_input_tokens,
            decoding: self.decoding,
            function_words: self.function_words,
            context: self.context,
            device: self.device,
            precision: self.precision,
        }
    }

    fn topics_config(&self) -> anyhow::Result<TopicsConfig> {
        let taxonomy = defaults::taxonomy_or_news(self.topics.as_deref())?;
        defaults::require_topic_model(&self.topic_model)?;
        let nli = self.topic_method == "nli";
        // the NLI method uses no adapter; one given explicitly goes on so that the annotator
        // refuses it, as it refuses a calibration
        let adapter = if nli && self.topic_adapter.topic_adapter.is_none() {
            None
        } else {
            self.topic_adapter.resolve(&self.topic_model)?
        };
        let method = if nli {
            TopicMethod::Nli(NliOptions {
                multi_label: self.multi_label,
                threshold: self.topic_threshold.unwrap_or(0.5),
                aggregate: self.aggregate,
                batch_size: self.batch_size,
                max_length: 512,
                device: self.device,
            })
        } else {
            let defaults = EmbeddingOptions::defaults_for(adapter.as_ref().map(|(a, _)| a));
            TopicMethod::Embedding(EmbeddingOptions {
                temperature: self.topic_temperature.unwrap_or(defaults.temperature),
                multi_label: self.multi_label,
                threshold: self.topic_threshold.unwrap_or(defaults.threshold),
                relative_threshold: self
                    .topic_relative_threshold
                    .map_or(Some(postilla_core::topics::embedding::DEFAULT_RELATIVE_THRESHOLD), |r| r.0),
                lead_weight: self.topic_lead_weight,
                batch_size: self.batch_size,
            })
        };
        let calibration = match self.topic_calibration.as_deref() {
            Some(AUTO) | None => None,
            Some(path) => Some((TopicCalibration::read(Path::new(path))?, path.to_owned())),
        };
        Ok(TopicsConfig {
            taxonomy,
            model_dir: self.topic_model.clone(),
            method,
            device: self.device,
            engine: self.engine(),
            precision: self.topic_precision,
            calibration,
            adapter,
        })
    }
}

/// `--topic-relative-threshold`: a number of standard deviations, or `off`.
#[derive(Debug, Clone, Copy)]
pub struct RelativeThreshold(Option<f64>);

fn parse_relative_threshold(s: &str) -> Result<RelativeThreshold, String> {
    if s == "off" {
        return Ok(RelativeThreshold(None));
    }
    match s.parse::<f64>() {
        Ok(z) if z.is_finite() => Ok(RelativeThreshold(Some(z))),
        _ => Err(format!("{s:?} is neither a number of standard deviations nor `off`")),
    }
}

fn parse_lead_weight(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(w) if w.is_finite() && w >= 0.0 => Ok(w),
        _ => Err(format!("{s:?} is not a weight (a number >= 0)")),
    }
}
