//! The documents around a document in its input, for a NER model to read as context: a corpus
//! split into sentences, one record each (KIND, EVALITA, many sentence-split exports), loses
//! what the article said around each sentence, and a model trained on windows of consecutive
//! sentences (FLERT, Schweter and Akbik 2020) reads a sentence better with its neighbours.
//!
//! [`with_context`] attaches to every document the texts of the readable documents before and
//! after it in the same input, by input order alone: neither `--shard` nor `--resume` changes
//! what a document is read with, so a sharded or resumed run writes what a single run writes.
//! Context is only read: entities are decoded in the document's own text.

use std::collections::VecDeque;

pub use crate::input::DocumentContext;
use crate::input::InputItem;

/// `items` (one input, in order) with each readable document's [`DocumentContext`] set to the
/// texts of up to `n` readable documents before it and `n` after it; unreadable items pass
/// through and are skipped as neighbours. With `n = 0` the items are unchanged.
///
/// ```
/// use postilla_annotator::context::with_context;
/// use postilla_annotator::input::Document;
/// let doc = |id: &str, text: &str| Ok(Document::new(id, text, "example"));
/// let items = vec![doc("1", "Primo."), doc("2", "Secondo."), doc("3", "Terzo.")];
/// let docs: Vec<Document> = with_context(items.into_iter(), 1).map(Result::unwrap).collect();
/// assert_eq!((docs[1].context.before.as_str(), docs[1].context.after.as_str()), ("Primo.", "Terzo."));
/// assert_eq!((docs[0].context.before.as_str(), docs[2].context.after.as_str()), ("", ""));
/// ```
pub fn with_context(items: impl Iterator<Item = InputItem>, n: usize) -> impl Iterator<Item = InputItem> {
    let mut items = items.fuse();
    let mut ahead: VecDeque<InputItem> = VecDeque::new();
    let mut behind: VecDeque<String> = VecDeque::new();
    std::iter::from_fn(move || {
        if n == 0 {
            return items.next();
        }
        // the current item and n readable documents after it, when the input has them
        while ahead.is_empty() || readable(ahead.iter().skip(1)) < n {
            match items.next() {
                Some(item) => ahead.push_back(item),
                None => break,
            }
        }
        let mut item = ahead.pop_front()?;
        if let Ok(doc) = &mut item {
            let after: Vec<&str> =
                ahead.iter().filter_map(|i| i.as_ref().ok()).take(n).map(|d| d.text.as_str()).collect();
            doc.context.after = after.join("\n");
            doc.context.before = behind.iter().map(String::as_str).collect::<Vec<_>>().join("\n");
            behind.push_back(doc.text.clone());
            if behind.len() > n {
                behind.pop_front();
            }
        }
        Some(item)
    })
}

/// How many of `items` are readable documents.
fn readable<'a>(items: impl Iterator<Item = &'a InputItem>) -> usize {
    items.filter(|i| i.is_ok()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Document, DocumentError};

    fn doc(id: &str) -> InputItem {
        Ok(Document::new(id, &format!("testo {id}"), "test"))
    }

    fn bad(id: &str) -> InputItem {
        Err(DocumentError { id: id.into(), kind: "empty", message: "empty".into(), source: "test".into() })
    }

    fn contexts(items: Vec<InputItem>, n: usize) -> Vec<Option<(String, String)>> {
        with_context(items.into_iter(), n).map(|i| i.ok().map(|d| (d.context.before, d.context.after))).collect()
    }

    #[test]
    fn each_document_reads_its_neighbours_in_input_order() {
        let got = contexts(vec![doc("1"), doc("2"), doc("3"), doc("4")], 2);
        let pair = |a: &str, b: &str| Some((a.replace('|', "\n"), b.replace('|', "\n")));
        assert_eq!(
            got,
            vec![
                pair("", "testo 2|testo 3"),
                pair("testo 1", "testo 3|testo 4"),
                pair("testo 1|testo 2", "testo 4"),
                pair("testo 2|testo 3", ""),
            ]
        );
    }

    #[test]
    fn unreadable_items_pass_through_and_are_not_neighbours() {
        let got = contexts(vec![doc("1"), bad("x"), doc("2"), bad("y"), doc("3")], 1);
        let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(got, vec![pair("", "testo 2"), None, pair("testo 1", "testo 3"), None, pair("testo 2", "")]);
    }

    #[test]
    fn no_context_leaves_the_items_unchanged() {
        let items = vec![doc("1"), bad("x"), doc("2")];
        let got: Vec<InputItem> = with_context(items.clone().into_iter(), 0).collect();
        assert_eq!(got, items);
    }
}
