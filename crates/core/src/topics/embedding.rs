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
//! being assigned when its cosine reaches its threshold (the topic's own, else the run's).
//! [`EmbeddingOptions::default`] suits plain e5 cosines; adapted cosines spread much wider, and
//! an adapter carries the temperature and threshold that suit them
//! ([`TopicAdapter::defaults`]).

use std::collections::BTreeMap;

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
    /// Windows per forward pass.
    pub batch_size: usize,
}

impl Default for EmbeddingOptions {
    fn default() -> Self {
        EmbeddingOptions { temperature: 0.02, multi_label: false, threshold: 0.82, batch_size: 16 }
    }
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
    adapter: Option<TopicAdapter>,
    options: EmbeddingOptions,
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
        Ok(EmbeddingTopicScorer { encoder, taxonomy, prototypes, offsets: BTreeMap::new(), adapter, options })
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
        let mut by_language: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        for (texts, languages) in texts.chunks(CALIBRATION_CHUNK).zip(languages.chunks(CALIBRATION_CHUNK)) {
            for (cos, lang) in self.cosines(texts, languages)?.into_iter().zip(languages) {
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
        let docs = adapted(self.adapter.as_ref(), self.encoder.embed(texts, E5_QUERY_PREFIX, self.options.batch_size)?);
        Ok(docs
            .iter()
            .zip(languages)
            .map(|(d, lang)| {
                let protos = &self.prototypes[*lang];
                protos.iter().map(|p| f64::from(p.iter().zip(d).map(|(a, b)| a * b).sum::<f32>())).collect()
            })
            .collect())
    }

    /// Topic scores per text: (topic id, score), sorted by descending score; in multi-label
    /// mode only the assigned topics.
    pub fn score(&self, texts: &[&str], languages: &[&str]) -> Result<Vec<Vec<(String, f64)>>, TopicError> {
        let t = self.options.temperature;
        let cosines = self.cosines(texts, languages)?;
        Ok(cosines
            .into_iter()
            .zip(languages)
            .map(|(mut cos, lang)| {
                if let Some(offsets) = self.offsets.get(*lang) {
                    for (c, o) in cos.iter_mut().zip(offsets) {
                        *c -= o;
                    }
                }
                let mut scored: Vec<(String, f64)> = if self.options.multi_label {
                    self.taxonomy
                        .topics
                        .iter()
                        .zip(&cos)
                        .filter_map(|(topic, &c)| {
                            let th = topic.threshold.unwrap_or(self.options.threshold);
                            (c >= th).then(|| (topic.id.clone(), 1.0 / (1.0 + (-(c - th) / t).exp())))
                        })
                        .collect()
                } else {
                    let max = cos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let exps: Vec<f64> = cos.iter().map(|c| ((c - max) / t).exp()).collect();
                    let sum: f64 = exps.iter().sum();
                    self.taxonomy.topics.iter().zip(exps).map(|(topic, e)| (topic.id.clone(), e / sum)).collect()
                };
                scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                scored
            })
            .collect())
    }
}
