//! Calibration of the embedding method on unlabelled in-domain text ("contextual
//! calibration", Zhao et al. 2021, for similarity instead of a language model's output).
//!
//! Some topic descriptions are closer to *every* text of a domain than others: under e5 a short
//! encyclopaedic sentence is nearer "science and technology" than "travel" whatever it says, so
//! the uncalibrated argmax over-predicts such topics. Calibration measures each topic's mean
//! cosine over a sample of texts from the domain (no labels needed) and subtracts it:
//!
//! ```text
//! offset[lang][t]   = mean_cosine[lang][t] − mean over topics u of mean_cosine[lang][u]
//! calibrated cos(d, t) = cos(d, t) − offset[lang(d)][t]
//! ```
//!
//! The offsets average to zero over the topics, so calibrated cosines stay on the scale of raw
//! ones (multi-label thresholds keep their meaning), and the single-label ranking equals the
//! ranking by `cos − mean_cosine`. Languages without calibration texts are left uncalibrated.
//!
//! A calibration belongs to one taxonomy, one encoder and one topic adapter (or none): their
//! sha256 are stored and checked when it is loaded. `postilla topics calibrate` computes one; `postilla annotate
//! --topic-calibration FILE` uses it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use postilla_core::topics::calibration::TopicCalibration;
//! let mut mean = BTreeMap::new();
//! mean.insert("it".to_owned(), BTreeMap::from([("a".to_owned(), 0.84), ("b".to_owned(), 0.80)]));
//! let cal = TopicCalibration {
//!     schema: TopicCalibration::SCHEMA.into(), taxonomy: "t".into(), taxonomy_sha256: "x".into(),
//!     model_sha256: "y".into(), texts: BTreeMap::from([("it".to_owned(), 100)]), mean_cosine: mean,
//!     adapter_sha256: None, std_cosine: BTreeMap::new(),
//! };
//! let offsets = cal.offsets("it", &["a", "b"]).unwrap();
//! assert!((offsets[0] - 0.02).abs() < 1e-12 && (offsets[1] + 0.02).abs() < 1e-12);
//! assert!(cal.offsets("de", &["a", "b"]).is_none());
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::taxonomy::TopicTaxonomy;

/// Why a calibration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a calibration.
    #[error("{path}: not a topic calibration: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The calibration was computed for another taxonomy, encoder or topic adapter.
    #[error("topic calibration {path}: computed for {what} {expected}, but this run uses {actual}; recompute it with `postilla topics calibrate`")]
    Mismatch {
        /// The file.
        path: String,
        /// `taxonomy`, `encoder` or `topic adapter`.
        what: &'static str,
        /// The sha256 it was computed for.
        expected: String,
        /// The sha256 of this run.
        actual: String,
    },
    /// Not enough texts to calibrate anything.
    #[error("no language of the taxonomy had at least {min} calibration texts ({counts}); give more texts")]
    TooFewTexts {
        /// Minimum texts per language.
        min: usize,
        /// Texts seen per language.
        counts: String,
    },
}

/// Mean cosines of a taxonomy's topics over unlabelled texts, per language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicCalibration {
    /// Always [`TopicCalibration::SCHEMA`].
    pub schema: String,
    /// The taxonomy's name.
    pub taxonomy: String,
    /// sha256 of the taxonomy file.
    pub taxonomy_sha256: String,
    /// sha256 of the encoder's weights.
    pub model_sha256: String,
    /// Texts used, per taxonomy language.
    pub texts: BTreeMap<String, usize>,
    /// Mean raw cosine per taxonomy language and topic id.
    pub mean_cosine: BTreeMap<String, BTreeMap<String, f64>>,
    /// sha256 of the topic adapter the cosines were measured through (none: no adapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_sha256: Option<String>,
    /// Standard deviation of the raw cosines per taxonomy language and topic id: with the
    /// means, what the relative multi-label decision standardises by (absent in calibrations
    /// written before it existed: those languages keep the absolute threshold).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub std_cosine: BTreeMap<String, BTreeMap<String, f64>>,
}

impl TopicCalibration {
    /// The `schema` value of calibration files.
    pub const SCHEMA: &'static str = "postilla-topic-calibration/1";

    /// Fewest texts of a language for it to be calibrated.
    pub const MIN_TEXTS: usize = 20;

    /// Builds a calibration from raw cosines: per taxonomy language, one row per text, one
    /// column per topic (taxonomy order). Languages with fewer than
    /// [`TopicCalibration::MIN_TEXTS`] texts are left out.
    pub fn from_cosines(
        taxonomy: &TopicTaxonomy,
        model_sha256: &str,
        cosines: &BTreeMap<String, Vec<Vec<f64>>>,
    ) -> Result<Self, CalibrationError> {
        let mut texts = BTreeMap::new();
        let mut mean_cosine = BTreeMap::new();
        let mut std_cosine = BTreeMap::new();
        for (lang, rows) in cosines {
            if rows.len() < Self::MIN_TEXTS {
                continue;
            }
            let (mut means, mut stds) = (BTreeMap::new(), BTreeMap::new());
            let n = rows.len() as f64;
            for (t, topic) in taxonomy.topics.iter().enumerate() {
                let mean = rows.iter().map(|r| r[t]).sum::<f64>() / n;
                let var = rows.iter().map(|r| (r[t] - mean).powi(2)).sum::<f64>() / (n - 1.0);
                means.insert(topic.id.clone(), mean);
                stds.insert(topic.id.clone(), var.sqrt());
            }
            texts.insert(lang.clone(), rows.len());
            mean_cosine.insert(lang.clone(), means);
            std_cosine.insert(lang.clone(), stds);
        }
        if mean_cosine.is_empty() {
            let counts = cosines.iter().map(|(l, r)| format!("{l}: {}", r.len())).collect::<Vec<_>>().join(", ");
            return Err(CalibrationError::TooFewTexts { min: Self::MIN_TEXTS, counts });
        }
        Ok(TopicCalibration {
            schema: Self::SCHEMA.into(),
            taxonomy: taxonomy.name.clone(),
            taxonomy_sha256: taxonomy.sha256.clone(),
            model_sha256: model_sha256.into(),
            texts,
            mean_cosine,
            adapter_sha256: None,
            std_cosine,
        })
    }

    /// Reads a calibration file.
    pub fn read(path: &Path) -> Result<Self, CalibrationError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CalibrationError::Io { path: path.display().to_string(), source: e })?;
        let cal: TopicCalibration = serde_json::from_str(&text)
            .map_err(|e| CalibrationError::Format { path: path.display().to_string(), message: e.to_string() })?;
        if cal.schema != Self::SCHEMA {
            return Err(CalibrationError::Format {
                path: path.display().to_string(),
                message: format!("schema {:?}, expected {:?}", cal.schema, Self::SCHEMA),
            });
        }
        Ok(cal)
    }

    /// Writes the calibration as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), CalibrationError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CalibrationError::Format { path: path.display().to_string(), message: e.to_string() })?;
        std::fs::write(path, text + "\n")
            .map_err(|e| CalibrationError::Io { path: path.display().to_string(), source: e })
    }

    /// Checks that the calibration was computed for this taxonomy, encoder and topic adapter
    /// (`adapter_sha256`: none when no adapter is used); `origin` names the calibration in the
    /// error.
    pub fn check(
        &self,
        taxonomy: &TopicTaxonomy,
        model_sha256: &str,
        adapter_sha256: Option<&str>,
        origin: &str,
    ) -> Result<(), CalibrationError> {
        let mismatch = |what, expected: &str, actual: &str| CalibrationError::Mismatch {
            path: origin.into(),
            what,
            expected: expected.into(),
            actual: actual.into(),
        };
        if self.taxonomy_sha256 != taxonomy.sha256 {
            return Err(mismatch("taxonomy", &self.taxonomy_sha256, &taxonomy.sha256));
        }
        if self.model_sha256 != model_sha256 {
            return Err(mismatch("encoder", &self.model_sha256, model_sha256));
        }
        if self.adapter_sha256.as_deref() != adapter_sha256 {
            let name = |a: Option<&str>| a.unwrap_or("none").to_owned();
            return Err(mismatch("topic adapter", &name(self.adapter_sha256.as_deref()), &name(adapter_sha256)));
        }
        for (lang, means) in &self.mean_cosine {
            if let Some(topic) = taxonomy.topics.iter().find(|t| !means.contains_key(&t.id)) {
                return Err(CalibrationError::Format {
                    path: origin.into(),
                    message: format!("mean_cosine.{lang} has no entry for topic {:?}", topic.id),
                });
            }
        }
        Ok(())
    }

    /// Offsets to subtract from the raw cosines of a text in `lang`, one per topic id in
    /// `topics` order; `None` when the language was not calibrated.
    pub fn offsets(&self, lang: &str, topics: &[&str]) -> Option<Vec<f64>> {
        let means = self.mean_cosine.get(lang)?;
        let values: Vec<f64> = topics.iter().map(|t| means.get(*t).copied()).collect::<Option<_>>()?;
        let centre = values.iter().sum::<f64>() / values.len().max(1) as f64;
        Some(values.iter().map(|v| v - centre).collect())
    }

    /// Mean and standard deviation of the raw cosine of each topic id in `topics` order, in
    /// `lang`: what [`relative_multi_label`](super::embedding::relative_multi_label) standardises
    /// by. `None` when the language was not calibrated or the file has no deviations.
    pub fn standardisation(&self, lang: &str, topics: &[&str]) -> Option<(Vec<f64>, Vec<f64>)> {
        let (means, stds) = (self.mean_cosine.get(lang)?, self.std_cosine.get(lang)?);
        topics
            .iter()
            .map(|t| Some((*means.get(*t)?, *stds.get(*t)?)))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().unzip())
    }

    /// sha256 of the calibration's canonical JSON, for provenance.
    pub fn sha256(&self) -> String {
        postilla_annotator::hash::sha256_hex(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taxonomy() -> TopicTaxonomy {
        TopicTaxonomy::from_toml(
            "name = \"t\"\nlanguages = [\"it\"]\nfallback = \"it\"\n[templates]\nit = \"{}\"\n\
             [[topics]]\nid = \"a\"\nit = { label = \"a\", description = \"A.\" }\n\
             [[topics]]\nid = \"b\"\nit = { label = \"b\", description = \"B.\" }\n",
            "test",
        )
        .expect("taxonomy")
    }

    #[test]
    fn means_per_language_and_too_few_texts() {
        let tax = taxonomy();
        let mut cos = BTreeMap::new();
        cos.insert("it".to_owned(), vec![vec![0.9, 0.7]; 30]);
        cos.insert("de".to_owned(), vec![vec![0.9, 0.7]; 5]);
        let cal = TopicCalibration::from_cosines(&tax, "m", &cos).expect("calibration");
        assert_eq!(cal.texts, BTreeMap::from([("it".to_owned(), 30)]), "de has too few texts");
        let off = cal.offsets("it", &["a", "b"]).expect("offsets");
        assert!((off[0] - 0.1).abs() < 1e-12 && (off[1] + 0.1).abs() < 1e-12);
        let (mean, std) = cal.standardisation("it", &["a", "b"]).expect("standardisation");
        assert!((mean[0] - 0.9).abs() < 1e-12 && std[0].abs() < 1e-12, "constant cosines: no spread");
        let spread = BTreeMap::from([("it".to_owned(), (0..30).map(|i| vec![f64::from(i % 2), 0.5]).collect())]);
        let cal = TopicCalibration::from_cosines(&tax, "m", &spread).expect("calibration");
        let (mean, std) = cal.standardisation("it", &["a", "b"]).expect("standardisation");
        assert!((mean[0] - 0.5).abs() < 1e-12);
        assert!((std[0] - (7.5f64 / 29.0).sqrt()).abs() < 1e-12, "sample standard deviation (n - 1)");
        assert!(cal.standardisation("de", &["a", "b"]).is_none());
        let few = BTreeMap::from([("it".to_owned(), vec![vec![0.9, 0.7]; 3])]);
        assert!(matches!(TopicCalibration::from_cosines(&tax, "m", &few), Err(CalibrationError::TooFewTexts { .. })));
    }

    #[test]
    fn another_taxonomy_or_encoder_is_refused() {
        let tax = taxonomy();
        let cos = BTreeMap::from([("it".to_owned(), vec![vec![0.9, 0.7]; 30])]);
        let cal = TopicCalibration::from_cosines(&tax, "model-1", &cos).expect("calibration");
        assert!(cal.check(&tax, "model-1", None, "c.json").is_ok());
        let err = cal.check(&tax, "model-2", None, "c.json").expect_err("other encoder");
        assert!(err.to_string().contains("encoder"), "{err}");
        let mut other = tax.clone();
        other.sha256 = "different".into();
        assert!(cal
            .check(&other, "model-1", None, "c.json")
            .expect_err("other taxonomy")
            .to_string()
            .contains("taxonomy"));
        let err = cal.check(&tax, "model-1", Some("ad"), "c.json").expect_err("measured without the adapter");
        assert!(err.to_string().contains("topic adapter none"), "{err}");
        let adapted = TopicCalibration { adapter_sha256: Some("ad".into()), ..cal };
        assert!(adapted.check(&tax, "model-1", Some("ad"), "c.json").is_ok());
        assert!(adapted.check(&tax, "model-1", None, "c.json").is_err(), "measured with an adapter, used without");
    }
}
