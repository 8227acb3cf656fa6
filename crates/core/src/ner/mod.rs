//! Named-entity recognition: Postilla's own token-classification pipeline around rust-bert's
//! model architectures.
//!
//! Stages, one module each: [`model`] (load the network), tokenization with code-point offsets
//! ([`crate::text`]), [`windows`] (long documents), batched forward passes (here), [`decode`]
//! (words, aggregation, tags) over [`labels`], [`function_words`] (no entity ends on "di",
//! "von" or "of"), and [`country_pairs`] and [`person_pairs`] (two state names, or two people
//! the document names apart, joined by a hyphen are two entities).
//!
//! ```no_run
//! use postilla_core::ner::{NerOptions, NerPipeline};
//! let ner = NerPipeline::load("models/ner-it-de".as_ref(), NerOptions::default())?;
//! let docs = ["Mario Draghi ha incontrato Olaf Scholz a Berlino."];
//! for entities in ner.predict(&docs)? {
//!     for e in entities {
//!         println!("{} [{}, {}) {} {:.3}", e.label, e.start, e.end, e.text, e.score);
//!     }
//! }
//! # Ok::<(), postilla_core::ModelError>(())
//! ```

pub mod country_pairs;
pub mod decode;
pub mod function_words;
pub mod labels;
pub mod model;
pub mod person_pairs;
pub mod tokens;
pub mod windows;

use std::path::{Path, PathBuf};

use tch::{Device, Kind};

use decode::Decoder;
pub use decode::{Aggregation, DecodedEntity, Decoding, FunctionWords, WordBoundaries, WordRule};
use labels::LabelSet;
use model::TokenClassifier;
use windows::WindowPlan;

use crate::error::ModelError;
use crate::model::batch::PaddedBatch;
use crate::model::{DeviceChoice, Engine, Precision};
use postilla_annotator::input::token_problem;
use tokens::{DocTokenizer, DocTokens};

/// Parameters that change a NER run's output (recorded in provenance) or its speed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NerOptions {
    /// Tokens per window, special tokens included; capped at what the model can take.
    pub max_length: usize,
    /// Tokens shared by consecutive windows.
    pub stride: usize,
    /// Windows per forward pass.
    pub batch_size: usize,
    /// Subword aggregation.
    pub aggregation: Aggregation,
    /// Word boundaries: at punctuation too (the default, as the gold sets tokenise) or
    /// exactly Hugging Face's.
    pub word_boundaries: WordBoundaries,
    /// Whether a text's own tokens, when it comes with them ([`NerInput::words`]), are its
    /// words (the default) instead of `word_boundaries`' rule.
    #[serde(default = "yes")]
    pub input_tokens: bool,
    /// How word labels become entities: Viterbi (the most probable well-formed tag sequence,
    /// the default) or greedy (Hugging Face's grouping of each word's most probable label).
    /// Options serialised before it existed read as greedy, the decoding they ran.
    #[serde(default = "greedy")]
    pub decoding: Decoding,
    /// Whether an entity's trailing function words are cut ("Tribunale di" → "Tribunale"; the
    /// default) or kept as the tags group them (Hugging Face). Options serialised before it
    /// existed read as keep, what they ran.
    #[serde(default = "keep")]
    pub function_words: FunctionWords,
    /// How many documents before and after each one in its input the model reads with it as
    /// context ([`NerInput::before`], [`NerInput::after`]; the run attaches them,
    /// [`postilla_annotator::context`]); 0 = none, 4 by default (chosen on dev: README,
    /// *Context*). Options serialised before it existed read as 0, what they ran.
    #[serde(default)]
    pub context: usize,
    /// Device.
    pub device: DeviceChoice,
    /// Forward pass of BERT and XLM-R models (same output; see [`crate::model::encoder`]).
    pub engine: Engine,
    /// Precision of the forward (see [`crate::model::precision`]); [`Precision::Auto`] by
    /// default (int8 on processors with VNNI instructions, fp32 elsewhere), resolved when the
    /// model is loaded ([`NerPipeline::options`]
    /// reports the precision that runs).
    pub precision: Precision,
}

/// [`FunctionWords::Keep`]: what options serialised before [`NerOptions::function_words`]
/// existed ran.
fn keep() -> FunctionWords {
    FunctionWords::Keep
}

/// `true`: the serde default of options added after their first release.
fn yes() -> bool {
    true
}

/// [`Decoding::Greedy`]: what options serialised before [`NerOptions::decoding`] existed ran.
fn greedy() -> Decoding {
    Decoding::Greedy
}

impl Default for NerOptions {
    fn default() -> Self {
        NerOptions {
            max_length: 256,
            stride: 64,
            batch_size: 16,
            aggregation: Aggregation::First,
            word_boundaries: WordBoundaries::Punctuation,
            input_tokens: true,
            decoding: Decoding::Viterbi,
            function_words: FunctionWords::Trim,
            context: 4,
            device: DeviceChoice::Cpu,
            engine: Engine::default(),
            precision: Precision::Auto,
        }
    }
}

/// An entity predicted in a document, in code points and UTF-8 bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct NerEntity {
    /// First code point.
    pub start: usize,
    /// One past the last code point.
    pub end: usize,
    /// First byte.
    pub byte_start: usize,
    /// One past the last byte.
    pub byte_end: usize,
    /// Entity type.
    pub label: String,
    /// Mean of the word probabilities.
    pub score: f64,
    /// The surface.
    pub text: String,
}

/// A text to label and, when it is pre-tokenised, its own tokens.
#[derive(Debug, Clone, Copy)]
pub struct NerInput<'a> {
    /// The text.
    pub text: &'a str,
    /// Its tokens as code-point spans, in order and not overlapping (as `postilla import`
    /// writes them into gold records); with [`NerOptions::input_tokens`] they are the words
    /// the model's labels are read on, so that entities start and end at token boundaries.
    pub words: Option<&'a [[usize; 2]]>,
    /// Text read before it as context (the documents before it in its input), never labelled;
    /// empty for none. The model reads as much of its end as fits the text's window.
    pub before: &'a str,
    /// Text read after it as context, never labelled; empty for none. The model reads as much
    /// of its start as fits the text's window.
    pub after: &'a str,
}

impl<'a> NerInput<'a> {
    /// A raw text without context: words by [`NerOptions::word_boundaries`].
    pub fn raw(text: &'a str) -> Self {
        NerInput { text, words: None, before: "", after: "" }
    }
}

/// A loaded NER model with its tokenizer and options.
pub struct NerPipeline {
    classifier: TokenClassifier,
    tokenizer: DocTokenizer,
    /// The label set and its transitions, built once.
    decoder: Decoder,
    capacity: usize,
    options: NerOptions,
    dir: PathBuf,
}

impl std::fmt::Debug for NerPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NerPipeline").field("dir", &self.dir).field("options", &self.options).finish()
    }
}

impl NerPipeline {
    /// Loads a token-classification model directory.
    pub fn load(dir: &Path, options: NerOptions) -> Result<Self, ModelError> {
        let device = options.device.to_tch()?;
        let classifier = TokenClassifier::load(dir, device, options.engine, options.precision)?;
        // the options report what runs: `auto` resolved (as `max_length` is capped below)
        let mut options = options;
        options.precision = classifier.precision();
        let labels = LabelSet::from_id2label(&classifier.id2label)
            .map_err(|m| ModelError::MissingLabel { path: dir.join("config.json"), class: m.0 })?;
        let tokenizer = DocTokenizer::from_dir(dir)?;
        let n_special = tokenizer.n_special();
        let usable = classifier.architecture.usable_positions(classifier.max_position_embeddings);
        let max_length = options.max_length.min(usable);
        if max_length <= n_special + options.stride {
            return Err(ModelError::Config {
                path: dir.into(),
                message: format!(
                    "max length {max_length} leaves no room for stride {} and {n_special} special tokens",
                    options.stride
                ),
            });
        }
        let capacity = max_length - n_special;
        let decoder =
            Decoder::new(labels, options.aggregation, options.decoding).with_function_words(options.function_words);
        Ok(NerPipeline { classifier, tokenizer, decoder, capacity, options, dir: dir.into() })
    }

    /// The options in force; `max_length` is the effective one (capped by the model).
    pub fn options(&self) -> NerOptions {
        NerOptions { max_length: self.capacity + self.tokenizer.n_special(), ..self.options.clone() }
    }

    /// The entity types the model predicts.
    pub fn entity_types(&self) -> Vec<String> {
        self.decoder.labels().entity_types()
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Predicts the entities of each raw text (words by [`NerOptions::word_boundaries`]); see
    /// [`NerPipeline::predict_inputs`].
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Vec<NerEntity>>, ModelError> {
        let inputs: Vec<NerInput> = texts.iter().map(|t| NerInput::raw(t)).collect();
        self.predict_inputs(&inputs)
    }

    /// Predicts the entities of each text, on its own tokens where it has them and
    /// [`NerOptions::input_tokens`] is on. Windows of all texts are batched together (sorted
    /// by length to minimise padding), so the result does not depend on `batch_size` or on the
    /// order of the texts.
    pub fn predict_inputs(&self, inputs: &[NerInput]) -> Result<Vec<Vec<NerEntity>>, ModelError> {
        for (index, input) in inputs.iter().enumerate() {
            if let Some(message) = input.words.and_then(|w| token_problem(w, input.text.chars().count())) {
                return Err(ModelError::InvalidWords { index, message });
            }
        }
        let mut docs: Vec<DocTokens> =
            inputs.iter().map(|i| self.tokenizer.tokenize(i.text)).collect::<Result<_, _>>()?;
        let read: Vec<ReadTokens> =
            inputs.iter().zip(&docs).map(|(i, d)| self.with_context(i, d)).collect::<Result<_, _>>()?;
        let plans: Vec<WindowPlan> =
            read.iter().map(|r| WindowPlan::new(r.ids.len(), self.capacity, self.options.stride)).collect();
        // every window of every document: (doc, window index)
        let mut jobs: Vec<(usize, usize)> = plans
            .iter()
            .enumerate()
            .flat_map(|(d, p)| (0..p.windows.len()).map(move |w| (d, w)))
            .filter(|&(d, w)| plans[d].windows[w].1 > plans[d].windows[w].0)
            .collect();
        jobs.sort_by_key(|&(d, w)| {
            let (a, b) = plans[d].windows[w];
            (std::cmp::Reverse(b - a), d, w)
        });
        let _guard = tch::no_grad_guard();
        for batch in jobs.chunks(self.options.batch_size.max(1)) {
            let probs = self.forward(batch.iter().map(|&(d, w)| {
                let (a, b) = plans[d].windows[w];
                &read[d].ids[a..b]
            }))?;
            for (row, &(d, w)) in probs.into_iter().zip(batch) {
                let (a, b) = plans[d].windows[w];
                let own = read[d].own.clone();
                for (k, t) in (a..b).enumerate() {
                    if plans[d].owner[t] == w && own.contains(&t) {
                        docs[d].tokens[t - own.start].probs = row[k].clone();
                    }
                }
            }
        }
        Ok(inputs
            .iter()
            .zip(&docs)
            .map(|(input, doc)| {
                let decoded = match input.words.filter(|_| self.options.input_tokens) {
                    Some(words) => self.decoder.entities_in_words(&doc.tokens, &doc.chars, words),
                    None => self.decoder.entities(
                        &doc.tokens,
                        &doc.chars,
                        &self.tokenizer.word_rule,
                        self.options.word_boundaries,
                    ),
                };
                to_entities(input.text, &doc.chars, decoded)
            })
            .collect())
    }

    /// The tokens the model reads for `input` (tokenised as `doc`): its own, with as much of
    /// its context as fills its window — the end of `before` and the start of `after`, half
    /// the room each, the rest to the side that has more. A text that fills its window alone
    /// is read alone (its windows give it context of its own).
    fn with_context(&self, input: &NerInput, doc: &DocTokens) -> Result<ReadTokens, ModelError> {
        let n = doc.ids.len();
        let room = self.capacity.saturating_sub(n);
        if room == 0 || (input.before.is_empty() && input.after.is_empty()) {
            return Ok(ReadTokens { ids: doc.ids.clone(), own: 0..n });
        }
        let ids_of = |text: &str| -> Result<Vec<i64>, ModelError> {
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            Ok(self.tokenizer.tokenize(text)?.ids)
        };
        let (before, after) = (ids_of(input.before)?, ids_of(input.after)?);
        let mut left = before.len().min(room / 2);
        let right = after.len().min(room - left);
        left = before.len().min(room - right);
        let mut ids = Vec::with_capacity(left + n + right);
        ids.extend_from_slice(&before[before.len() - left..]);
        ids.extend_from_slice(&doc.ids);
        ids.extend_from_slice(&after[..right]);
        Ok(ReadTokens { ids, own: left..left + n })
    }

    /// One padded forward pass; returns per window, per content token, the label
    /// probabilities (softmax over the logits).
    fn forward<'a>(&self, windows: impl Iterator<Item = &'a [i64]>) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
        let rows: Vec<Vec<i64>> = windows
            .map(|w| self.tokenizer.bos.into_iter().chain(w.iter().copied()).chain(self.tokenizer.eos).collect())
            .collect();
        let PaddedBatch { ids, mask, len: max_len } =
            PaddedBatch::new(&rows, self.classifier.pad_token_id, self.classifier.device());
        let logits = self.classifier.logits(&ids, &mask)?;
        let probs = logits.to_kind(Kind::Float).softmax(-1, Kind::Float).to(Device::Cpu).contiguous();
        let n_labels = self.decoder.labels().len();
        let flat: Vec<f32> = Vec::<f32>::try_from(probs.view([-1]))?;
        let offset = usize::from(self.tokenizer.bos.is_some());
        Ok(rows
            .iter()
            .enumerate()
            .map(|(r, row)| {
                let content = row.len() - offset - usize::from(self.tokenizer.eos.is_some());
                (0..content)
                    .map(|k| {
                        let base = (r * max_len + offset + k) * n_labels;
                        flat[base..base + n_labels].to_vec()
                    })
                    .collect()
            })
            .collect())
    }
}

/// The token ids the model reads for one text: its own, possibly between context tokens.
struct ReadTokens {
    /// Context before, the text's own tokens, context after.
    ids: Vec<i64>,
    /// Where the text's own tokens are in `ids`.
    own: std::ops::Range<usize>,
}

fn to_entities(text: &str, chars: &[char], decoded: Vec<DecodedEntity>) -> Vec<NerEntity> {
    let mut byte_of = Vec::with_capacity(chars.len() + 1);
    byte_of.extend(text.char_indices().map(|(i, _)| i));
    byte_of.push(text.len());
    decoded
        .into_iter()
        .map(|e| NerEntity {
            byte_start: byte_of[e.start],
            byte_end: byte_of[e.end],
            text: text[byte_of[e.start]..byte_of[e.end]].to_owned(),
            start: e.start,
            end: e.end,
            label: e.label,
            score: e.score,
        })
        .collect()
}
