//! Language identification per document (lingua, with the languages Postilla serves and a few
//! neighbours compiled in).

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};

/// The languages the detector can answer.
pub const SUPPORTED: [Language; 6] =
    [Language::Italian, Language::German, Language::English, Language::French, Language::Spanish, Language::Portuguese];

/// A detected language: ISO 639-1 code and the detector's confidence in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageGuess {
    /// ISO 639-1 code, e.g. `it`.
    pub code: String,
    /// Confidence in [0, 1].
    pub score: f64,
}

/// Detects the language of whole documents.
pub struct LanguageIdentifier {
    detector: LanguageDetector,
}

impl std::fmt::Debug for LanguageIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LanguageIdentifier")
    }
}

impl Default for LanguageIdentifier {
    fn default() -> Self {
        Self::new()
    }
}

impl LanguageIdentifier {
    /// Builds the detector (language models are loaded lazily by lingua).
    pub fn new() -> Self {
        LanguageIdentifier { detector: LanguageDetectorBuilder::from_languages(&SUPPORTED).build() }
    }

    /// The most likely language of `text`, or `None` when the text has no letters to judge.
    ///
    /// ```
    /// let id = postilla_core::lang::LanguageIdentifier::new();
    /// let g = id.detect("Il governo italiano ha approvato la legge di bilancio.").unwrap();
    /// assert_eq!(g.code, "it");
    /// ```
    pub fn detect(&self, text: &str) -> Option<LanguageGuess> {
        let values = self.detector.compute_language_confidence_values(text);
        let (lang, score) = values.into_iter().next()?;
        if score <= 0.0 {
            return None;
        }
        Some(LanguageGuess { code: lang.iso_code_639_1().to_string().to_lowercase(), score })
    }
}
