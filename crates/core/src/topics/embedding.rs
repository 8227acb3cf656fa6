//! The embedding method (default, offline): multilingual-e5 with the "query: " prefix on both
//! sides, mean pooling and L2 normalisation; each topic's prototype is the normalised mean of
//! its description embeddings in the document's language; a document (windowed and
//! mean-pooled when long, see [`crate::embed`]) is compared with every prototype by cosine.
//!
//! With a [`TopicAdapter`], documents and descriptions are first mapped by it (see
//! [`super::adapter`]): prototypes are the normalised means of the adapted descriptions.
//!
//! With a [`TopicCalibration`] (computed on unlabelled in-domain text), each cosine first loses
//! its topic's offset in the document's language (see [`super::calibration`]).
//!
//! Scores: single-label = softmax(cosine / temperature) over the topics (default temperature
//! 0.02: e5 cosines between a text and short descriptions lie in a narrow band, roughly
//! 0.75–0.90); multi-label = sigmoid((cosine − threshold) / temperature) per topic, a topic
//! being assigned when its cosine reaches its threshold (the topic's own, else the run's); in a
//! language with a calibration, multi-label is relative instead (`relative_threshold`, the
//! default): a topic is assigned when its cosine lies that many standard deviations above the
//! topic's mean over the calibration sample ([`relative_multi_label`]), a cut-off that carries
//! across domains where a cosine does not.
//! [`EmbeddingOptions::default`] suits plain e5 cosines; adapted cosines spread much wider, and
//! an adapter carries the temperature and threshold that suit them
//! ([`TopicAdapter::defaults`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use postilla_annotator::text::text_sha256;

use super::adapter::TopicAdapter;
use super::calibration::{CalibrationError, TopicCalibration};
use super::error::TopicError;
use super::taxonomy::TopicTaxonomy;
use crate::embed::{SentenceEncoder, E5_QUERY_PREFIX};

/// Texts per encoder call when measuring a calibration.
pub const CALIBRATION_CHUNK: usize = 256;

/// Options of the embedding method (the defaults suit plain e5 cosines; with an adapter, take
/// the temperature and threshold from [`TopicAdapter::defaults`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EmbeddingOptions {
    /// Softmax / sigmoid temperature.
    pub temperature: f64,
    /// Assign every topic above its threshold instead of ranking them.
    pub multi_label: bool,
    /// Cosine threshold for topics that set none.
    pub threshold: f64,
    /// Multi-label, calibrated languages: assign a topic when its cosine lies this many
    /// standard deviations above its mean over the calibration sample (see
    /// [`relative_multi_label`]); `None`: the absolute cosine threshold everywhere.
    #[serde(default)]
    pub relative_threshold: Option<f64>,
    /// Weight of a long document's lead (title and first sentences, [`lead`]) added to its
    /// whole-text embedding (0: the mean over all windows only).
    #[serde(default)]
    pub lead_weight: f64,
    /// Windows per forward pass.
    pub batch_size: usize,
}

impl Default for EmbeddingOptions {
    fn default() -> Self {
        EmbeddingOptions {
            temperature: 0.02,
            multi_label: false,
            threshold: 0.82,
            relative_threshold: Some(DEFAULT_RELATIVE_THRESHOLD),
            lead_weight: 0.0,
            batch_size: 16,
        }
    }
}

/// Characters of a text's lead (title and first sentences) for `lead_weight`.
pub const LEAD_CHARS: usize = 400;

/// The lead of a text: its first [`LEAD_CHARS`] characters, cut back to the last whitespace;
/// `None` when the text is not longer than that (its lead is the whole text).
///
/// ```
/// use postilla_core::topics::embedding::lead;
/// assert_eq!(lead("Breve."), None);
/// let long = format!("Titolo\n\n{}", "parola ".repeat(100));
/// let l = lead(&long).unwrap();
/// assert!(l.starts_with("Titolo") && l.chars().count() <= 400 && !l.ends_with(' '));
/// ```
pub fn lead(text: &str) -> Option<&str> {
    let (cut, _) = text.char_indices().nth(LEAD_CHARS)?;
    let head = &text[..cut];
    Some(head.rfind(char::is_whitespace).map_or(head, |b| head[..b].trim_end()))
}

/// The default relative multi-label cut-off, in standard deviations above a topic's mean cosine
/// over the calibration sample (chosen on SIB-200 train, README "Multi-label").
pub const DEFAULT_RELATIVE_THRESHOLD: f64 = 1.0;

/// The relative multi-label decision for one document: `raw[t]` is its raw cosine with topic
/// `t`, `mean[t]` and `std[t]` that topic's over the calibration sample. A topic is assigned
/// when `z = (raw − mean) / std` reaches `cut`; its score is `1 / (1 + exp(−2 (z − cut)))`
/// (0.5 at the cut-off, 0.88 one deviation above). Returns (topic index, score) of the
/// assigned topics. A topic whose cosine did not vary over the sample (`std` 0) is never
/// assigned.
///
/// ```
/// use postilla_core::topics::embedding::relative_multi_label;
/// let got = relative_multi_label(&[0.90, 0.80, 0.86], &[0.85, 0.84, 0.85], &[0.02, 0.02, 0.0], 1.0);
/// assert_eq!(got.len(), 1);
/// assert_eq!(got[0].0, 0); // z = 2.5; topic 1 has z = -2; topic 2 never varied
/// assert!((got[0].1 - 1.0 / (1.0 + (-3.0f64).exp())).abs() < 1e-9);
/// ```
pub fn relative_multi_label(raw: &[f64], mean: &[f64], std: &[f64], cut: f64) -> Vec<(usize, f64)> {
    raw.iter()
        .zip(mean.iter().zip(std))
        .enumerate()
        .filter(|(_, (_, (_, &s)))| s > 0.0)
        .map(|(t, (&c, (&m, &s)))| (t, (c - m) / s))
        .filter(|&(_, z)| z >= cut)
        .map(|(t, z)| (t, 1.0 / (1.0 + (-2.0 * (z - cut)).exp())))
        .collect()
}

impl EmbeddingOptions {
    /// The defaults that suit `adapter`'s cosines (its temperature and threshold), or plain e5
    /// cosines without one.
    pub fn defaults_for(adapter: Option<&TopicAdapter>) -> Self {
        let plain = EmbeddingOptions::default();
        match adapter.map(TopicAdapter::defaults) {
            Some(d) => EmbeddingOptions { temperature: d.temperature, threshold: d.threshold, ..plain },
            None => plain,
        }
    }
}

/// Topic prototypes per language, ready to score documents.
pub struct EmbeddingTopicScorer {
    encoder: SentenceEncoder,
    taxonomy: TopicTaxonomy,
    /// language -> one prototype per topic (taxonomy order)
    prototypes: BTreeMap<String, Vec<Vec<f32>>>,
    /// language -> offset per topic (taxonomy order), for calibrated languages
    offsets: BTreeMap<String, Vec<f64>>,
    /// language -> (mean, standard deviation) of each topic's raw cosine over the calibration
    /// sample, for the relative multi-label decision
    standardisation: BTreeMap<String, (Vec<f64>, Vec<f64>)>,
    adapter: Option<TopicAdapter>,
    options: EmbeddingOptions,
    /// Document embeddings (adapter applied) of the texts a calibration was measured on, by
    /// text sha256: the run that follows reuses them instead of embedding those texts again.
    reuse: Mutex<HashMap<String, Vec<f32>>>,
    /// Texts embedded so far (documents, not descriptions).
    embedded: AtomicUsize,
}

impl std::fmt::Debug for EmbeddingTopicScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingTopicScorer")
            .field("taxonomy", &self.taxonomy.name)
            .field("adapter", &self.adapter.as_ref().map(TopicAdapter::sha256))
            .field("options", &self.options)
            .finish()
    }
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in &mut v {
        *x /= n;
    }
    v
}

/// The embeddings mapped by `adapter`, or unchanged without one (documents and descriptions
/// alike go through here).
fn adapted(adapter: Option<&TopicAdapter>, embeddings: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    match adapter {
        Some(a) => embeddings.iter().map(|e| a.apply(e)).collect(),
        None => embeddings,
    }
}

impl EmbeddingTopicScorer {
    /// Embeds every description of the taxonomy once.
    pub fn new(
        encoder: SentenceEncoder,
        taxonomy: TopicTaxonomy,
        options: EmbeddingOptions,
    ) -> Result<Self, TopicError> {
        Self::build(encoder, taxonomy, options, None)
    }

    /// Like [`EmbeddingTopicScorer::new`], with documents and descriptions mapped by `adapter`,
    /// which must have been trained on this encoder (`model_sha256`: its weights; `origin`
    /// names the adapter in errors).
    pub fn with_adapter(
        encoder: SentenceEncoder,
        taxonomy: TopicTaxonomy,
        options: EmbeddingOptions,
        adapter: TopicAdapter,
        model_sha256: &str,
        origin: &str,
    ) -> Result<Self, TopicError> {
        adapter.check(model_sha256, encoder.dim(), origin)?;
        Self::build(encoder, taxonomy, options, Some(adapter))
    }

    fn build(
        encoder: SentenceEncoder,
        taxonomy: TopicTaxonomy,
        options: EmbeddingOptions,
        adapter: Option<TopicAdapter>,
    ) -> Result<Self, TopicError> {
        let mut prototypes = BTreeMap::new();
        for lang in &taxonomy.languages {
            let mut protos = Vec::with_capacity(taxonomy.topics.len());
            for topic in &taxonomy.topics {
                let sentences = topic.text[lang].description.sentences();
                let vecs = adapted(adapter.as_ref(), encoder.embed(&sentences, E5_QUERY_PREFIX, options.batch_size)?);
                let mut mean = vec![0f32; encoder.dim()];
                for v in &vecs {
                    for (m, x) in mean.iter_mut().zip(v) {
                        *m += x;
                    }
                }
                protos.push(normalise(mean));
            }
            prototypes.insert(lang.clone(), protos);
        }
        Ok(EmbeddingTopicScorer {
            encoder,
            taxonomy,
            prototypes,
            offsets: BTreeMap::new(),
            standardisation: BTreeMap::new(),
            adapter,
            options,
            reuse: Mutex::new(HashMap::new()),
            embedded: AtomicUsize::new(0),
        })
    }

    /// The adapter in use, if any.
    pub fn adapter(&self) -> Option<&TopicAdapter> {
        self.adapter.as_ref()
    }

    /// Applies a calibration (checked against this taxonomy and `model_sha256`, the encoder's
    /// weights; `origin` names it in errors) to every later score.
    pub fn calibrate_with(
        &mut self,
        calibration: &TopicCalibration,
        model_sha256: &str,
        origin: &str,
    ) -> Result<(), CalibrationError> {
        calibration.check(&self.taxonomy, model_sha256, self.adapter.as_ref().map(TopicAdapter::sha256), origin)?;
        let ids: Vec<&str> = self.taxonomy.topics.iter().map(|t| t.id.as_str()).collect();
        self.offsets = self
            .taxonomy
            .languages
            .iter()
            .filter_map(|lang| calibration.offsets(lang, &ids).map(|o| (lang.clone(), o)))
            .collect();
        self.standardisation = self
            .taxonomy
            .languages
            .iter()
            .filter_map(|lang| calibration.standardisation(lang, &ids).map(|s| (lang.clone(), s)))
            .collect();
        Ok(())
    }

    /// Measures a calibration on unlabelled texts, each given with the taxonomy language chosen
    /// for it; `model_sha256` identifies the encoder's weights. The texts go through the
    /// encoder [`CALIBRATION_CHUNK`] at a time, so that only one chunk's tokens are held.
    pub fn calibration(
        &self,
        texts: &[&str],
        languages: &[&str],
        model_sha256: &str,
    ) -> Result<TopicCalibration, TopicError> {
        self.measure_calibration(texts, languages, model_sha256, false)
    }

    /// Like [`EmbeddingTopicScorer::calibration`], for texts that are about to be scored too
    /// (`--topic-calibration auto` calibrates on a sample of the run's own documents): their
    /// embeddings are kept, and scoring each of those texts once takes its kept embedding
    /// instead of encoding it again.
    pub fn calibration_keeping_embeddings(
        &self,
        texts: &[&str],
        languages: &[&str],
        model_sha256: &str,
    ) -> Result<TopicCalibration, TopicError> {
        self.measure_calibration(texts, languages, model_sha256, true)
    }

    fn measure_calibration(
        &self,
        texts: &[&str],
        languages: &[&str],
        model_sha256: &str,
        keep: bool,
    ) -> Result<TopicCalibration, TopicError> {
        let mut by_language: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        for (texts, languages) in texts.chunks(CALIBRATION_CHUNK).zip(languages.chunks(CALIBRATION_CHUNK)) {
            TopicError::check_languages(&self.taxonomy, languages)?;
            let docs = self.document_embeddings(texts)?;
            if keep {
                if let Ok(mut reuse) = self.reuse.lock() {
                    reuse.extend(texts.iter().map(|t| text_sha256(t)).zip(docs.iter().cloned()));
                }
            }
            for (cos, lang) in self.cosines_of(&docs, languages).into_iter().zip(languages) {
                by_language.entry((*lang).to_owned()).or_default().push(cos);
            }
        }
        let mut calibration = TopicCalibration::from_cosines(&self.taxonomy, model_sha256, &by_language)?;
        calibration.adapter_sha256 = self.adapter.as_ref().map(|a| a.sha256().to_owned());
        Ok(calibration)
    }

    /// The taxonomy languages a calibration applies to.
    pub fn calibrated_languages(&self) -> Vec<&str> {
        self.offsets.keys().map(String::as_str).collect()
    }

    /// The taxonomy.
    pub fn taxonomy(&self) -> &TopicTaxonomy {
        &self.taxonomy
    }

    /// The options.
    pub fn options(&self) -> &EmbeddingOptions {
        &self.options
    }

    /// Raw cosine of each text with each topic prototype of the language chosen for it
    /// (adapter applied, calibration not: this is what calibration measures).
    /// [`TopicError::UnknownLanguage`] when a language is not the taxonomy's.
    pub fn cosines(&self, texts: &[&str], languages: &[&str]) -> Result<Vec<Vec<f64>>, TopicError> {
        TopicError::check_languages(&self.taxonomy, languages)?;
        let docs = self.document_embeddings(texts)?;
        Ok(self.cosines_of(&docs, languages))
    }

    /// How many document texts went through the encoder so far (texts whose embedding a
    /// calibration had already computed are not embedded again, and not counted twice).
    pub fn embedded_texts(&self) -> usize {
        self.embedded.load(Ordering::Relaxed)
    }

    /// Document embeddings (adapter applied): those a calibration kept are taken (once: the
    /// kept copy is released), the others go through the encoder together.
    fn document_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, TopicError> {
        let mut kept: Vec<Option<Vec<f32>>> = match self.reuse.lock() {
            Ok(mut reuse) if !reuse.is_empty() => texts.iter().map(|t| reuse.remove(&text_sha256(t))).collect(),
            _ => vec![None; texts.len()],
        };
        let missing: Vec<&str> = texts.iter().zip(&kept).filter(|(_, k)| k.is_none()).map(|(t, _)| *t).collect();
        self.embedded.fetch_add(missing.len(), Ordering::Relaxed);
        let mut fresh =
            if missing.is_empty() { Vec::new() } else { adapted(self.adapter.as_ref(), self.encode(&missing)?) }
                .into_iter();
        Ok(kept.iter_mut().map(|k| k.take().or_else(|| fresh.next()).unwrap_or_default()).collect())
    }

    /// Encoder embeddings of whole texts; with a `lead_weight`, each text longer than its lead
    /// ([`lead`]) is `normalise(whole + lead_weight · lead)`, both normalised.
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, TopicError> {
        let batch = self.options.batch_size;
        let mut whole = self.encoder.embed(texts, E5_QUERY_PREFIX, batch)?;
        let w = self.options.lead_weight as f32;
        if w > 0.0 {
            let (long, leads): (Vec<usize>, Vec<&str>) =
                texts.iter().enumerate().filter_map(|(i, t)| lead(t).map(|l| (i, l))).unzip();
            for (i, l) in long.into_iter().zip(self.encoder.embed(&leads, E5_QUERY_PREFIX, batch)?) {
                let mixed = whole[i].iter().zip(&l).map(|(a, b)| a + w * b).collect();
                whole[i] = normalise(mixed);
            }
        }
        Ok(whole)
    }

    fn cosines_of(&self, docs: &[Vec<f32>], languages: &[&str]) -> Vec<Vec<f64>> {
        docs.iter()
            .zip(languages)
            .map(|(d, lang)| {
                let protos = &self.prototypes[*lang];
                protos.iter().map(|p| f64::from(p.iter().zip(d).map(|(a, b)| a * b).sum::<f32>())).collect()
            })
            .collect()
    }

    /// Topic scores per text: (topic id, score), sorted by descending score; in multi-label
    /// mode only the assigned topics (by [`relative_multi_label`] in calibrated languages when
    /// `relative_threshold` is set, else by the absolute cosine threshold).
    pub fn score(&self, texts: &[&str], languages: &[&str]) -> Result<Vec<Vec<(String, f64)>>, TopicError> {
        let cosines = self.cosines(texts, languages)?;
        Ok(cosines
            .into_iter()
            .zip(languages)
            .map(|(raw, lang)| {
                let mut scored = self.scores_of(raw, lang);
                scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                scored
            })
            .collect())
    }

    /// One document's (topic id, score) pairs from its raw cosines, unsorted.
    fn scores_of(&self, raw: Vec<f64>, lang: &str) -> Vec<(String, f64)> {
        let t = self.options.temperature;
        let topics = &self.taxonomy.topics;
        if self.options.multi_label {
            let relative = self.options.relative_threshold.zip(self.standardisation.get(lang));
            if let Some((cut, (mean, std))) = relative {
                return relative_multi_label(&raw, mean, std, cut)
                    .into_iter()
                    .map(|(i, p)| (topics[i].id.clone(), p))
                    .collect();
            }
        }
        let mut cos = raw;
        if let Some(offsets) = self.offsets.get(lang) {
            for (c, o) in cos.iter_mut().zip(offsets) {
                *c -= o;
            }
        }
        if self.options.multi_label {
            return topics
                .iter()
                .zip(&cos)
                .filter_map(|(topic, &c)| {
                    let th = topic.threshold.unwrap_or(self.options.threshold);
                    (c >= th).then(|| (topic.id.clone(), 1.0 / (1.0 + (-(c - th) / t).exp())))
                })
                .collect();
        }
        let max = cos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = cos.iter().map(|c| ((c - max) / t).exp()).collect();
        let sum: f64 = exps.iter().sum();
        topics.iter().zip(exps).map(|(topic, e)| (topic.id.clone(), e / sum)).collect()
    }
}
