//! Typed errors of the topic methods: a model error, an unusable calibration or adapter, or a
//! language the taxonomy does not have.

use super::adapter::AdapterError;
use super::calibration::CalibrationError;
use super::taxonomy::{TaxonomyError, TopicTaxonomy};
use crate::error::ModelError;

/// Everything that can go wrong while loading or running a topic method.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The encoder or NLI model failed (loading, tokenizing, the forward pass).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A topic calibration is unusable or does not belong to this taxonomy and encoder.
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    /// A taxonomy file is unusable.
    #[error(transparent)]
    Taxonomy(#[from] TaxonomyError),
    /// A topic adapter is unusable or was trained on another encoder.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    /// Texts were to be scored in a language the taxonomy has no wording for (choose it with
    /// [`super::TopicTaxonomy::language_for`]).
    #[error("taxonomy {taxonomy}: no language {language:?} (it has {known})")]
    UnknownLanguage {
        /// The taxonomy's name.
        taxonomy: String,
        /// The language asked for.
        language: String,
        /// The languages it has, comma-separated.
        known: String,
    },
}

impl TopicError {
    /// [`TopicError::UnknownLanguage`] for the first of `languages` that `taxonomy` lacks.
    pub fn check_languages(taxonomy: &TopicTaxonomy, languages: &[&str]) -> Result<(), TopicError> {
        match languages.iter().find(|l| !taxonomy.languages.iter().any(|k| k == *l)) {
            None => Ok(()),
            Some(language) => Err(TopicError::UnknownLanguage {
                taxonomy: taxonomy.name.clone(),
                language: (*language).to_owned(),
                known: taxonomy.languages.join(", "),
            }),
        }
    }
}
