//! Provenance: what made a record (the tool, the models' identities, the parameters that
//! change the output), as a typed struct built from the options.
//!
//! Every record of a run carries the same provenance. Resuming a run and merging shards
//! compare it typed ([`Provenance::from_value`] then `==`): a record whose provenance has a key
//! this version does not know, or lacks one it needs, is from another configuration.
//!
//! On the wire it is a JSON object with keys in sorted order (`serde_json`'s map), exactly as
//! records have always been written.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ModelError;
use crate::model::manifest::{hash_file, MANIFEST_FILE};
use crate::model::{verify_model_dir, weights_file, Precision};
use crate::ner::{Aggregation, Decoding, FunctionWords, NerOptions, WordBoundaries};
use crate::topics::{ChunkAggregation, EmbeddingOptions, NliOptions, TopicTaxonomy};

/// What made a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Tool and version, e.g. `postilla 0.1.0` ([`crate::TOOL`]).
    pub tool: String,
    /// The NER model, when entities are recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ner_model: Option<ModelIdentity>,
    /// The topic model, when topics are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_model: Option<ModelIdentity>,
    /// The parameters that change the output.
    pub params: Params,
}

/// A model directory's identity: its name, path and the sha256 of its weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelIdentity {
    /// The directory's name, e.g. `ner-it-de`.
    pub id: String,
    /// The directory as given.
    pub path: String,
    /// sha256 of the weights file.
    pub sha256: String,
}

/// The parameters that change the output; a key is absent when its part does not run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// NER: tokens per window (after capping at the model's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// NER: tokens shared by consecutive windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    /// NER: subword aggregation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<Aggregation>,
    /// NER: word boundaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_boundaries: Option<WordBoundaries>,
    /// NER: whether a pre-tokenised document's own tokens are its words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<bool>,
    /// NER: how word labels become entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding: Option<Decoding>,
    /// NER: whether trailing function words are cut from entities (absent in records written
    /// before the option existed, which kept them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_words: Option<FunctionWords>,
    /// NER: how many documents before and after each one were read as context (absent in
    /// records written before the option existed, which read none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<usize>,
    /// NER: precision of the forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Topics: the taxonomy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_taxonomy: Option<TaxonomyIdentity>,
    /// Topics: the method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_method: Option<TopicMethodName>,
    /// Embedding method: softmax / sigmoid temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_temperature: Option<f64>,
    /// Topics: multi-label or single-label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_multi_label: Option<bool>,
    /// Topics, multi-label only: the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_threshold: Option<f64>,
    /// Embedding method, multi-label only: the relative cut-off (standard deviations above a
    /// topic's mean cosine over the calibration sample) used in calibrated languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_relative_threshold: Option<f64>,
    /// Embedding method: the weight of a long document's lead (absent: 0, whole text only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_lead_weight: Option<f64>,
    /// Embedding method: precision of the encoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_precision: Option<Precision>,
    /// Embedding method: the topic adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_adapter: Option<AdapterIdentity>,
    /// Embedding method: the calibration applied (or the languages left uncalibrated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_calibration: Option<CalibrationRecord>,
    /// NLI method: hypothesis templates per language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_templates: Option<BTreeMap<String, String>>,
    /// NLI method: how chunk scores are combined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_aggregate: Option<ChunkAggregation>,
}

/// A taxonomy's name and the sha256 of its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxonomyIdentity {
    /// Its name.
    pub name: String,
    /// sha256 of its file.
    pub sha256: String,
}

/// The topic method's name in provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicMethodName {
    /// Cosine with descriptions under an encoder.
    Embedding,
    /// Entailment under an NLI model.
    Nli,
}

/// A topic adapter's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterIdentity {
    /// sha256 of the adapter file.
    pub sha256: String,
    /// Its rank.
    pub rank: usize,
}

/// The topic calibration of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationRecord {
    /// sha256 of the calibration (absent when none could be made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The taxonomy languages it calibrates.
    pub languages: Vec<String>,
    /// Texts it was measured on, per language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<BTreeMap<String, usize>>,
    /// `--topic-calibration auto`: the sample size per language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<usize>,
    /// `--topic-calibration auto`: the taxonomy languages left uncalibrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncalibrated: Option<Vec<String>>,
}

impl Provenance {
    /// The provenance of a run with neither entities nor topics (yet).
    pub fn new() -> Self {
        Provenance { tool: crate::TOOL.into(), ner_model: None, topic_model: None, params: Params::default() }
    }

    /// The JSON object written into records (keys sorted).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a record's provenance; `Err` when it has unknown keys or lacks required ones
    /// (another version or configuration).
    pub fn from_value(value: &Value) -> Result<Self, serde_json::Error> {
        Provenance::deserialize(value)
    }

    /// Records the NER model and its effective options.
    pub fn set_ner(&mut self, model: ModelIdentity, options: &NerOptions) {
        self.ner_model = Some(model);
        self.params.max_length = Some(options.max_length);
        self.params.stride = Some(options.stride);
        self.params.aggregation = Some(options.aggregation);
        self.params.word_boundaries = Some(options.word_boundaries);
        self.params.input_tokens = Some(options.input_tokens);
        self.params.decoding = Some(options.decoding);
        self.params.function_words = Some(options.function_words);
        self.params.context = Some(options.context);
        self.params.precision = Some(options.precision);
    }

    /// Records the topic model and taxonomy.
    pub fn set_topics(&mut self, model: ModelIdentity, taxonomy: &TopicTaxonomy) {
        self.topic_model = Some(model);
        self.params.topic_taxonomy =
            Some(TaxonomyIdentity { name: taxonomy.name.clone(), sha256: taxonomy.sha256.clone() });
    }

    /// Records the embedding method's options.
    pub fn set_embedding(&mut self, options: &EmbeddingOptions, precision: Precision) {
        self.params.topic_method = Some(TopicMethodName::Embedding);
        self.params.topic_temperature = Some(options.temperature);
        self.params.topic_multi_label = Some(options.multi_label);
        self.params.topic_threshold = options.multi_label.then_some(options.threshold);
        self.params.topic_relative_threshold = options.relative_threshold.filter(|_| options.multi_label);
        self.params.topic_lead_weight = (options.lead_weight > 0.0).then_some(options.lead_weight);
        self.params.topic_precision = Some(precision);
    }

    /// Records the NLI method's options and the taxonomy's templates.
    pub fn set_nli(&mut self, options: &NliOptions, taxonomy: &TopicTaxonomy) {
        self.params.topic_method = Some(TopicMethodName::Nli);
        self.params.topic_templates = Some(taxonomy.templates.clone());
        self.params.topic_multi_label = Some(options.multi_label);
        self.params.topic_aggregate = Some(options.aggregate);
        self.params.topic_threshold = options.multi_label.then_some(options.threshold);
    }

    /// The topic model's weights sha256 (empty without topics).
    pub fn topic_model_sha256(&self) -> &str {
        self.topic_model.as_ref().map_or("", |m| m.sha256.as_str())
    }
}

impl Default for Provenance {
    fn default() -> Self {
        Provenance::new()
    }
}

/// Identity of a model directory for provenance: its name and the sha256 of its weights.
///
/// A directory with a `manifest.json` (every model Postilla builds) is first verified against
/// it, and against the project's pinned manifest when there is one
/// ([`crate::model::verify_model_dir`]): a missing, truncated or corrupted file is refused
/// before anything is loaded, and the sha256 written into provenance is the one the files
/// really have. Without a manifest the weights file is hashed.
pub fn model_identity(dir: &Path) -> Result<ModelIdentity, ModelError> {
    let sha = match dir.join(MANIFEST_FILE).exists() {
        true => verify_model_dir(dir)?.weights_sha256().map(str::to_owned),
        false => None,
    };
    let sha256 = match sha {
        Some(s) => s,
        None => hash_file(&weights_file(dir)?)?.sha256,
    };
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
    Ok(ModelIdentity { id, path: dir.display().to_string(), sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Provenance {
        let mut p = Provenance::new();
        let model = ModelIdentity { id: "m".into(), path: "models/m".into(), sha256: "ab".into() };
        p.set_ner(model, &NerOptions::default());
        p.params.topic_calibration = Some(CalibrationRecord {
            sha256: None,
            languages: vec![],
            texts: None,
            auto: Some(300),
            uncalibrated: Some(vec!["it".into()]),
        });
        p
    }

    #[test]
    fn round_trips_through_json_with_sorted_keys() {
        let p = sample();
        let line = serde_json::to_string(&p.to_value()).expect("json");
        assert!(line.starts_with(
            r#"{"ner_model":{"id":"m","path":"models/m","sha256":"ab"},"params":{"aggregation":"first","#
        ));
        assert!(line.ends_with(&format!(r#""tool":"{}"}}"#, crate::TOOL)), "{line}");
        assert_eq!(Provenance::from_value(&p.to_value()).expect("parse"), p);
    }

    #[test]
    fn an_unknown_or_changed_parameter_is_another_configuration() {
        let mut value = sample().to_value();
        value["params"]["beam"] = serde_json::json!(4);
        assert!(Provenance::from_value(&value).is_err(), "unknown key");
        let mut value = sample().to_value();
        value["params"]["stride"] = serde_json::json!(32);
        assert_ne!(Provenance::from_value(&value).expect("parse"), sample());
    }
}
