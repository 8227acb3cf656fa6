//! The label set of a token classifier (`id2label` in config.json) and its tagging scheme.

use std::collections::BTreeMap;

/// The position part of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagPrefix {
    /// Outside any entity (`O`).
    Outside,
    /// Beginning (`B-`).
    Begin,
    /// Inside (`I-`), or a bare type label.
    Inside,
    /// End (`E-`/`L-`, BIOES/BILOU).
    End,
    /// Single-token entity (`S-`/`U-`, BIOES/BILOU).
    Single,
}

/// One label: its position prefix and entity type (`None` for `O`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Position prefix.
    pub prefix: TagPrefix,
    /// Entity type, e.g. `PER`.
    pub entity: Option<String>,
}

impl Tag {
    /// Parses `O`, `B-PER`, `I-PER`, `E-PER`, `L-PER`, `S-PER`, `U-PER`, or a bare type
    /// (`PER`, read as inside, as Hugging Face does).
    ///
    /// ```
    /// use postilla_core::ner::labels::{Tag, TagPrefix};
    /// assert_eq!(Tag::parse("B-LOC").prefix, TagPrefix::Begin);
    /// assert_eq!(Tag::parse("O").entity, None);
    /// assert_eq!(Tag::parse("S-ORG").entity.as_deref(), Some("ORG"));
    /// ```
    pub fn parse(label: &str) -> Tag {
        if label == "O" {
            return Tag { prefix: TagPrefix::Outside, entity: None };
        }
        let (prefix, entity) = match label.split_once('-') {
            Some(("B", e)) => (TagPrefix::Begin, e),
            Some(("I", e)) => (TagPrefix::Inside, e),
            Some(("E" | "L", e)) => (TagPrefix::End, e),
            Some(("S" | "U", e)) => (TagPrefix::Single, e),
            _ => (TagPrefix::Inside, label),
        };
        Tag { prefix, entity: Some(entity.to_owned()) }
    }
}

/// A class id that `id2label` does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingClass(pub i64);

/// The labels of a model, indexed by class id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet {
    /// Label strings by class id.
    pub names: Vec<String>,
    /// Parsed tags by class id.
    pub tags: Vec<Tag>,
}

impl LabelSet {
    /// Builds the label set from config.json's `id2label` (keys "0".."n-1"); `Err` names the
    /// first class id without a label.
    pub fn from_id2label(id2label: &BTreeMap<i64, String>) -> Result<Self, MissingClass> {
        let n = id2label.len();
        let mut names = Vec::with_capacity(n);
        for i in 0..n as i64 {
            let name = id2label.get(&i).ok_or(MissingClass(i))?;
            names.push(name.clone());
        }
        let tags = names.iter().map(|n| Tag::parse(n)).collect();
        Ok(LabelSet { names, tags })
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The entity types, sorted and deduplicated.
    pub fn entity_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.tags.iter().filter_map(|t| t.entity.clone()).collect();
        types.sort();
        types.dedup();
        types
    }
}
