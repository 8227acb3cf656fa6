//! A document's content tokens with their code-point spans, and the words they form: the
//! tokenization both inference ([`crate::ner::NerPipeline`]) and training
//! ([`crate::train`]) read, so that a model is trained on the words it is later asked to label.

use std::path::Path;

use super::decode::{word_starts, TokenPrediction, WordBoundaries, WordRule};
use crate::error::ModelError;
use crate::text::TextTokenizer;

/// Content tokens of one document (special tokens excluded).
#[derive(Debug, Clone)]
pub struct DocTokens {
    /// Token ids.
    pub ids: Vec<i64>,
    /// One entry per id: spans, word-rule facts, and (after a forward pass) probabilities.
    pub tokens: Vec<TokenPrediction>,
    /// The document's code points.
    pub chars: Vec<char>,
}

/// A model directory's tokenizer with what words and windows need: the word rule, the unknown
/// token, and the special tokens around a window.
#[derive(Debug, Clone)]
pub struct DocTokenizer {
    tokenizer: TextTokenizer,
    /// How the tokenizer marks word continuations.
    pub word_rule: WordRule,
    /// The token before a window's content (`[CLS]`, `<s>`), if any.
    pub bos: Option<i64>,
    /// The token after a window's content (`[SEP]`, `</s>`), if any.
    pub eos: Option<i64>,
    unk: Option<u32>,
}

impl DocTokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn from_dir(dir: &Path) -> Result<Self, ModelError> {
        let tokenizer = TextTokenizer::from_dir(dir)?;
        let word_rule = match tokenizer.inner().get_model() {
            tokenizers::ModelWrapper::WordPiece(_) => WordRule::SubwordPrefix,
            tokenizers::ModelWrapper::BPE(bpe) if bpe.continuing_subword_prefix.is_some() => WordRule::SubwordPrefix,
            _ => WordRule::Whitespace,
        };
        let specials = tokenizer.ids("", true)?;
        let (bos, eos) = match specials.as_slice() {
            [] => (None, None),
            [e] => (None, Some(i64::from(*e))),
            [b, e] => (Some(i64::from(*b)), Some(i64::from(*e))),
            other => return Err(ModelError::Tokenizer(format!("unexpected special tokens around a text: {other:?}"))),
        };
        let unk = ["<unk>", "[UNK]"].iter().find_map(|t| tokenizer.token_to_id(t));
        Ok(DocTokenizer { tokenizer, word_rule, bos, eos, unk })
    }

    /// Special tokens around a window's content.
    pub fn n_special(&self) -> usize {
        usize::from(self.bos.is_some()) + usize::from(self.eos.is_some())
    }

    /// The content tokens of `text`, with spans trimmed of whitespace.
    pub fn tokenize(&self, text: &str) -> Result<DocTokens, ModelError> {
        let enc = self.tokenizer.encode(text, false)?;
        let chars: Vec<char> = text.chars().collect();
        let mut ids = Vec::with_capacity(enc.len());
        let mut tokens = Vec::with_capacity(enc.len());
        for i in 0..enc.len() {
            if enc.special[i] {
                continue;
            }
            let span = enc.offsets[i];
            let mut trimmed = span;
            while trimmed.0 < trimmed.1 && chars[trimmed.0].is_whitespace() {
                trimmed.0 += 1;
            }
            while trimmed.1 > trimmed.0 && chars[trimmed.1 - 1].is_whitespace() {
                trimmed.1 -= 1;
            }
            let piece = self.tokenizer.inner().id_to_token(enc.ids[i]);
            let token_chars = piece.as_ref().map_or(span.1 - span.0, |t| t.chars().count());
            let is_marker = piece.as_deref() == Some("\u{2581}");
            ids.push(i64::from(enc.ids[i]));
            tokens.push(TokenPrediction {
                span,
                trimmed,
                token_chars,
                is_unknown: Some(enc.ids[i]) == self.unk,
                is_marker,
                probs: Vec::new(),
            });
        }
        Ok(DocTokens { ids, tokens, chars })
    }

    /// For each token of `doc`, whether it starts a word (step 1 of [`crate::ner::decode`]).
    pub fn word_starts(&self, doc: &DocTokens, boundaries: WordBoundaries) -> Vec<bool> {
        word_starts(&doc.tokens, &doc.chars, &self.word_rule, boundaries)
    }
}
