//! Topic taxonomies: a TOML file listing topics, each with an id and, per language, a label
//! and a description, plus per-language hypothesis templates for the NLI method.
//!
//! ```toml
//! name = "news"
//! languages = ["it", "de", "en"]
//! fallback = "en"                       # used for documents in other languages
//!
//! [templates]                           # NLI hypotheses; {} is replaced by the label
//! it = "Questo testo parla di {}."
//! de = "Dieser Text handelt von {}."
//! en = "This text is about {}."
//!
//! [[topics]]
//! id = "politics"
//! threshold = 0.83                      # optional: multi-label cut-off (embedding cosine)
//! it = { label = "politica", description = "Questo articolo parla di politica e di relazioni internazionali." }
//! de = { label = "Politik", description = "Dieser Artikel handelt von Politik und internationalen Beziehungen." }
//! en = { label = "politics", description = "This article is about politics and international relations." }
//! ```
//!
//! `description` may also be a list of sentences; the embedding method then uses their mean.
//! Validation names the offending key: `topics[2].de: missing`, `templates.it: no {}`, ….

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use postilla_annotator::hash::sha256_hex;

/// Why a taxonomy is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for a taxonomy.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A key has a wrong or missing value.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The offending key, e.g. `topics[3].de`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// One or several descriptions.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Descriptions {
    /// A single sentence.
    One(String),
    /// Several sentences (their embeddings are averaged).
    Many(Vec<String>),
}

impl Descriptions {
    /// The sentences.
    pub fn sentences(&self) -> Vec<&str> {
        match self {
            Descriptions::One(s) => vec![s.as_str()],
            Descriptions::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A topic's wording in one language.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicText {
    /// Short label (used in NLI hypotheses).
    pub label: String,
    /// Description sentence(s) (used by the embedding method).
    pub description: Descriptions,
}

#[derive(Debug, Deserialize)]
struct RawTopic {
    id: Option<String>,
    threshold: Option<f64>,
    #[serde(flatten)]
    languages: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaxonomy {
    name: Option<String>,
    languages: Option<Vec<String>>,
    fallback: Option<String>,
    #[serde(default)]
    templates: BTreeMap<String, String>,
    #[serde(default)]
    topics: Vec<RawTopic>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    /// Id written into records (e.g. `politics`).
    pub id: String,
    /// Multi-label threshold, if set.
    pub threshold: Option<f64>,
    /// Wording per language.
    pub text: BTreeMap<String, TopicText>,
}

/// A validated taxonomy.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicTaxonomy {
    /// Name.
    pub name: String,
    /// Languages every topic is written in.
    pub languages: Vec<String>,
    /// Language used for documents in other languages.
    pub fallback: String,
    /// NLI hypothesis templates per language.
    pub templates: BTreeMap<String, String>,
    /// Topics, in file order.
    pub topics: Vec<Topic>,
    /// sha256 of the file's bytes (provenance).
    pub sha256: String,
}

impl TopicTaxonomy {
    /// Reads and validates a taxonomy file.
    pub fn from_file(path: &Path) -> Result<Self, TaxonomyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TaxonomyError::Io { path: path.display().to_string(), source: e })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates taxonomy TOML; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, TaxonomyError> {
        let invalid =
            |key: String, message: &str| TaxonomyError::Invalid { path: origin.into(), key, message: message.into() };
        let raw: RawTaxonomy =
            toml::from_str(text).map_err(|e| TaxonomyError::Parse { path: origin.into(), message: e.to_string() })?;
        let name = raw.name.ok_or_else(|| invalid("name".into(), "missing"))?;
        let languages = raw.languages.ok_or_else(|| invalid("languages".into(), "missing"))?;
        if languages.is_empty() {
            return Err(invalid("languages".into(), "must list at least one language"));
        }
        let fallback = raw.fallback.unwrap_or_else(|| languages[0].clone());
        if !languages.contains(&fallback) {
            return Err(invalid("fallback".into(), "must be one of `languages`"));
        }
        for (lang, t) in &raw.templates {
            if !languages.contains(lang) {
                return Err(invalid(format!("templates.{lang}"), "language not listed in `languages`"));
            }
            if t.matches("{}").count() != 1 {
                return Err(invalid(format!("templates.{lang}"), "must contain {} exactly once"));
            }
        }
        if raw.topics.is_empty() {
            return Err(invalid("topics".into(), "no topics"));
        }
        let mut topics = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in raw.topics.into_iter().enumerate() {
            let id =
                t.id.filter(|s| !s.trim().is_empty()).ok_or_else(|| invalid(format!("topics[{i}].id"), "missing"))?;
            if !seen.insert(id.clone()) {
                return Err(invalid(format!("topics[{i}].id"), "duplicate id"));
            }
            if let Some(th) = t.threshold {
                if !(-1.0..=1.0).contains(&th) {
                    return Err(invalid(format!("topics[{i}].threshold"), "must be a cosine in [-1, 1]"));
                }
            }
            let mut text = BTreeMap::new();
            for (lang, value) in t.languages {
                if !languages.contains(&lang) {
                    return Err(invalid(format!("topics[{i}].{lang}"), "language not listed in `languages`"));
                }
                let tt: TopicText = value.try_into().map_err(|e: toml::de::Error| {
                    invalid(format!("topics[{i}].{lang}"), &e.message().replace('\n', " "))
                })?;
                if tt.label.trim().is_empty() || tt.description.sentences().iter().any(|s| s.trim().is_empty()) {
                    return Err(invalid(format!("topics[{i}].{lang}"), "empty label or description"));
                }
                text.insert(lang, tt);
            }
            for lang in &languages {
                if !text.contains_key(lang) {
                    return Err(invalid(
                        format!("topics[{i}].{lang}"),
                        "missing (every topic needs every language in `languages`)",
                    ));
                }
            }
            topics.push(Topic { id, threshold: t.threshold, text });
        }
        Ok(TopicTaxonomy {
            name,
            languages,
            fallback,
            templates: raw.templates,
            topics,
            sha256: sha256_hex(text.as_bytes()),
        })
    }

    /// The language whose wording a document in `lang` uses, and whether that is a fallback.
    pub fn language_for(&self, lang: Option<&str>) -> (&str, bool) {
        match lang.and_then(|l| self.languages.iter().find(|x| *x == l)) {
            Some(l) => (l.as_str(), false),
            None => (self.fallback.as_str(), true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name = "t"
languages = ["it", "en"]
fallback = "en"
[templates]
it = "Parla di {}."
en = "About {}."
[[topics]]
id = "sport"
it = { label = "sport", description = "Sport." }
en = { label = "sport", description = ["Sport.", "Games."] }
"#;

    #[test]
    fn a_valid_taxonomy_parses() {
        let t = TopicTaxonomy::from_toml(OK, "t.toml").unwrap();
        assert_eq!(t.topics[0].text["en"].description.sentences(), vec!["Sport.", "Games."]);
        assert_eq!(t.language_for(Some("de")), ("en", true));
        assert_eq!(t.language_for(Some("it")), ("it", false));
    }

    #[test]
    fn errors_name_the_offending_key() {
        let cases = [
            (OK.replace("it = { label = \"sport\", description = \"Sport.\" }\n", ""), "topics[0].it: missing"),
            (OK.replace("Parla di {}.", "Parla di."), "templates.it: must contain {}"),
            (OK.replace("id = \"sport\"\n", ""), "topics[0].id: missing"),
            (OK.replace("fallback = \"en\"", "fallback = \"fr\""), "fallback: must be one of"),
            (OK.replace("label = \"sport\", description = \"Sport.\"", "label = \"sport\""), "topics[0].it:"),
            (format!("{OK}[[topics]]\nid = \"sport\"\nit = {{ label = \"a\", description = \"b\" }}\nen = {{ label = \"a\", description = \"b\" }}\n"), "topics[1].id: duplicate"),
        ];
        for (text, expected) in cases {
            let e = TopicTaxonomy::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(expected), "{e:?} should mention {expected:?}");
        }
    }
}

#[cfg(test)]
mod shipped {
    use super::TopicTaxonomy;

    #[test]
    fn the_shipped_taxonomies_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../taxonomies");
        let news = TopicTaxonomy::from_file(&dir.join("news.toml")).expect("news.toml");
        let ids: Vec<&str> = news.topics.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids.len(), 12);
        assert!(ids.contains(&"politics") && ids.contains(&"environment_climate"));
        let sib = TopicTaxonomy::from_file(&dir.join("sib200.toml")).expect("sib200.toml");
        let mut sib_ids: Vec<&str> = sib.topics.iter().map(|t| t.id.as_str()).collect();
        sib_ids.sort();
        assert_eq!(
            sib_ids,
            ["entertainment", "geography", "health", "politics", "science/technology", "sports", "travel"]
        );
        TopicTaxonomy::from_file(&dir.join("xglue-nc.toml")).expect("xglue-nc.toml");
    }
}
