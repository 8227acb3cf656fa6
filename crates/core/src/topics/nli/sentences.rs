//! Splitting a long document into sentences, so that NLI chunks end at sentence boundaries.

/// Sentence boundaries: after `.`, `!`, `?`, `…` (optionally followed by closing quotes or
/// brackets) and whitespace, and at line breaks.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let next_ws = chars.get(k + 1).is_none_or(|(_, n)| n.is_whitespace());
        let boundary = c == '\n'
            || (matches!(c, '.' | '!' | '?' | '…' | '”' | '"' | '»' | ')') && next_ws && {
                // the closing mark must follow a terminal punctuation mark
                matches!(c, '.' | '!' | '?' | '…') || k > 0 && matches!(chars[k - 1].1, '.' | '!' | '?' | '…')
            });
        if boundary {
            let end = i + c.len_utf8();
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences() {
        assert_eq!(
            split_sentences("Xi ha parlato. “Bene!” disse Putin.\nNuova riga senza punto"),
            vec!["Xi ha parlato.", "“Bene!”", "disse Putin.", "Nuova riga senza punto"]
        );
        assert_eq!(split_sentences("3.5 milioni di euro"), vec!["3.5 milioni di euro"]);
    }
}
