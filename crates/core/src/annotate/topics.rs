//! Loading the configured topic method (recording it in provenance) and calibrating the
//! embedding method after loading (a calibration file, or `--topic-calibration auto`).

use super::provenance::{model_identity, AdapterIdentity, CalibrationRecord, Provenance};
use super::{AnnotateError, Annotator, TopicMethod, TopicsConfig};
use crate::embed::SentenceEncoder;
use crate::error::ModelError;
use crate::topics::{
    CalibrationError, CalibrationSample, EmbeddingTopicScorer, NliOptions, NliTopicScorer, TopicCalibration,
    TopicError, TopicScorer,
};

/// Loads the topic method of `t` and records it in `provenance`. `calibration`: the origin of
/// a calibration file given with it (refused with the NLI method, like an adapter).
pub(super) fn load(
    t: TopicsConfig,
    calibration: Option<&str>,
    provenance: &mut Provenance,
) -> Result<TopicScorer, AnnotateError> {
    provenance.set_topics(model_identity(&t.model_dir)?, &t.taxonomy);
    match t.method {
        TopicMethod::Embedding(options) => {
            let encoder = SentenceEncoder::load_with(&t.model_dir, t.device, t.engine, t.precision)?;
            provenance.set_embedding(&options, encoder.precision());
            let model_sha = provenance.topic_model_sha256().to_owned();
            let scorer = match t.adapter {
                Some((adapter, origin)) => {
                    provenance.params.topic_adapter =
                        Some(AdapterIdentity { sha256: adapter.sha256().to_owned(), rank: adapter.rank() });
                    EmbeddingTopicScorer::with_adapter(encoder, t.taxonomy, options, adapter, &model_sha, &origin)?
                }
                None => EmbeddingTopicScorer::new(encoder, t.taxonomy, options)?,
            };
            Ok(TopicScorer::Embedding(scorer))
        }
        TopicMethod::Nli(options) => {
            if let Some(refused) = embedding_only(calibration, t.adapter.as_ref().map(|(_, o)| o.as_str())) {
                return Err(refused.into());
            }
            provenance.set_nli(&options, &t.taxonomy);
            let options = NliOptions { device: t.device, ..options };
            Ok(TopicScorer::Nli(NliTopicScorer::load(&t.model_dir, t.taxonomy, options)?))
        }
    }
}

/// The error for a calibration or adapter given with the NLI method.
fn embedding_only(calibration: Option<&str>, adapter: Option<&str>) -> Option<ModelError> {
    let (what, origin) = match (calibration, adapter) {
        (Some(origin), _) => ("topic calibrations", origin),
        (None, Some(origin)) => ("topic adapters", origin),
        (None, None) => return None,
    };
    Some(ModelError::Config { path: origin.into(), message: format!("{what} apply to the embedding method only") })
}

impl Annotator {
    /// `--topic-calibration auto`: measures a calibration of the embedding method on a sample
    /// of the input (see [`crate::topics::sample`]) and applies it, as
    /// [`Annotator::apply_topic_calibration`] does. Languages with fewer than
    /// [`TopicCalibration::MIN_TEXTS`] sampled documents stay uncalibrated (provenance lists
    /// them); `Ok(None)` when no language has enough, and the run is uncalibrated. The sampled
    /// documents' embeddings are kept for the annotation that follows (computed once, not
    /// twice).
    pub fn calibrate_topics(
        &mut self,
        sample: &CalibrationSample,
        origin: &str,
    ) -> Result<Option<TopicCalibration>, TopicError> {
        let model_sha = self.provenance.topic_model_sha256().to_owned();
        let scorer = self.embedding_scorer(origin)?;
        let texts = sample.texts();
        let (flat, languages): (Vec<&str>, Vec<&str>) =
            texts.iter().flat_map(|(lang, docs)| docs.iter().map(move |t| (t.as_str(), lang.as_str()))).unzip();
        let calibration = match scorer.calibration_keeping_embeddings(&flat, &languages, &model_sha) {
            Ok(c) => c,
            Err(TopicError::Calibration(CalibrationError::TooFewTexts { .. })) => {
                self.provenance.params.topic_calibration = Some(CalibrationRecord {
                    sha256: None,
                    languages: Vec::new(),
                    texts: None,
                    auto: Some(sample.per_language()),
                    uncalibrated: Some(sample.offered().keys().cloned().collect()),
                });
                self.provenance_changed();
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
    ) -> Result<(), TopicError> {
        let model_sha = self.provenance.topic_model_sha256().to_owned();
        let scorer = self.embedding_scorer(origin)?;
        scorer.calibrate_with(calibration, &model_sha, origin)?;
        let languages: Vec<String> = scorer.calibrated_languages().iter().map(|l| l.to_string()).collect();
        let uncalibrated: Vec<String> =
            scorer.taxonomy().languages.iter().filter(|l| !languages.contains(l)).cloned().collect();
        self.provenance.params.topic_calibration = Some(CalibrationRecord {
            sha256: Some(calibration.sha256()),
            languages,
            texts: Some(calibration.texts.clone()),
            auto,
            uncalibrated: auto.map(|_| uncalibrated),
        });
        self.provenance_changed();
        Ok(())
    }

    /// The embedding topic scorer, or an error naming `origin` when topics are off or use NLI.
    fn embedding_scorer(&mut self, origin: &str) -> Result<&mut EmbeddingTopicScorer, TopicError> {
        match &mut self.topics {
            Some(TopicScorer::Embedding(scorer)) => Ok(scorer),
            _ => Err(TopicError::Model(ModelError::Config {
                path: origin.into(),
                message: "topic calibrations apply to the embedding method only".into(),
            })),
        }
    }
}
