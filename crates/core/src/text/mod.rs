//! Text handling before the model: tokenization with exact character offsets.

pub mod tokenizer;

pub use tokenizer::{TextTokenizer, TokenizedText};
