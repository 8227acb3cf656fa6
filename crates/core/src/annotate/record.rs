//! Turning one document's model output into its `postilla/1` record.

use postilla_annotator::input::Document;
use postilla_annotator::record::{AnnotationRecord, EntitySpan, LanguageTag, TopicScore};
use postilla_annotator::text::tokens_sha256;
use postilla_annotator::RecordError;

use super::{AnnotateError, Annotator};
use crate::ner::NerEntity;

/// A document's entities and (topic id, score) pairs, before they become a record.
pub(super) type DocumentAnnotations = (Vec<NerEntity>, Vec<(String, f64)>);

impl Annotator {
    /// The record of `doc`: its entities, topics, language and provenance, or an error record
    /// carrying the models' error.
    pub(super) fn record(
        &self,
        doc: &Document,
        lang: Option<LanguageTag>,
        result: Result<DocumentAnnotations, AnnotateError>,
    ) -> AnnotationRecord {
        let mut r = AnnotationRecord::for_text(&doc.id, &doc.text);
        r.source = Some(doc.source.clone());
        r.tokens_sha256 = doc.tokens.as_deref().map(tokens_sha256);
        let (entities, topics) = match result {
            Ok(x) => x,
            Err(e) => {
                r.error = Some(RecordError { kind: "model".into(), message: e.to_string() });
                return r;
            }
        };
        r.entities = entities
            .into_iter()
            .map(|e| EntitySpan {
                start: e.start,
                end: e.end,
                label: e.label,
                score: Some(round6(e.score)),
                text: e.text,
            })
            .collect();
        r.topics = topics.into_iter().map(|(label, score)| TopicScore { label, score: Some(round6(score)) }).collect();
        r.lang = self.record_language(lang);
        if self.with_text {
            // a self-contained record: the text and, for pre-tokenised input, its tokens (so
            // that an export to a token format keeps the input's tokenisation)
            r.text = Some(doc.text.clone());
            r.tokens = doc.tokens.clone();
        }
        r.provenance = Some(self.provenance_value.clone());
        r
    }

    /// The record's language: the detected one, with the taxonomy language its topics were
    /// scored in when that is a fallback; `und` when none was detected and topics ran.
    fn record_language(&self, lang: Option<LanguageTag>) -> Option<LanguageTag> {
        let Some(scorer) = &self.topics else {
            return lang;
        };
        match lang {
            Some(mut l) => {
                let (used, fallback) = scorer.taxonomy().language_for(Some(&l.code));
                if fallback {
                    l.topic_language = Some(used.to_owned());
                }
                Some(l)
            }
            None => Some(LanguageTag {
                code: "und".into(),
                score: 0.0,
                topic_language: Some(scorer.taxonomy().fallback.clone()),
            }),
        }
    }
}

/// Scores are written with 6 decimals.
pub(super) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
