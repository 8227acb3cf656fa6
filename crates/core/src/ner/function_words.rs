//! A name never ends on a function word. The gold sets agree: of the 45,076 entities of the
//! training sets (KIND WN/FIC/ADG, EVALITA-2009, CoNLL-2003 German train), 18 end on a
//! lowercase preposition, article or conjunction, most of them annotation slips ("Lampre e",
//! "Rosi di"). A model reads "Tribunale di Milano" or "quartiere di Harlem" as `B-ORG I-ORG
//! B-LOC` often enough, though, and grouping then gives "Tribunale di": a span that is wrong
//! whatever the gold says, and that no well-formed tag sequence forbids.
//!
//! So Postilla's decoding cuts an entity's trailing function words ([`FunctionWords::Trim`],
//! the default): the lowercase prepositions, articles and conjunctions of Italian, German and
//! English below, when they stand as words of their own (after whitespace, or first in the
//! text). A function word glued behind a hyphen is part of a name ("Kim Jong-un"); a
//! capitalised one ("Serie A", "Elisabetta I", "Di Maio") is not in the list. An entity made
//! only of function words is dropped. Nothing is merged: joining "quartiere di" with a
//! following "Harlem" was measured on KIND WN dev and lost against trimming alone (README,
//! *Function words*). The cut itself happens in decoding ([`super::decode`], step 4); this
//! module only knows the words.

use crate::names::named_values;

/// Whether an entity's trailing function words are cut from its span (step 4 of
/// [`super::decode`]'s docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionWords {
    /// "Tribunale di" becomes "Tribunale"; an entity of function words only is dropped (the
    /// default).
    #[default]
    Trim,
    /// Spans as the tags group them (Hugging Face's pipeline).
    Keep,
}

named_values!(FunctionWords, "function words", [Trim => "trim", Keep => "keep"]);

/// Italian prepositions (simple and articulated, elided forms without their apostrophe),
/// articles and conjunctions.
const ITALIAN: &[&str] = &[
    "a", "ad", "agli", "ai", "al", "all", "alla", "alle", "allo", "col", "coi", "con", "d", "da", "dagli", "dai",
    "dal", "dall", "dalla", "dalle", "dallo", "degli", "dei", "del", "dell", "della", "delle", "dello", "di", "e",
    "ed", "fra", "gli", "i", "il", "in", "l", "la", "le", "lo", "negli", "nei", "nel", "nell", "nella", "nelle",
    "nello", "o", "od", "per", "su", "sugli", "sui", "sul", "sull", "sulla", "sulle", "sullo", "tra", "un", "una",
    "uno",
];

/// German prepositions (with their contractions), articles and conjunctions.
const GERMAN: &[&str] = &[
    "am", "an", "auf", "aus", "bei", "beim", "das", "dem", "den", "der", "des", "die", "ein", "eine", "einem", "einen",
    "einer", "eines", "für", "im", "mit", "nach", "oder", "über", "und", "vom", "von", "zu", "zum", "zur",
];

/// English prepositions, articles and conjunctions (names in Italian and German news are often
/// English).
const ENGLISH: &[&str] = &["an", "and", "at", "by", "for", "from", "of", "on", "or", "the", "to", "with"];

/// Apostrophes an elided function word ends with ("dell'", "l’").
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}')
}

/// Whether `word` is one of the function words, exactly as written (lowercase), an elision's
/// apostrophe aside: "di", "dell'", "von", "of"; not "Di", "A" or "Jong".
pub fn is_function_word(word: &[char]) -> bool {
    let end = word.iter().rposition(|&c| !is_apostrophe(c)).map_or(0, |i| i + 1);
    let word: String = word[..end].iter().collect();
    [ITALIAN, GERMAN, ENGLISH].iter().any(|list| list.contains(&word.as_str()))
}

/// How many of an entity's words (code-point spans in `text`, in order) remain once its
/// trailing function words are cut: each last word that is a function word standing on its
/// own (whitespace or the text's start before it) goes, with any words without a letter or
/// digit after it ("di ,"); punctuation with no function word before it stays (step 4 trims
/// it from the span). 0 means nothing remains.
pub fn words_before_function_words(words: &[(usize, usize)], text: &[char]) -> usize {
    let mut keep = words.len();
    let mut k = words.len();
    while k > 0 {
        let (start, end) = words[k - 1];
        let surface = text.get(start..end).unwrap_or_default();
        if !surface.iter().any(|c| c.is_alphanumeric()) {
            k -= 1;
            continue;
        }
        let alone = start == 0 || text.get(start - 1).is_some_and(|c| c.is_whitespace());
        if !(alone && is_function_word(surface)) {
            break;
        }
        k -= 1;
        keep = k;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    /// The words of `text` split at whitespace, as code-point spans.
    fn words(text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in text.chars().chain(std::iter::once(' ')).enumerate() {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    out.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        out
    }

    fn kept(text: &str) -> String {
        let w = words(text);
        let k = words_before_function_words(&w, &chars(text));
        text.split_whitespace().take(k).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn lowercase_prepositions_articles_and_conjunctions_are_function_words() {
        for w in ["di", "della", "dell'", "dell’", "l'", "e", "von", "der", "zur", "of", "the"] {
            assert!(is_function_word(&chars(w)), "{w}");
        }
        for w in ["Di", "A", "I", "Jong", "Roma", "'", "", "un-", "Von"] {
            assert!(!is_function_word(&chars(w)), "{w}");
        }
    }

    #[test]
    fn trailing_function_words_are_cut() {
        assert_eq!(kept("Tribunale di"), "Tribunale");
        assert_eq!(kept("Potere Operaio e di"), "Potere Operaio");
        assert_eq!(kept("Viadotto del Polcevera di"), "Viadotto del Polcevera");
        assert_eq!(kept("Contrada dell'"), "Contrada");
        assert_eq!(kept("Tribunale di ,"), "Tribunale");
        assert_eq!(kept("Universität von"), "Universität");
        assert_eq!(kept("Bank of"), "Bank");
        assert_eq!(kept("di"), "");
    }

    #[test]
    fn names_that_end_otherwise_stay_whole() {
        for name in ["Serie A", "Elisabetta I", "Luigi Di", "Banca d' Italia", "Roma", "Tribunale ,"] {
            assert_eq!(kept(name), name.split_whitespace().collect::<Vec<_>>().join(" "), "{name}");
        }
    }

    #[test]
    fn a_function_word_glued_behind_a_hyphen_is_part_of_the_name() {
        let text = chars("Kim Jong-un");
        // raw-text words: "Kim", "Jong", "-", "un"
        let w = [(0, 3), (4, 8), (8, 9), (9, 11)];
        assert_eq!(words_before_function_words(&w, &text), 4);
    }
}
