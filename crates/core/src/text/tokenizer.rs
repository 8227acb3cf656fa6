//! A model directory's `tokenizer.json`, loaded with the `tokenizers` crate, giving token ids
//! together with offsets in Unicode code points (never UTF-8 bytes: see defect 2 in
//! docs/architecture.md).

use std::path::Path;

use crate::error::ModelError;

/// One text after tokenization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedText {
    /// Token ids, special tokens included when asked for.
    pub ids: Vec<u32>,
    /// Half-open offsets of each token in code points of the input text; `(0, 0)` for
    /// special tokens.
    pub offsets: Vec<(usize, usize)>,
    /// `true` for special tokens (`<s>`, `</s>`, …).
    pub special: Vec<bool>,
    /// Index of the pre-tokenized word each token belongs to (`None` for special tokens).
    pub words: Vec<Option<u32>>,
}

impl TokenizedText {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A Hugging Face tokenizer (from `tokenizer.json`) with Postilla's conventions.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("vocab_size", &self.inner.get_vocab_size(true)).finish()
    }
}

impl TextTokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn from_dir(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::MissingFile {
                dir: dir.into(),
                file: "tokenizer.json".into(),
                hint: String::new(),
            });
        }
        Self::from_file(&path)
    }

    /// Loads a `tokenizer.json` file. Truncation and padding stored in the file are switched
    /// off: Postilla windows and pads itself.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let mut inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        inner.with_truncation(None).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        Ok(TextTokenizer { inner })
    }

    /// Tokenizes `text`, with or without the model's special tokens, with code-point offsets.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<TokenizedText, ModelError> {
        let enc = self
            .inner
            .encode_char_offsets(text, add_special_tokens)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(TokenizedText {
            ids: enc.get_ids().to_vec(),
            offsets: enc.get_offsets().to_vec(),
            special: enc.get_special_tokens_mask().iter().map(|&m| m == 1).collect(),
            words: enc.get_word_ids().to_vec(),
        })
    }

    /// Token ids only.
    pub fn ids(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, ModelError> {
        Ok(self.encode(text, add_special_tokens)?.ids)
    }

    /// Id of a token string, if in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
