//! The library entry point: load the models once, annotate documents in batches, get
//! `postilla/1` records. The `postilla annotate` command is a thin layer over this.
//!
//! ```no_run
//! use postilla_core::annotate::{Annotator, AnnotatorConfig};
//! use postilla_core::annotator::input::Document;
//! use postilla_core::ner::NerOptions;
//!
//! let config = AnnotatorConfig { ner: Some(("models/ner-it-de".into(), NerOptions::default())), ..Default::default() };
//! let annotator = Annotator::new(config)?;
//! let docs = vec![Document { id: "a".into(), text: "Sergio Mattarella è a Parigi.".into(), source: "example".into() }];
//! for record in annotator.annotate(&docs) {
//!     println!("{}", serde_json::to_string(&record).unwrap());
//! }
//! # Ok::<(), postilla_core::ModelError>(())
//! ```

use std::path::{Path, PathBuf};

use postilla_annotator::input::{Document, InputItem};
use postilla_annotator::record::{AnnotationRecord, EntitySpan, LanguageTag, TopicScore};
use serde_json::{json, Value};

use crate::embed::SentenceEncoder;
use crate::error::ModelError;
use crate::lang::LanguageIdentifier;
use crate::model::manifest::{hash_file, MANIFEST_FILE};
use crate::model::verify_model_dir;
use crate::model::weights_file;
use crate::model::{DeviceChoice, Engine, Precision};
use crate::ner::{NerOptions, NerPipeline};
use crate::topics::{
    CalibrationError, CalibrationSample, EmbeddingOptions, EmbeddingTopicScorer, NliOptions, NliTopicScorer,
    TopicAdapter, TopicCalibration, TopicScorer, TopicTaxonomy,
};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct AnnotatorConfig {
    /// NER model directory and options; `None` = no entities.
    pub ner: Option<(PathBuf, NerOptions)>,
    /// Topics; `None` = no topics.
    pub topics: Option<TopicsConfig>,
    /// Copy each document's text into its record.
    pub with_text: bool,
    /// Threads libtorch may use (`None` = libtorch's default).
    pub threads: Option<usize>,
}

/// Which topic method, with its options.
#[derive(Debug, Clone)]
pub enum TopicMethod {
    /// Embedding similarity (default).
    Embedding(EmbeddingOptions),
    /// NLI cross-encoder.
    Nli(NliOptions),
}

/// Topic scoring.
#[derive(Debug, Clone)]
pub struct TopicsConfig {
    /// The taxonomy.
    pub taxonomy: TopicTaxonomy,
    /// Model directory (an encoder such as `models/e5-small`, or an NLI classifier).
    pub model_dir: PathBuf,
    /// Method and options.
    pub method: TopicMethod,
    /// Calibration of the embedding method (see [`crate::topics::calibration`]), with a name
    /// for messages (e.g. its path); refused with the NLI method.
    pub calibration: Option<(TopicCalibration, String)>,
    /// Topic adapter of the embedding method (see [`crate::topics::adapter`]), with a name for
    /// messages (e.g. its path); refused with the NLI method.
    pub adapter: Option<(TopicAdapter, String)>,
    /// Device.
    pub device: DeviceChoice,
    /// Forward pass of the embedding method's encoder.
    pub engine: Engine,
    /// Precision of the embedding method's encoder (see [`crate::model::precision`]).
    pub precision: Precision,
}

/// Loaded models, ready to annotate. For CPU speed, call
/// [`crate::runtime::tune_allocator`] once at start-up, as the `postilla` binary does.
pub struct Annotator {
    ner: Option<NerPipeline>,
    topics: Option<TopicScorer>,
    lang: LanguageIdentifier,
    provenance: Value,
    with_text: bool,
}

impl std::fmt::Debug for Annotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Annotator").field("provenance", &self.provenance).finish()
    }
}

/// Identity of a model directory for provenance: its name and the sha256 of its weights.
///
/// A directory with a `manifest.json` (every model Postilla builds) is first verified against
/// it, and against the project's pinned manifest when there is one
/// ([`crate::model::verify_model_dir`]): a missing, truncated or corrupted file is refused
/// before anything is loaded, and the sha256 written into provenance is the one the files
/// really have. Without a manifest the weights file is hashed.
pub fn model_identity(dir: &Path) -> Result<Value, ModelError> {
    let sha = match dir.join(MANIFEST_FILE).exists() {
        true => verify_model_dir(dir)?.weights_sha256().map(str::to_owned),
        false => None,
    };
    let sha = match sha {
        Some(s) => s,
        None => hash_file(&weights_file(dir)?)?.sha256,
    };
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
    Ok(json!({"id": id, "path": dir.display().to_string(), "sha256": sha}))
}

impl Annotator {
    /// Loads the configured models.
    pub fn new(config: AnnotatorConfig) -> Result<Self, ModelError> {
        if let Some(n) = config.threads {
            crate::runtime::set_threads(n);
        }
        let mut provenance = json!({"tool": crate::TOOL, "params": {}});
        let ner = match &config.ner {
            Some((dir, options)) => {
                provenance["ner_model"] = model_identity(dir)?;
                let pipeline = NerPipeline::load(dir, options.clone())?;
                let effective = pipeline.options();
                provenance["params"]["max_length"] = json!(effective.max_length);
                provenance["params"]["stride"] = json!(effective.stride);
                provenance["params"]["aggregation"] = json!(effective.aggregation.as_str());
                provenance["params"]["word_boundaries"] = json!(effective.word_boundaries.as_str());
                provenance["params"]["precision"] = json!(effective.precision.as_str());
                Some(pipeline)
            }
            None => None,
        };
        // a calibration FILE is applied once the annotator exists (as `auto` applies its own)
        let mut file_calibration = None;
        let topics = match config.topics {
            Some(mut t) => {
                file_calibration = t.calibration.take();
                provenance["topic_model"] = model_identity(&t.model_dir)?;
                provenance["params"]["topic_taxonomy"] = json!({"name": t.taxonomy.name, "sha256": t.taxonomy.sha256});
                Some(match t.method {
                    TopicMethod::Embedding(options) => {
                        provenance["params"]["topic_method"] = json!("embedding");
                        provenance["params"]["topic_temperature"] = json!(options.temperature);
                        provenance["params"]["topic_multi_label"] = json!(options.multi_label);
                        if options.multi_label {
                            provenance["params"]["topic_threshold"] = json!(options.threshold);
                        }
                        let encoder = SentenceEncoder::load_with(&t.model_dir, t.device, t.engine, t.precision)?;
                        provenance["params"]["topic_precision"] = json!(t.precision.as_str());
                        let model_sha = provenance["topic_model"]["sha256"].as_str().unwrap_or_default().to_owned();
                        let scorer = match t.adapter {
                            Some((adapter, origin)) => {
                                provenance["params"]["topic_adapter"] =
                                    json!({"sha256": adapter.sha256(), "rank": adapter.rank()});
                                EmbeddingTopicScorer::with_adapter(
                                    encoder, t.taxonomy, options, adapter, &model_sha, &origin,
                                )?
                            }
                            None => EmbeddingTopicScorer::new(encoder, t.taxonomy, options)?,
                        };
                        TopicScorer::Embedding(scorer)
                    }
                    TopicMethod::Nli(options) => {
                        if let Some((_, origin)) = &file_calibration {
                            return Err(ModelError::Config {
                                path: origin.into(),
                                message: "topic calibrations apply to the embedding method only".into(),
                            });
                        }
                        if let Some((_, origin)) = &t.adapter {
                            return Err(ModelError::Config {
                                path: origin.into(),
                                message: "topic adapters apply to the embedding method only".into(),
                            });
                        }
                        provenance["params"]["topic_method"] = json!("nli");
                        provenance["params"]["topic_templates"] = json!(t.taxonomy.templates);
                        provenance["params"]["topic_multi_label"] = json!(options.multi_label);
                        provenance["params"]["topic_aggregate"] =
                            json!(if options.aggregate == crate::topics::ChunkAggregation::Max {
                                "max"
                            } else {
                                "mean"
                            });
                        if options.multi_label {
                            provenance["params"]["topic_threshold"] = json!(options.threshold);
                        }
                        TopicScorer::Nli(NliTopicScorer::load(
                            &t.model_dir,
                            t.taxonomy,
                            NliOptions { device: t.device, ..options },
                        )?)
                    }
                })
            }
            None => None,
        };
        let mut annotator =
            Annotator { ner, topics, lang: LanguageIdentifier::new(), provenance, with_text: config.with_text };
        if let Some((calibration, origin)) = &file_calibration {
            annotator.apply_topic_calibration(calibration, origin, None)?;
        }
        Ok(annotator)
    }

    /// The provenance written into every record: tool, model ids and weights sha256, and the
    /// parameters that change the output.
    pub fn provenance(&self) -> &Value {
        &self.provenance
    }

    /// Annotates a batch of documents. One record per document, in input order; a document
    /// the models fail on becomes an error record and the others are unaffected.
    pub fn annotate(&self, docs: &[Document]) -> Vec<AnnotationRecord> {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let langs: Vec<Option<LanguageTag>> = texts
            .iter()
            .map(|t| {
                self.lang.detect(t).map(|g| LanguageTag { code: g.code, score: round6(g.score), topic_language: None })
            })
            .collect();
        let entities = match &self.ner {
            None => Some(vec![Vec::new(); docs.len()]),
            Some(ner) => ner.predict(&texts).ok(),
        };
        let topics = self.topics(&texts, &langs);
        match (entities, topics) {
            (Some(entities), Some(topics)) => docs
                .iter()
                .zip(entities)
                .zip(topics)
                .zip(langs)
                .map(|(((d, e), t), l)| self.record(d, l, Ok((e, t))))
                .collect(),
            // isolate the failing document(s): retry one by one
            _ => docs
                .iter()
                .zip(langs)
                .map(|(d, l)| {
                    let text = [d.text.as_str()];
                    let one = self.ner.as_ref().map_or(Ok(vec![Vec::new()]), |n| n.predict(&text));
                    let topics = self
                        .topics(&text, std::slice::from_ref(&l))
                        .ok_or_else(|| ModelError::Tokenizer("topic scoring failed on this document".into()));
                    let result =
                        one.and_then(|mut e| Ok((e.pop().unwrap_or_default(), topics?.pop().unwrap_or_default())));
                    self.record(d, l, result)
                })
                .collect(),
        }
    }

    /// The taxonomy language a text's topics are scored in (its detected language when the
    /// taxonomy has it, else the taxonomy's fallback); `None` without topics.
    pub fn topic_language(&self, text: &str) -> Option<&str> {
        let scorer = self.topics.as_ref()?;
        let detected = self.lang.detect(text);
        Some(scorer.taxonomy().language_for(detected.as_ref().map(|g| g.code.as_str())).0)
    }

    /// `--topic-calibration auto`: measures a calibration of the embedding method on a sample
    /// of the input (see [`crate::topics::sample`]) and applies it, as
    /// [`Annotator::apply_topic_calibration`] does. Languages with fewer than
    /// [`TopicCalibration::MIN_TEXTS`] sampled documents stay uncalibrated (provenance lists
    /// them); `Ok(None)` when no language has enough, and the run is uncalibrated.
    pub fn calibrate_topics(
        &mut self,
        sample: &CalibrationSample,
        origin: &str,
    ) -> Result<Option<TopicCalibration>, ModelError> {
        let model_sha = self.provenance["topic_model"]["sha256"].as_str().unwrap_or_default().to_owned();
        let scorer = self.embedding_scorer(origin)?;
        let texts = sample.texts();
        let (flat, languages): (Vec<&str>, Vec<&str>) =
            texts.iter().flat_map(|(lang, docs)| docs.iter().map(move |t| (t.as_str(), lang.as_str()))).unzip();
        let calibration = match scorer.calibration(&flat, &languages, &model_sha) {
            Ok(c) => c,
            Err(ModelError::Calibration(CalibrationError::TooFewTexts { .. })) => {
                self.provenance["params"]["topic_calibration"] = json!({
                    "auto": sample.per_language(),
                    "languages": [],
                    "uncalibrated": sample.offered().keys().collect::<Vec<_>>(),
                });
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        self.apply_topic_calibration(&calibration, origin, Some(sample.per_language()))?;
        Ok(Some(calibration))
    }

    /// Applies a calibration to the embedding method after loading (`--topic-calibration auto`
    /// computes one, or reuses the one an interrupted run wrote), checked against the taxonomy,
    /// encoder and adapter; provenance records its sha256, its languages and texts, the
    /// taxonomy languages it leaves uncalibrated and, with `auto`, the sample size per language.
    pub fn apply_topic_calibration(
        &mut self,
        calibration: &TopicCalibration,
        origin: &str,
        auto: Option<usize>,
    ) -> Result<(), ModelError> {
        let model_sha = self.provenance["topic_model"]["sha256"].as_str().unwrap_or_default().to_owned();
        let scorer = self.embedding_scorer(origin)?;
        scorer.calibrate_with(calibration, &model_sha, origin)?;
        let languages: Vec<String> = scorer.calibrated_languages().iter().map(|l| l.to_string()).collect();
        let uncalibrated: Vec<&String> =
            scorer.taxonomy().languages.iter().filter(|l| !languages.contains(l)).collect();
        let mut entry = json!({
            "sha256": calibration.sha256(),
            "languages": languages,
            "texts": calibration.texts,
        });
        if let Some(n) = auto {
            entry["auto"] = json!(n);
            entry["uncalibrated"] = json!(uncalibrated);
        }
        self.provenance["params"]["topic_calibration"] = entry;
        Ok(())
    }

    /// The embedding topic scorer, or an error naming `origin` when topics are off or use NLI.
    fn embedding_scorer(&mut self, origin: &str) -> Result<&mut EmbeddingTopicScorer, ModelError> {
        match &mut self.topics {
            Some(TopicScorer::Embedding(scorer)) => Ok(scorer),
            _ => Err(ModelError::Config {
                path: origin.into(),
                message: "topic calibrations apply to the embedding method only".into(),
            }),
        }
    }

    /// Topic scores per text in the taxonomy language chosen from each detected language;
    /// `None` when scoring failed.
    fn topics(&self, texts: &[&str], langs: &[Option<LanguageTag>]) -> Option<Vec<Vec<(String, f64)>>> {
        let Some(scorer) = &self.topics else {
            return Some(vec![Vec::new(); texts.len()]);
        };
        let chosen: Vec<&str> =
            langs.iter().map(|l| scorer.taxonomy().language_for(l.as_ref().map(|l| l.code.as_str())).0).collect();
        scorer.score(texts, &chosen).ok()
    }

    /// Annotates a stream of input items in batches of `batch_docs` documents; unreadable
    /// inputs become error records in place.
    pub fn records<'a>(
        &'a self,
        items: impl Iterator<Item = InputItem> + 'a,
        batch_docs: usize,
    ) -> impl Iterator<Item = Vec<AnnotationRecord>> + 'a {
        let mut items = items.peekable();
        std::iter::from_fn(move || {
            items.peek()?;
            let chunk: Vec<InputItem> = items.by_ref().take(batch_docs.max(1)).collect();
            let docs: Vec<Document> = chunk.iter().filter_map(|i| i.as_ref().ok().cloned()).collect();
            let mut done = self.annotate(&docs).into_iter();
            Some(
                chunk
                    .into_iter()
                    .map(|item| match item {
                        Ok(_) => done
                            .next()
                            .unwrap_or_else(|| AnnotationRecord::for_error("?", "internal", "record missing")),
                        Err(e) => {
                            let mut r = AnnotationRecord::for_error(&e.id, e.kind, e.message);
                            r.source = Some(e.source);
                            r
                        }
                    })
                    .collect(),
            )
        })
    }

    fn record(
        &self,
        doc: &Document,
        lang: Option<LanguageTag>,
        result: Result<DocumentAnnotations, ModelError>,
    ) -> AnnotationRecord {
        let mut r = AnnotationRecord::for_text(&doc.id, &doc.text);
        r.source = Some(doc.source.clone());
        let (entities, topics) = match result {
            Ok(x) => x,
            Err(e) => {
                r.error = Some(postilla_annotator::RecordError { kind: "model".into(), message: e.to_string() });
                return r;
            }
        };
        r.entities = entities
            .into_iter()
            .map(|e| EntitySpan {
                start: e.start,
                end: e.end,
                label: e.label,
                score: Some(round6(e.score)),
                text: e.text,
            })
            .collect();
        r.topics = topics.into_iter().map(|(label, score)| TopicScore { label, score: Some(round6(score)) }).collect();
        r.lang = lang.map(|mut l| {
            if let Some(scorer) = &self.topics {
                let (used, fallback) = scorer.taxonomy().language_for(Some(&l.code));
                if fallback {
                    l.topic_language = Some(used.to_owned());
                }
            }
            l
        });
        if r.lang.is_none() {
            if let Some(scorer) = &self.topics {
                r.lang = Some(LanguageTag {
                    code: "und".into(),
                    score: 0.0,
                    topic_language: Some(scorer.taxonomy().fallback.clone()),
                });
            }
        }
        if self.with_text {
            r.text = Some(doc.text.clone());
        }
        r.provenance = Some(self.provenance.clone());
        r
    }
}

/// A document's entities and (topic id, score) pairs, before they become a record.
type DocumentAnnotations = (Vec<crate::ner::NerEntity>, Vec<(String, f64)>);

/// Scores are written with 6 decimals.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
