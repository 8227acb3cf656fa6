//! Code-point offsets and text hashes: the two facts that tie a stand-off record to its text.

/// Lowercase hex sha256 of the UTF-8 bytes of `text`.
///
/// ```
/// assert_eq!(postilla_annotator::text::text_sha256("abc"),
///            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
/// ```
pub fn text_sha256(text: &str) -> String {
    crate::hash::sha256_hex(text.as_bytes())
}

/// Lowercase hex sha256 of a document's own tokens (code-point spans), written as
/// `start-end` pairs separated by single spaces: what ties a record of pre-tokenised input to
/// the tokenisation its entities were read on.
///
/// ```
/// use postilla_annotator::text::tokens_sha256;
/// assert_eq!(tokens_sha256(&[[0, 6], [7, 8]]), postilla_annotator::hash::sha256_hex(b"0-6 7-8"));
/// assert_ne!(tokens_sha256(&[[0, 6], [7, 8]]), tokens_sha256(&[[0, 6], [6, 8]]));
/// ```
pub fn tokens_sha256(tokens: &[[usize; 2]]) -> String {
    let written: Vec<String> = tokens.iter().map(|[start, end]| format!("{start}-{end}")).collect();
    crate::hash::sha256_hex(written.join(" ").as_bytes())
}

/// The code points `[start, end)` of `text`, or `None` when out of range.
///
/// ```
/// assert_eq!(postilla_annotator::text::slice_chars("Müller lebt in Zürich", 15, 21), Some("Zürich"));
/// ```
pub fn slice_chars(text: &str, start: usize, end: usize) -> Option<&str> {
    if start > end {
        return None;
    }
    let mut indices = text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len()));
    let a = indices.nth(start)?;
    let b = if end == start { a } else { indices.nth(end - start - 1)? };
    Some(&text[a..b])
}

/// Maps code-point offsets to UTF-8 byte offsets (and back) for one text.
#[derive(Debug, Clone)]
pub struct OffsetMap {
    /// Byte offset of each code point, plus the text length at the end.
    char_to_byte: Vec<usize>,
}

impl OffsetMap {
    /// Builds the map for `text`.
    pub fn new(text: &str) -> Self {
        let mut char_to_byte: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        char_to_byte.push(text.len());
        OffsetMap { char_to_byte }
    }
    /// Number of code points.
    pub fn len_chars(&self) -> usize {
        self.char_to_byte.len() - 1
    }
    /// Byte offset of code point `c` (`c == len_chars()` gives the text length).
    pub fn byte(&self, c: usize) -> Option<usize> {
        self.char_to_byte.get(c).copied()
    }
    /// Code point index of byte offset `b`, which must be a character boundary.
    pub fn char_of_byte(&self, b: usize) -> Option<usize> {
        self.char_to_byte.binary_search(&b).ok()
    }
}
