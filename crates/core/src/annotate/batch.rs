//! Annotating documents in batches: language, entities and topics per document, a failing
//! document isolated with its own error, unreadable input items as error records in place.

use postilla_annotator::input::{Document, InputItem};
use postilla_annotator::record::{AnnotationRecord, LanguageTag};

use super::record::{round6, DocumentAnnotations};
use super::{AnnotateError, Annotator};
use crate::ner::NerInput;
use crate::topics::TopicError;

/// A document as the NER reads it: its text, its tokens when the input was pre-tokenised, and
/// the texts around it when the run read them ([`postilla_annotator::context`]).
fn ner_input(doc: &Document) -> NerInput<'_> {
    NerInput { text: &doc.text, words: doc.tokens.as_deref(), before: &doc.context.before, after: &doc.context.after }
}

impl Annotator {
    /// Annotates a batch of documents. One record per document, in input order; a document
    /// the models fail on becomes an error record with the models' own error message
    /// (`error.kind` = `model`), and the others are unaffected. The NER reads each document's
    /// [`Document::context`] as context: set it with [`postilla_annotator::context::with_context`]
    /// (as [`crate::run::run`] does with [`Annotator::ner_context`] neighbours) or leave it empty.
    pub fn annotate(&self, docs: &[Document]) -> Vec<AnnotationRecord> {
        let inputs: Vec<NerInput> = docs.iter().map(ner_input).collect();
        let langs: Vec<Option<LanguageTag>> = docs.iter().map(|d| self.detect(&d.text)).collect();
        match self.annotate_inputs(&inputs, &langs) {
            Ok(results) => docs.iter().zip(langs).zip(results).map(|((d, l), r)| self.record(d, l, Ok(r))).collect(),
            // isolate the failing document(s): retry one by one, each keeping its own error
            Err(_) => docs
                .iter()
                .zip(langs)
                .map(|(d, l)| {
                    let one = self
                        .annotate_inputs(&[ner_input(d)], std::slice::from_ref(&l))
                        .map(|mut r| r.pop().unwrap_or_default());
                    self.record(d, l, one)
                })
                .collect(),
        }
    }

    /// Entities and topics of each text; the first error of the batch otherwise.
    fn annotate_inputs(
        &self,
        inputs: &[NerInput],
        langs: &[Option<LanguageTag>],
    ) -> Result<Vec<DocumentAnnotations>, AnnotateError> {
        let entities = match &self.ner {
            None => vec![Vec::new(); inputs.len()],
            Some(ner) => ner.predict_inputs(inputs)?,
        };
        let texts: Vec<&str> = inputs.iter().map(|i| i.text).collect();
        let topics = self.topics(&texts, langs)?;
        Ok(entities.into_iter().zip(topics).collect())
    }

    /// The detected language of a text, with its score rounded for the record.
    fn detect(&self, text: &str) -> Option<LanguageTag> {
        self.lang.detect(text).map(|g| LanguageTag { code: g.code, score: round6(g.score), topic_language: None })
    }

    /// Topic scores per text in the taxonomy language chosen from each detected language.
    fn topics(&self, texts: &[&str], langs: &[Option<LanguageTag>]) -> Result<Vec<Vec<(String, f64)>>, TopicError> {
        let Some(scorer) = &self.topics else {
            return Ok(vec![Vec::new(); texts.len()]);
        };
        let chosen: Vec<&str> =
            langs.iter().map(|l| scorer.taxonomy().language_for(l.as_ref().map(|l| l.code.as_str())).0).collect();
        scorer.score(texts, &chosen)
    }

    /// Annotates a stream of input items in batches of `batch_docs` documents; unreadable
    /// inputs become error records in place.
    pub fn records<'a>(
        &'a self,
        items: impl Iterator<Item = InputItem> + 'a,
        batch_docs: usize,
    ) -> impl Iterator<Item = Vec<AnnotationRecord>> + 'a {
        let mut items = items.peekable();
        std::iter::from_fn(move || {
            items.peek()?;
            let chunk: Vec<InputItem> = items.by_ref().take(batch_docs.max(1)).collect();
            Some(self.annotate_items(chunk))
        })
    }

    /// One record per item, in order: the documents annotated together, the unreadable ones
    /// as error records.
    pub fn annotate_items(&self, chunk: Vec<InputItem>) -> Vec<AnnotationRecord> {
        let docs: Vec<Document> = chunk.iter().filter_map(|i| i.as_ref().ok().cloned()).collect();
        let mut done = self.annotate(&docs).into_iter();
        chunk
            .into_iter()
            .map(|item| match item {
                Ok(_) => done.next().unwrap_or_else(|| AnnotationRecord::for_error("?", "internal", "record missing")),
                Err(e) => {
                    let mut r = AnnotationRecord::for_error(&e.id, e.kind, e.message);
                    r.source = Some(e.source);
                    r
                }
            })
            .collect()
    }
}
