//! From gold documents to training examples: each document tokenized once with the tokenizer
//! and word rule inference uses ([`crate::ner::tokens`]), every word's first token labelled
//! IOB2 from the gold spans (the other tokens are not scored: aggregation `first` reads only
//! the first), cut into segments at line breaks; then, per epoch, single segments and windows
//! of consecutive segments of one document (document context, as in FLERT).

use std::collections::BTreeMap;

use super::error::TrainError;
use super::gold::{GoldDoc, GoldSet};
use super::options::{MissingTypes, TrainOptions};
use super::rng::SplitMix64;
use super::spacing::news_spaced;

/// The random stream of the news-spacing draws (apart from the epochs' streams).
const NEWS_STREAM: u64 = 0x6e65_7773_0000_0000;
use crate::lang::LanguageIdentifier;
use crate::ner::tokens::DocTokenizer;
use crate::ner::WordBoundaries;

/// What the loss asks of one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Not scored (a word's later tokens).
    Ignore,
    /// This label id.
    Label(u16),
    /// `O` or any label of this set of [`LabelScheme::partial_sets`] (a gold set that does
    /// not annotate some types).
    Partial(u16),
}

/// The IOB2 labels of a run: `O`, then `B-T`, `I-T` for each type in order.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelScheme {
    /// The entity types.
    pub types: Vec<String>,
    /// Allowed label ids of each partial set (each includes `O` = 0).
    pub partial_sets: Vec<Vec<u16>>,
}

impl LabelScheme {
    /// The scheme for `types`.
    pub fn new(types: Vec<String>) -> Self {
        LabelScheme { types, partial_sets: Vec::new() }
    }

    /// `id2label`: O, B-T1, I-T1, B-T2, ...
    pub fn labels(&self) -> Vec<String> {
        std::iter::once("O".to_string())
            .chain(self.types.iter().flat_map(|t| [format!("B-{t}"), format!("I-{t}")]))
            .collect()
    }

    /// The id of `B-T` (`begin`) or `I-T` of type index `t`.
    fn id(t: usize, begin: bool) -> u16 {
        (1 + 2 * t + usize::from(!begin)) as u16
    }

    /// The partial set for `missing` types (added once), as a [`Target::Partial`] index.
    fn partial_for(&mut self, missing: &[String]) -> Option<u16> {
        let mut ids = vec![0u16];
        for m in missing {
            let t = self.types.iter().position(|x| x == m)?;
            ids.extend([Self::id(t, true), Self::id(t, false)]);
        }
        let index = self.partial_sets.iter().position(|s| *s == ids).unwrap_or_else(|| {
            self.partial_sets.push(ids);
            self.partial_sets.len() - 1
        });
        Some(index as u16)
    }
}

/// A run of tokens of one document (a line, or a piece of an over-long line).
#[derive(Debug, Clone)]
pub struct Segment {
    /// The document (for context windows): documents are numbered in file order.
    pub doc: usize,
    /// Token ids.
    pub ids: Vec<i64>,
    /// What the loss asks of each token.
    pub targets: Vec<Target>,
}

/// The tokenized training set.
#[derive(Debug, Clone)]
pub struct EncodedSet {
    /// Segments in document order.
    pub segments: Vec<Segment>,
    /// Content tokens.
    pub tokens: usize,
    /// Gold entities whose boundaries fall inside a word of the word rule (trained as the
    /// words they cover: they cannot be represented exactly).
    pub misaligned_entities: usize,
    /// Entities.
    pub entities: usize,
}

/// Tokenizes and labels the training documents.
pub fn encode(
    gold: &GoldSet,
    tokenizer: &DocTokenizer,
    scheme: &mut LabelScheme,
    options: &TrainOptions,
) -> Result<EncodedSet, TrainError> {
    let max_content = options.max_length - tokenizer.n_special();
    let detector = (!options.missing_types.is_empty()).then(LanguageIdentifier::new);
    let mut set = EncodedSet { segments: Vec::new(), tokens: 0, misaligned_entities: 0, entities: 0 };
    let mut doc_number = 0;
    for (i, doc) in gold.docs.iter().enumerate() {
        let joined = i > 0 && options.join_records.contains(&gold.files[doc.file]) && gold.docs[i - 1].file == doc.file;
        if i > 0 && !joined {
            doc_number += 1;
        }
        let missing = missing_types(doc, gold, &options.missing_types, detector.as_ref());
        let partial = match missing.is_empty() {
            true => None,
            false => Some(scheme.partial_for(&missing).ok_or_else(|| TrainError::Gold {
                path: gold.files[doc.file].clone(),
                line: doc.line,
                message: format!("--missing-types names {missing:?}, not all of them trained types"),
            })?),
        };
        let spaced = (options.news_share > 0.0)
            .then(|| {
                news_spaced(&doc.record, options.news_share, &mut SplitMix64::new(options.seed, NEWS_STREAM ^ i as u64))
            })
            .flatten()
            .map(|record| GoldDoc { record, ..doc.clone() });
        let labelled = label_document(spaced.as_ref().unwrap_or(doc), tokenizer, scheme, partial)?;
        set.tokens += labelled.ids.len();
        set.entities += doc.record.entities.len();
        set.misaligned_entities += labelled.misaligned;
        for (ids, targets) in split_lines(&labelled, max_content) {
            set.segments.push(Segment { doc: doc_number, ids, targets });
        }
    }
    Ok(set)
}

/// The missing types that apply to `doc` (by file path or language).
fn missing_types(
    doc: &GoldDoc,
    gold: &GoldSet,
    specs: &[MissingTypes],
    detector: Option<&LanguageIdentifier>,
) -> Vec<String> {
    let mut lang: Option<String> = doc.record.lang.as_ref().map(|l| l.code.clone());
    let mut out = Vec::new();
    for spec in specs {
        let by_file = gold.files[doc.file] == std::path::Path::new(&spec.scope);
        if !by_file && lang.is_none() {
            lang = detector.and_then(|d| d.detect(doc.text())).map(|g| g.code);
        }
        if by_file || lang.as_deref() == Some(spec.scope.as_str()) {
            out.extend(spec.types.iter().cloned());
        }
    }
    out
}

/// A document's tokens with targets, and where its lines start.
struct Labelled {
    ids: Vec<i64>,
    targets: Vec<Target>,
    /// Token indices that start a line (after a line break), and word starts.
    line_starts: Vec<bool>,
    word_starts: Vec<bool>,
    misaligned: usize,
}

fn label_document(
    doc: &GoldDoc,
    tokenizer: &DocTokenizer,
    scheme: &LabelScheme,
    partial: Option<u16>,
) -> Result<Labelled, TrainError> {
    let tokens = tokenizer.tokenize(doc.text())?;
    let starts = tokenizer.word_starts(&tokens, WordBoundaries::Punctuation);
    // entity index of every code point
    let mut owner: Vec<Option<usize>> = vec![None; tokens.chars.len() + 1];
    for (k, e) in doc.record.entities.iter().enumerate() {
        owner[e.start..e.end].iter_mut().for_each(|o| *o = Some(k));
    }
    let type_of: BTreeMap<&str, usize> = scheme.types.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut targets = Vec::with_capacity(tokens.ids.len());
    let mut begun = vec![false; doc.record.entities.len()];
    let mut word_start_chars = std::collections::BTreeSet::new();
    let mut line_starts = Vec::with_capacity(tokens.ids.len());
    let mut previous_end = 0;
    for (tok, &start) in tokens.tokens.iter().zip(&starts) {
        let gap = &tokens.chars[previous_end.min(tok.trimmed.0)..tok.trimmed.0];
        line_starts.push(gap.contains(&'\n'));
        previous_end = tok.trimmed.1.max(previous_end);
        let visible = tok.trimmed.0 < tok.trimmed.1 && !tok.is_marker;
        if !start || !visible {
            targets.push(Target::Ignore);
            continue;
        }
        word_start_chars.insert(tok.trimmed.0);
        targets.push(match owner[tok.trimmed.0] {
            Some(k) => {
                let entity = &doc.record.entities[k];
                let t = *type_of.get(entity.label.as_str()).unwrap_or(&0);
                let first = !begun[k];
                begun[k] = true;
                Target::Label(LabelScheme::id(t, first))
            }
            None => partial.map_or(Target::Label(0), Target::Partial),
        });
    }
    let ends = word_ends(&tokens.tokens, &starts);
    let misaligned =
        doc.record.entities.iter().filter(|e| !word_start_chars.contains(&e.start) || !ends.contains(&e.end)).count();
    Ok(Labelled { ids: tokens.ids, targets, line_starts, word_starts: starts, misaligned })
}

/// The code point where each word of the word rule ends (its last visible character + 1).
fn word_ends(tokens: &[crate::ner::decode::TokenPrediction], starts: &[bool]) -> std::collections::BTreeSet<usize> {
    let mut ends = std::collections::BTreeSet::new();
    let mut end = None;
    for (i, t) in tokens.iter().enumerate() {
        if starts[i] {
            ends.extend(end.take());
        }
        if t.trimmed.0 < t.trimmed.1 {
            end = Some(t.trimmed.1);
        }
    }
    ends.extend(end);
    ends
}

/// The document's lines as (ids, targets); a line longer than `max_content` tokens is cut
/// into pieces that start at word starts where possible.
fn split_lines(doc: &Labelled, max_content: usize) -> Vec<(Vec<i64>, Vec<Target>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let n = doc.ids.len();
    while start < n {
        let mut end = start + 1;
        while end < n && !doc.line_starts[end] && end - start < max_content {
            end += 1;
        }
        if end < n && !doc.line_starts[end] && end - start == max_content {
            // over-long line: cut at the last word start, unless the word fills the piece
            if let Some(cut) = (start + 1..end).rev().find(|&i| doc.word_starts[i]) {
                end = cut;
            }
        }
        out.push((doc.ids[start..end].to_vec(), doc.targets[start..end].to_vec()));
        start = end;
    }
    out
}

/// One training example: content tokens without special tokens.
#[derive(Debug, Clone)]
pub struct Example {
    /// Token ids.
    pub ids: Vec<i64>,
    /// Targets.
    pub targets: Vec<Target>,
}

/// The examples of one epoch: each segment once, either alone (with probability
/// `single_share`) or in a window of consecutive segments of its document up to a random
/// target length between 64 tokens and `max_content` (the recipe of training/train_ner.py).
pub fn epoch_examples(
    segments: &[Segment],
    max_content: usize,
    single_share: f64,
    rng: &mut SplitMix64,
) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut current: Option<(usize, Example)> = None;
    let mut target = 0;
    for s in segments {
        let fits = current.as_ref().is_some_and(|(doc, e)| *doc == s.doc && e.ids.len() + s.ids.len() <= target);
        if fits {
            if let Some((_, e)) = current.as_mut() {
                e.ids.extend_from_slice(&s.ids);
                e.targets.extend_from_slice(&s.targets);
            }
            continue;
        }
        if let Some((_, e)) = current.take() {
            examples.push(e);
        }
        current = Some((s.doc, Example { ids: s.ids.clone(), targets: s.targets.clone() }));
        target = if rng.next_f64() < single_share { 0 } else { rng.range(64.min(max_content), max_content) };
    }
    examples.extend(current.map(|(_, e)| e));
    examples
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(doc: usize, n: usize) -> Segment {
        Segment { doc, ids: vec![5; n], targets: vec![Target::Label(0); n] }
    }

    #[test]
    fn windows_stay_in_their_document_and_keep_every_token() {
        let segments: Vec<Segment> = (0..40).map(|i| segment(i / 10, 20 + i % 7)).collect();
        let total: usize = segments.iter().map(|s| s.ids.len()).sum();
        let mut rng = SplitMix64::new(3, 1);
        let examples = epoch_examples(&segments, 126, 0.3, &mut rng);
        assert_eq!(examples.iter().map(|e| e.ids.len()).sum::<usize>(), total);
        assert!(examples.iter().all(|e| e.ids.len() <= 126));
        assert!(examples.len() < segments.len(), "some windows join segments");
        let singles = epoch_examples(&segments, 126, 1.0, &mut rng);
        assert_eq!(singles.len(), segments.len());
    }

    #[test]
    fn label_ids_follow_the_scheme() {
        let mut scheme = LabelScheme::new(vec!["PER".into(), "MISC".into()]);
        assert_eq!(scheme.labels(), ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]);
        assert_eq!(LabelScheme::id(1, true), 3);
        assert_eq!(scheme.partial_for(&["MISC".into()]), Some(0));
        assert_eq!(scheme.partial_sets, vec![vec![0, 3, 4]]);
        assert_eq!(scheme.partial_for(&["MISC".into()]), Some(0));
        assert_eq!(scheme.partial_for(&["LOC".into()]), None);
    }
}
