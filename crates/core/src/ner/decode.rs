//! From per-token label probabilities to entity spans: word grouping, subword aggregation
//! (`first`, `average`, `max`, with Hugging Face's `aggregation_strategy` semantics) and tag
//! decoding (IOB2, IOB1, BIOES/BILOU; greedy as Hugging Face, or constrained Viterbi).
//!
//! Semantics, step by step (as in `transformers`' `TokenClassificationPipeline`):
//! 1. **Words.** A token continues the previous word when it is a subword: for tokenizers
//!    with a continuing-subword prefix (WordPiece `##`), when the token string and the text
//!    it covers differ in length; otherwise when the character before it is not whitespace.
//!    An `<unk>` token always starts a word. (Hugging Face only looks for the ASCII space,
//!    so a word after a newline or tab is glued to the previous one; Postilla treats every
//!    Unicode whitespace character as a boundary.) With [`WordBoundaries::Punctuation`]
//!    (Postilla's default) a token also starts a word when its first visible character is
//!    punctuation (Unicode category P*) or when punctuation precedes it, the way the gold
//!    sets are tokenised: "Putin," is "Putin" + ",", "(AP)" is "(" + "AP" + ")", "AP.Putin"
//!    is "AP" + "." + "Putin". [`WordBoundaries::HuggingFace`] keeps the pipeline's words.
//!    A document that comes with its own tokens (a pre-tokenised corpus) is decoded with
//!    those tokens as its words instead ([`Decoder::entities_in_words`]).
//! 2. **Aggregation** gives each word one label and score: `first` = argmax of the first
//!    token's probabilities; `max` = argmax of the token with the highest probability;
//!    `average` = argmax of the mean probability vector. A word is never split.
//! 3. **Tags and grouping.** With [`Decoding::Greedy`] each word keeps its aggregated argmax;
//!    with [`Decoding::Viterbi`] (Postilla's default) the words' tags are the most probable
//!    sequence the label set's scheme allows ([`viterbi`]: no `I-X` after `O` or another
//!    type, BIOES entities closed, nothing continued across a glued sentence mark), read
//!    over the visible words only (a whitespace-only word is dropped). Then consecutive
//!    words join an entity when they have the same type and the
//!    later one is `I-`/`E-` (or a bare type) and the earlier one did not end the entity
//!    (`E-`/`S-`); `B-`/`S-` always start a new entity. `O` words are dropped. With
//!    [`WordBoundaries::Punctuation`] a word glued behind a sentence mark ("AP.Putin",
//!    "Roma,Milano") starts a new entity even when tagged `I-` (not after a single-letter
//!    abbreviation such as "A.C."; hyphens are not breaks). With a document's own tokens as
//!    words, a line break between two tokens ends an entity (a pre-tokenised document's lines
//!    are its sentences).
//! 4. **Span and score.** An entity spans from its first word's first code point to its last
//!    word's last code point (token spans trimmed of whitespace, so surfaces never start or
//!    end with a space); its score is the mean of its words' scores. A word made only of
//!    whitespace (a lone SentencePiece `▁`) never becomes an entity on its own. With
//!    [`WordBoundaries::Punctuation`] leading and trailing punctuation and symbols are trimmed
//!    from the span too (a token such as `AP.` can hold a name and its full stop, `BRNN>>`
//!    a name and a breadcrumb); an entity made only of them is dropped, and a lone `▁` piece
//!    never widens a span. With [`FunctionWords::Trim`] (the default, raw or pre-tokenised
//!    text alike) an entity's trailing function words are cut first ("Tribunale di" is
//!    "Tribunale", [`super::function_words`]), and its score is the mean of the words kept.
//! 5. **Name pairs.** With [`WordBoundaries::Punctuation`] an entity whose whole surface is
//!    two names of states joined by a glued hyphen ("Cina-Russia", "USA-China") becomes two
//!    entities of its type and score, one per name ([`super::country_pairs`]); hyphenated
//!    single names ("Emilia-Romagna", "Bosnia-Erzegovina") stay whole. A person entity of two
//!    single names joined by a glued hyphen ("l'appello Putin-Xi") becomes two as well when
//!    the document also names each of them in a person entity without a hyphen ("Vladimir
//!    Putin", "Xi Jinping"); a double surname named only as such ("Kramp-Karrenbauer") stays
//!    whole ([`super::person_pairs`]).

use super::country_pairs::country_pair_hyphen;
use super::function_words::words_before_function_words;
pub use super::function_words::FunctionWords;
use super::labels::{LabelSet, TagPrefix};
use super::person_pairs::{person_pair_hyphen, PersonWords, PERSON};
use crate::names::named_values;

/// How the probabilities of a word's subword tokens become one word label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// The first token decides (the default).
    #[default]
    First,
    /// The argmax of the mean probability vector.
    Average,
    /// The token with the single highest probability decides.
    Max,
}

named_values!(Aggregation, "aggregation", [First => "first", Average => "average", Max => "max"]);

/// How word boundaries are found (step 1 of the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordRule {
    /// The tokenizer marks continuation pieces with a prefix (WordPiece `##`).
    SubwordPrefix,
    /// No such marker: a token continues a word unless whitespace precedes it.
    Whitespace,
}

/// Where words end besides the tokenizer's own boundaries (step 1 of the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WordBoundaries {
    /// Also at punctuation, as the gold sets tokenise (the default); spans never begin or
    /// end with punctuation.
    #[default]
    Punctuation,
    /// Only where Hugging Face's token-classification pipeline draws them.
    HuggingFace,
}

named_values!(WordBoundaries, "word boundaries", [Punctuation => "punctuation", HuggingFace => "huggingface"]);

/// How the word labels become entities (step 3 of the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// Each word takes its most probable label, and the tags are grouped as they come (an
    /// `I-` after `O` or after another type starts an entity), as Hugging Face's pipeline does.
    Greedy,
    /// The most probable well-formed tag sequence (constrained Viterbi over the words' label
    /// probabilities): an `I-X` follows only `B-X` or `I-X`, a BIOES entity is closed by its
    /// `E-`, and nothing continues across a glued sentence mark (or, in pre-tokenised input,
    /// a line break). The default.
    #[default]
    Viterbi,
}

named_values!(Decoding, "decoding", [Viterbi => "viterbi", Greedy => "greedy"]);

/// Whether `c` is punctuation (Unicode general category P*).
pub fn is_punctuation(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    matches!(
        get_general_category(c),
        G::ConnectorPunctuation
            | G::DashPunctuation
            | G::OpenPunctuation
            | G::ClosePunctuation
            | G::InitialPunctuation
            | G::FinalPunctuation
            | G::OtherPunctuation
    )
}

/// Whether `c` is a symbol (Unicode general category S*: `>`, `+`, `€`, `©`, ...), trimmed from
/// span ends like punctuation.
pub fn is_symbol(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    matches!(get_general_category(c), G::MathSymbol | G::CurrencySymbol | G::ModifierSymbol | G::OtherSymbol)
}

/// One content token of a document, ready for decoding.
#[derive(Debug, Clone)]
pub struct TokenPrediction {
    /// Code-point span in the document as the tokenizer reports it.
    pub span: (usize, usize),
    /// The span without leading/trailing whitespace (may be empty).
    pub trimmed: (usize, usize),
    /// Length in code points of the token string (e.g. `##ing` = 5).
    pub token_chars: usize,
    /// Whether the token is the unknown token.
    pub is_unknown: bool,
    /// Whether the token is only SentencePiece's word-boundary mark `▁`. At the start of a
    /// text its offsets cover the next character ("MOSCA" is `▁` (0, 1), `MOS` (0, 3), `CA`),
    /// so with [`WordBoundaries::Punctuation`] it is treated as whitespace.
    pub is_marker: bool,
    /// Probabilities over the label set.
    pub probs: Vec<f32>,
}

/// A decoded entity in code points.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEntity {
    /// First code point.
    pub start: usize,
    /// One past the last code point.
    pub end: usize,
    /// Entity type.
    pub label: String,
    /// Mean of the word scores.
    pub score: f64,
}

struct Word {
    start: usize,
    end: usize,
    label: usize,
    score: f64,
    /// The aggregated label probabilities the label was read from.
    probs: Vec<f32>,
}

impl Word {
    fn new(start: usize, end: usize, probs: Vec<f32>) -> Self {
        let label = argmax(&probs);
        Word { start, end, label, score: f64::from(probs[label]), probs }
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

fn is_subword(tok: &TokenPrediction, chars: &[char], rule: &WordRule, boundaries: WordBoundaries) -> bool {
    if tok.is_unknown {
        return false;
    }
    if boundaries == WordBoundaries::Punctuation {
        let (visible, end) = tok.trimmed;
        let starts_with_punct = visible < end && chars.get(visible).is_some_and(|&c| is_punctuation(c));
        let after_punct = visible > 0 && chars.get(visible - 1).is_some_and(|&c| is_punctuation(c));
        if starts_with_punct || after_punct {
            return false;
        }
    }
    let (start, end) = tok.span;
    match rule {
        WordRule::SubwordPrefix => tok.token_chars != end - start,
        WordRule::Whitespace => {
            start > 0 && !chars[start - 1].is_whitespace() && !chars.get(start).is_some_and(|c| c.is_whitespace())
        }
    }
}

/// The label distribution a word is read from (step 2 of the module docs).
fn aggregate_word(tokens: &[&TokenPrediction], how: Aggregation) -> Vec<f32> {
    match how {
        Aggregation::First => tokens[0].probs.clone(),
        Aggregation::Max => tokens
            .iter()
            .fold(None::<&TokenPrediction>, |acc, t| match acc {
                Some(a) if a.probs[argmax(&a.probs)] >= t.probs[argmax(&t.probs)] => Some(a),
                _ => Some(t),
            })
            .map_or_else(|| tokens[0].probs.clone(), |t| t.probs.clone()),
        Aggregation::Average => {
            let n = tokens[0].probs.len();
            let mut mean = vec![0f32; n];
            for t in tokens {
                for (m, p) in mean.iter_mut().zip(&t.probs) {
                    *m += p;
                }
            }
            for m in &mut mean {
                *m /= tokens.len() as f32;
            }
            mean
        }
    }
}

/// For each token, whether it starts a word (step 1 of the module docs): what decoding groups
/// by, and what training labels ([`crate::train`]).
pub fn word_starts(
    tokens: &[TokenPrediction],
    chars: &[char],
    rule: &WordRule,
    boundaries: WordBoundaries,
) -> Vec<bool> {
    tokens.iter().enumerate().map(|(i, tok)| i == 0 || !is_subword(tok, chars, rule, boundaries)).collect()
}

fn words(
    tokens: &[TokenPrediction],
    chars: &[char],
    rule: &WordRule,
    boundaries: WordBoundaries,
    how: Aggregation,
) -> Vec<Word> {
    let mut out = Vec::new();
    let mut group: Vec<&TokenPrediction> = Vec::new();
    let mut flush = |group: &mut Vec<&TokenPrediction>| {
        if group.is_empty() {
            return;
        }
        let probs = aggregate_word(group, how);
        let spans: Vec<(usize, usize)> = group
            .iter()
            .filter(|t| !(t.is_marker && boundaries == WordBoundaries::Punctuation))
            .map(|t| t.trimmed)
            .filter(|s| s.0 < s.1)
            .collect();
        let start = spans.first().map_or(group[0].trimmed.0, |s| s.0);
        let end = spans.last().map_or(start, |s| s.1);
        out.push(Word::new(start, end, probs));
        group.clear();
    };
    for tok in tokens {
        if !group.is_empty() && !is_subword(tok, chars, rule, boundaries) {
            flush(&mut group);
        }
        group.push(tok);
    }
    flush(&mut group);
    out
}

/// Whether the word starting at `start` follows a sentence mark glued between two words, as
/// in "AP.Putin" or "Roma,Milano": the previous word ends right there (`prev_end == start`),
/// the character before `start` is one of `. , ; : ! ?`, the word starts with an uppercase
/// letter, and the mark does not close a single-letter abbreviation ("A.C. Milan",
/// "U.S.A."). Such a word starts a new entity whatever its tag says (an `I-` there is the
/// model carrying an entity across the missing space). Hyphens are not breaks: a rule that
/// split "Cina-Russia" would split "Baden-Württemberg" too (measured on dev: −9.7 F1 on
/// CoNLL-2003 German); two state names joined by a hyphen are split after grouping instead
/// ([`super::country_pairs`]).
fn is_glued_sentence_break(chars: &[char], prev_end: usize, start: usize) -> bool {
    if prev_end != start || start < 2 || start >= chars.len() || !chars[start].is_uppercase() {
        return false;
    }
    if !".,;:!?".contains(chars[start - 1]) {
        return false;
    }
    let letters = chars[..start - 1].iter().rev().take_while(|c| c.is_alphanumeric()).count();
    letters >= 2
}

/// Decoding configured once per model: its label set, the tag transitions its scheme allows,
/// how pieces become word labels and how word labels become tags.
#[derive(Debug, Clone)]
pub struct Decoder {
    labels: LabelSet,
    transitions: Transitions,
    aggregation: Aggregation,
    decoding: Decoding,
    function_words: FunctionWords,
}

/// Where an entity may not continue from the previous word (step 3 of the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakRule {
    /// Nowhere (Hugging Face's words).
    None,
    /// After a sentence mark glued between two words ("AP.Putin"): the punctuation rule.
    GluedSentenceMarks,
    /// At a line break between two words: pre-tokenised input, whose lines are its sentences.
    LineBreaks,
}

impl Decoder {
    /// A decoder for a model with `labels`; trailing function words are cut
    /// ([`FunctionWords::Trim`]) unless [`Decoder::with_function_words`] says otherwise.
    pub fn new(labels: LabelSet, aggregation: Aggregation, decoding: Decoding) -> Self {
        let transitions = Transitions::of(&labels);
        Decoder { labels, transitions, aggregation, decoding, function_words: FunctionWords::default() }
    }

    /// The same decoder with `function_words` (step 4 of the module docs).
    pub fn with_function_words(self, function_words: FunctionWords) -> Self {
        Decoder { function_words, ..self }
    }

    /// The model's label set.
    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    /// Decodes one document's content tokens into entities (see the module docs).
    pub fn entities(
        &self,
        tokens: &[TokenPrediction],
        text_chars: &[char],
        rule: &WordRule,
        boundaries: WordBoundaries,
    ) -> Vec<DecodedEntity> {
        let punctuation_rule = boundaries == WordBoundaries::Punctuation;
        let breaks = if punctuation_rule { BreakRule::GluedSentenceMarks } else { BreakRule::None };
        let (words, cut) =
            self.decode_words(words(tokens, text_chars, rule, boundaries, self.aggregation), text_chars, breaks);
        let ends = SpanEnds { punctuation: punctuation_rule, function_words: self.function_words };
        let entities = group_entities(&words, &cut, text_chars, &self.labels, ends);
        if punctuation_rule {
            split_name_pairs(entities, text_chars)
        } else {
            entities
        }
    }

    /// Decodes one document's content tokens into entities whose words are the document's
    /// own tokens (`given`: code-point spans, in order, not overlapping), as a pre-tokenised
    /// corpus (CoNLL, KIND, EVALITA, `postilla import`) defines them. A piece belongs to the
    /// given token its first visible code point lies in (a lone `▁` mark to none); a given
    /// token's pieces make one word, labelled by aggregation as usual, and spanning exactly
    /// that token, so that every entity starts and ends at token boundaries ("S.p.A." stays
    /// whole; a piece such as `AP.` over the tokens "AP" and "." makes the word "AP"). A piece
    /// outside every given token is a word of its own, up to the next token's start. An
    /// entity does not run across a line break between two tokens (the lines of a
    /// pre-tokenised document are its sentences, as `postilla import` writes them); there is
    /// no glued-break rule, and spans are not trimmed of punctuation: the tokens are
    /// authoritative (trailing function words are cut as in raw text, with
    /// [`FunctionWords::Trim`]).
    pub fn entities_in_words(
        &self,
        tokens: &[TokenPrediction],
        text_chars: &[char],
        given: &[[usize; 2]],
    ) -> Vec<DecodedEntity> {
        let (words, cut) =
            self.decode_words(given_words(tokens, given, self.aggregation), text_chars, BreakRule::LineBreaks);
        let ends = SpanEnds { punctuation: false, function_words: self.function_words };
        group_entities(&words, &cut, text_chars, &self.labels, ends)
    }

    /// Step 3's choice of tags, with where entities break: greedy keeps each word's most
    /// probable label; Viterbi replaces the labels by the most probable well-formed sequence
    /// ([`viterbi`]), over the visible words (a whitespace-only word, such as a lone `▁`, is
    /// dropped: it never widens a span, and training gives it no label, so it must not break
    /// an entity either).
    fn decode_words(&self, words: Vec<Word>, text_chars: &[char], breaks: BreakRule) -> (Vec<Word>, Vec<bool>) {
        let viterbi_decoding = self.decoding == Decoding::Viterbi;
        let mut words: Vec<Word> =
            if viterbi_decoding { words.into_iter().filter(|w| w.start < w.end).collect() } else { words };
        let cut = entity_breaks(&words, text_chars, breaks);
        if !viterbi_decoding {
            return (words, cut);
        }
        let probs: Vec<&[f32]> = words.iter().map(|w| w.probs.as_slice()).collect();
        if let Some(path) = viterbi(&probs, &self.transitions, &cut) {
            for (w, label) in words.iter_mut().zip(path) {
                w.label = label;
                w.score = f64::from(w.probs[label]);
            }
        }
        (words, cut)
    }
}

/// For each word, whether an entity must not continue into it from the previous word.
fn entity_breaks(words: &[Word], text_chars: &[char], breaks: BreakRule) -> Vec<bool> {
    (0..words.len())
        .map(|k| {
            k > 0
                && match breaks {
                    BreakRule::None => false,
                    BreakRule::GluedSentenceMarks => {
                        is_glued_sentence_break(text_chars, words[k - 1].end, words[k].start)
                    }
                    BreakRule::LineBreaks => {
                        let gap = words[k - 1].end.min(words[k].start)..words[k].start;
                        text_chars.get(gap).is_some_and(|g| g.iter().any(|&c| is_line_break(c)))
                    }
                }
        })
        .collect()
}

/// Whether `c` ends a line (line feed, carriage return, next line, line and paragraph
/// separators).
fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Decodes one document's content tokens into entities (see the module docs):
/// [`Decoder::entities`] for a one-off call.
pub fn decode_entities(
    tokens: &[TokenPrediction],
    text_chars: &[char],
    labels: &LabelSet,
    rule: &WordRule,
    boundaries: WordBoundaries,
    how: Aggregation,
    decoding: Decoding,
) -> Vec<DecodedEntity> {
    Decoder::new(labels.clone(), how, decoding).entities(tokens, text_chars, rule, boundaries)
}

/// Decodes one document's content tokens into entities whose words are the document's own
/// tokens: [`Decoder::entities_in_words`] for a one-off call.
pub fn decode_entities_in_words(
    tokens: &[TokenPrediction],
    text_chars: &[char],
    labels: &LabelSet,
    given: &[[usize; 2]],
    how: Aggregation,
    decoding: Decoding,
) -> Vec<DecodedEntity> {
    Decoder::new(labels.clone(), how, decoding).entities_in_words(tokens, text_chars, given)
}

/// For each position of `starts` (the first visible code points of pieces, in text order), the
/// index of the given token it lies in; `None` outside every given token.
fn given_word_index(starts: &[usize], given: &[[usize; 2]]) -> Vec<Option<usize>> {
    let mut w = 0;
    starts
        .iter()
        .map(|&at| {
            while w < given.len() && given[w][1] <= at {
                w += 1;
            }
            (w < given.len() && given[w][0] <= at).then_some(w)
        })
        .collect()
}

fn given_words(tokens: &[TokenPrediction], given: &[[usize; 2]], how: Aggregation) -> Vec<Word> {
    // a boundary mark `▁` or a whitespace-only piece belongs to no word: the word's first piece
    // is its first visible one, as in training (where the mark is a word of its own)
    let visible: Vec<&TokenPrediction> = tokens.iter().filter(|t| !t.is_marker && t.trimmed.0 < t.trimmed.1).collect();
    let starts: Vec<usize> = visible.iter().map(|t| t.trimmed.0).collect();
    let index = given_word_index(&starts, given);
    let mut out = Vec::new();
    let mut i = 0;
    while i < visible.len() {
        let mut j = i + 1;
        if index[i].is_some() {
            while j < visible.len() && index[j] == index[i] {
                j += 1;
            }
        }
        let probs = aggregate_word(&visible[i..j], how);
        let (start, end) = match index[i] {
            Some(w) => (given[w][0], given[w][1]),
            // a piece outside every token stops where the next token starts
            None => {
                let (start, end) = visible[i].trimmed;
                let next = given.get(given.partition_point(|g| g[0] <= start)).map_or(end, |g| g[0]);
                (start, end.min(next))
            }
        };
        out.push(Word::new(start, end, probs));
        i = j;
    }
    out
}

/// Which tag may follow which under a label set's scheme. A tag that continues an entity
/// (`I-X`, `E-X`) may only follow `B-X` or `I-X` when the scheme marks beginnings (`B-X` or
/// `S-X` exists; in IOB1 or bare types an `I-X` may start an entity); when the scheme marks
/// ends (`E-X` exists), `B-X` and `I-X` must be followed by `I-X` or `E-X`.
#[derive(Debug, Clone)]
pub struct Transitions {
    /// `allowed[i][j]`: tag `j` may follow tag `i`.
    allowed: Vec<Vec<bool>>,
    /// Tags that need an open entity before them (forbidden first, and after a glued break).
    needs_open: Vec<bool>,
    /// Tags that leave an entity open (forbidden last).
    must_close: Vec<bool>,
}

impl Transitions {
    /// The transitions of `labels`' tagging scheme.
    pub fn of(labels: &LabelSet) -> Self {
        let tags = &labels.tags;
        let has = |prefixes: &[TagPrefix], entity: &Option<String>| {
            tags.iter().any(|t| t.entity.is_some() && &t.entity == entity && prefixes.contains(&t.prefix))
        };
        let opens = |t: &super::labels::Tag| matches!(t.prefix, TagPrefix::Begin | TagPrefix::Inside);
        let inner = |t: &super::labels::Tag| matches!(t.prefix, TagPrefix::Inside | TagPrefix::End);
        let needs_open: Vec<bool> =
            tags.iter().map(|t| inner(t) && has(&[TagPrefix::Begin, TagPrefix::Single], &t.entity)).collect();
        let must_close: Vec<bool> = tags.iter().map(|t| opens(t) && has(&[TagPrefix::End], &t.entity)).collect();
        let allowed = tags
            .iter()
            .enumerate()
            .map(|(i, a)| {
                tags.iter()
                    .enumerate()
                    .map(|(j, b)| {
                        let continues = a.entity.is_some() && a.entity == b.entity && opens(a) && inner(b);
                        continues || !(needs_open[j] || must_close[i])
                    })
                    .collect()
            })
            .collect();
        Transitions { allowed, needs_open, must_close }
    }
}

/// The most probable tag sequence (sum of log probabilities) that `transitions` allow, with no
/// entity continued at a position where `breaks` is set; `None` when no sequence is allowed.
pub fn viterbi(probs: &[&[f32]], transitions: &Transitions, breaks: &[bool]) -> Option<Vec<usize>> {
    let n_tags = transitions.needs_open.len();
    let log = |p: f32| f64::from(p.max(1e-30)).ln();
    let mut back: Vec<Vec<usize>> = Vec::with_capacity(probs.len());
    let mut score: Vec<f64> = Vec::new();
    for (k, p) in probs.iter().enumerate() {
        let broken = k == 0 || breaks.get(k).copied().unwrap_or(false);
        let mut next = vec![f64::NEG_INFINITY; n_tags];
        let mut from = vec![0; n_tags];
        for j in 0..n_tags {
            if broken && transitions.needs_open[j] {
                continue;
            }
            let best = if k == 0 {
                Some((0.0, 0))
            } else {
                (0..n_tags)
                    .filter(|&i| transitions.allowed[i][j] && score[i].is_finite())
                    .map(|i| (score[i], i))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
            };
            if let Some((s, i)) = best {
                next[j] = s + log(p[j]);
                from[j] = i;
            }
        }
        score = next;
        back.push(from);
    }
    let last = (0..n_tags)
        .filter(|&j| !transitions.must_close[j] && score.get(j).is_some_and(|s| s.is_finite()))
        .max_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut tag = match last {
        Some(tag) => tag,
        None if probs.is_empty() => return Some(Vec::new()),
        None => return None,
    };
    let mut path = vec![0; probs.len()];
    for k in (0..probs.len()).rev() {
        path[k] = tag;
        tag = back[k][tag];
    }
    Some(path)
}

/// Splits every entity whose whole surface in `text` is two state names joined by a glued
/// hyphen ([`country_pair_hyphen`]), and every person entity that is two people the document
/// also names apart ([`person_pair_hyphen`]), into two entities of its type and score, one per
/// name; other entities pass unchanged and the order stays the text's (step 5 of the module
/// docs).
fn split_name_pairs(entities: Vec<DecodedEntity>, text: &[char]) -> Vec<DecodedEntity> {
    let surface = |e: &DecodedEntity| text.get(e.start..e.end).unwrap_or_default();
    let people = PersonWords::of(entities.iter().filter(|e| e.label == PERSON).map(surface));
    let mut out = Vec::with_capacity(entities.len());
    for entity in entities {
        let name = surface(&entity);
        let hyphen = country_pair_hyphen(name)
            .or_else(|| (entity.label == PERSON).then(|| person_pair_hyphen(name, &people)).flatten());
        match hyphen {
            Some(h) => {
                let at = entity.start + h;
                out.push(DecodedEntity { end: at, ..entity.clone() });
                out.push(DecodedEntity { start: at + 1, ..entity });
            }
            None => out.push(entity),
        }
    }
    out
}

/// What step 4 of the module docs cuts from an entity's span.
#[derive(Debug, Clone, Copy)]
struct SpanEnds {
    /// Leading and trailing punctuation, symbols and whitespace (the punctuation rule).
    punctuation: bool,
    /// Trailing function words.
    function_words: FunctionWords,
}

/// Steps 3 and 4 of the module docs: words into entities, none continued into a word where
/// `cut` is set, their spans cut as `ends` says.
fn group_entities(
    words: &[Word],
    cut: &[bool],
    text_chars: &[char],
    labels: &LabelSet,
    ends: SpanEnds,
) -> Vec<DecodedEntity> {
    let mut entities = Vec::new();
    let mut group: Vec<&Word> = Vec::new();
    let mut flush = |group: &mut Vec<&Word>| {
        entities.extend(entity_of(group, text_chars, labels, ends));
        group.clear();
    };
    for (i, w) in words.iter().enumerate() {
        let tag = &labels.tags[w.label];
        let continues = !cut.get(i).copied().unwrap_or(false)
            && group.last().is_some_and(|last| {
                let prev = &labels.tags[last.label];
                tag.entity.is_some()
                    && prev.entity == tag.entity
                    && matches!(tag.prefix, TagPrefix::Inside | TagPrefix::End)
                    && !matches!(prev.prefix, TagPrefix::End | TagPrefix::Single)
            });
        if !continues {
            flush(&mut group);
        }
        group.push(w);
    }
    flush(&mut group);
    entities
}

/// Step 4 of the module docs: the entity of one group of words (its first word's tag names
/// the type), `None` for `O` words or when nothing is left of the span.
fn entity_of(group: &[&Word], text_chars: &[char], labels: &LabelSet, ends: SpanEnds) -> Option<DecodedEntity> {
    let entity = labels.tags[group.first()?.label].entity.as_ref()?;
    // whitespace-only words take part in grouping (as in Hugging Face) but never widen a span
    let mut visible: Vec<(usize, usize)> = group.iter().filter(|w| w.start < w.end).map(|w| (w.start, w.end)).collect();
    let all_visible = visible.len();
    if ends.function_words == FunctionWords::Trim {
        visible.truncate(words_before_function_words(&visible, text_chars));
    }
    let last_end = visible.last()?.1;
    let trim = |c: char| ends.punctuation && (is_punctuation(c) || is_symbol(c) || c.is_whitespace());
    let mut start = visible.first().map_or(0, |w| w.0);
    let mut end = visible.last().map_or(0, |w| w.1);
    while start < end && trim(text_chars[start]) {
        start += 1;
    }
    while end > start && trim(text_chars[end - 1]) {
        end -= 1;
    }
    if start >= end {
        return None;
    }
    // the score is the mean over the group's words, or over those before the cut
    let kept: Vec<f64> =
        group.iter().filter(|w| visible.len() == all_visible || w.start < last_end).map(|w| w.score).collect();
    let score = kept.iter().sum::<f64>() / kept.len() as f64;
    Some(DecodedEntity { start, end, label: entity.clone(), score })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(names: &[&str]) -> LabelSet {
        let m: BTreeMap<i64, String> = names.iter().enumerate().map(|(i, n)| (i as i64, n.to_string())).collect();
        LabelSet::from_id2label(&m).unwrap()
    }

    fn tok(span: (usize, usize), token_chars: usize, hot: usize, n: usize) -> TokenPrediction {
        let mut probs = vec![0.1 / (n as f32 - 1.0); n];
        probs[hot] = 0.9;
        TokenPrediction { span, trimmed: span, token_chars, is_unknown: false, is_marker: false, probs }
    }

    #[test]
    fn iob2_and_iob1_sequences() {
        let l = labels(&["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]);
        let text: Vec<char> = "Anna Rossi vive a Roma".chars().collect();
        let toks = vec![
            tok((0, 4), 4, 1, 5),
            tok((5, 10), 5, 2, 5),
            tok((11, 15), 4, 0, 5),
            tok((16, 17), 1, 0, 5),
            tok((18, 22), 4, 4, 5),
        ];
        let e = decode_entities(
            &toks,
            &text,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::HuggingFace,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].start, e[0].end, e[0].label.as_str()), (0, 10, "PER"));
        // IOB1: an I- after O starts an entity
        assert_eq!((e[1].start, e[1].end, e[1].label.as_str()), (18, 22, "LOC"));
    }

    #[test]
    fn bioes_single_and_end_close_entities() {
        let l = labels(&["O", "B-ORG", "I-ORG", "E-ORG", "S-ORG"]);
        let text: Vec<char> = "w x y z".chars().collect();
        let toks = vec![tok((0, 1), 1, 4, 5), tok((2, 3), 1, 1, 5), tok((4, 5), 1, 3, 5), tok((6, 7), 1, 2, 5)];
        let e = decode_entities(
            &toks,
            &text,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::HuggingFace,
            Aggregation::First,
            Decoding::Greedy,
        );
        let spans: Vec<(usize, usize)> = e.iter().map(|x| (x.start, x.end)).collect();
        // S closes "w"; B..E is "x y"; the I after E starts a new entity "z"
        assert_eq!(spans, vec![(0, 1), (2, 5), (6, 7)]);
    }

    #[test]
    fn a_word_is_never_split_between_entities() {
        let l = labels(&["O", "B-PER", "I-PER", "B-LOC"]);
        let text: Vec<char> = "Rossiland".chars().collect();
        // one word of three pieces whose tokens disagree
        let toks = vec![tok((0, 3), 3, 1, 4), tok((3, 6), 5, 3, 4), tok((6, 9), 5, 3, 4)];
        for how in [Aggregation::First, Aggregation::Average, Aggregation::Max] {
            let e = decode_entities(
                &toks,
                &text,
                &l,
                &WordRule::SubwordPrefix,
                WordBoundaries::HuggingFace,
                how,
                Decoding::Greedy,
            );
            assert_eq!(e.len(), 1, "{how:?}");
            assert_eq!((e[0].start, e[0].end), (0, 9));
        }
        let first = decode_entities(
            &toks,
            &text,
            &l,
            &WordRule::SubwordPrefix,
            WordBoundaries::HuggingFace,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(first[0].label, "PER");
        let avg = decode_entities(
            &toks,
            &text,
            &l,
            &WordRule::SubwordPrefix,
            WordBoundaries::HuggingFace,
            Aggregation::Average,
            Decoding::Greedy,
        );
        assert_eq!(avg[0].label, "LOC");
    }

    #[test]
    fn newline_is_a_word_boundary() {
        let l = labels(&["O", "B-LOC"]);
        let text: Vec<char> = "Roma\nMilano".chars().collect();
        let toks = vec![tok((0, 4), 5, 1, 2), tok((4, 11), 7, 1, 2)];
        let mut toks = toks;
        toks[1].trimmed = (5, 11);
        let e = decode_entities(
            &toks,
            &text,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::HuggingFace,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].start, e[1].end), (5, 11));
    }

    /// Tokens as a SentencePiece tokenizer cuts `text` at the given code-point boundaries
    /// (a token's span starts after the space it replaces), each predicting label `hot`.
    fn pieces(text: &str, cuts: &[(usize, usize, usize)], n: usize) -> Vec<TokenPrediction> {
        let chars: Vec<char> = text.chars().collect();
        cuts.iter()
            .map(|&(a, b, hot)| {
                let mut t = tok((a, b), b - a, hot, n);
                let mut v = (a, b);
                while v.0 < v.1 && chars[v.0].is_whitespace() {
                    v.0 += 1;
                }
                t.trimmed = v;
                t
            })
            .collect()
    }

    fn surfaces(text: &str, e: &[DecodedEntity]) -> Vec<(String, String)> {
        let chars: Vec<char> = text.chars().collect();
        e.iter().map(|x| (chars[x.start..x.end].iter().collect(), x.label.clone())).collect()
    }

    #[test]
    fn only_the_pair_entities_are_split_with_their_type_and_score() {
        let text: Vec<char> = "Gli scambi Cina-Russia e l'Emilia-Romagna.".chars().collect();
        let e = |start, end, label: &str| DecodedEntity { start, end, label: label.into(), score: 0.9 };
        let out = split_name_pairs(vec![e(11, 22, "LOC"), e(27, 41, "LOC")], &text);
        let surfaces: Vec<(String, &str)> =
            out.iter().map(|x| (text[x.start..x.end].iter().collect(), x.label.as_str())).collect();
        assert_eq!(
            surfaces,
            [("Cina".to_string(), "LOC"), ("Russia".to_string(), "LOC"), ("Emilia-Romagna".to_string(), "LOC")]
        );
        assert!(out.iter().all(|x| x.score == 0.9));
    }

    #[test]
    fn a_pair_of_people_splits_only_when_the_document_names_both_apart() {
        let text: Vec<char> = "Vladimir Putin e Xi Jinping: l'appello Putin-Xi, Kramp-Karrenbauer.".chars().collect();
        let e = |start, end, label: &str| DecodedEntity { start, end, label: label.into(), score: 0.8 };
        let per = |s: &str| (s.to_string(), "PER");
        let entities = vec![e(0, 14, "PER"), e(17, 27, "PER"), e(39, 47, "PER"), e(49, 66, "PER")];
        let read = |out: &[DecodedEntity]| -> Vec<(String, &'static str)> {
            out.iter()
                .map(|x| (text[x.start..x.end].iter().collect(), if x.label == "PER" { "PER" } else { "other" }))
                .collect()
        };
        let out = split_name_pairs(entities.clone(), &text);
        assert_eq!(
            read(&out),
            [per("Vladimir Putin"), per("Xi Jinping"), per("Putin"), per("Xi"), per("Kramp-Karrenbauer")]
        );
        assert!(out.iter().all(|x| x.score == 0.8));
        // without "Xi Jinping" the document does not name Xi apart: the pair stays one span
        let without_xi: Vec<DecodedEntity> = entities.iter().filter(|x| x.start != 17).cloned().collect();
        assert_eq!(read(&split_name_pairs(without_xi, &text))[1], per("Putin-Xi"));
        // the same surface as an organisation is not a pair of people
        let as_org = vec![e(0, 14, "PER"), e(17, 27, "PER"), e(39, 47, "ORG")];
        assert_eq!(read(&split_name_pairs(as_org, &text))[2], ("Putin-Xi".to_string(), "other"));
    }

    #[test]
    fn two_states_joined_by_a_hyphen_are_two_entities_but_hyphenated_names_stay_whole() {
        let l = labels(&["O", "B-LOC", "I-LOC"]);
        // "scambi Cina-Russia e Emilia-Romagna": the model carries each place across the hyphen
        let text = "scambi Cina-Russia e Emilia-Romagna";
        let toks = pieces(
            text,
            &[(0, 6, 0), (6, 11, 1), (11, 12, 2), (12, 18, 2), (18, 20, 0), (20, 27, 1), (27, 28, 2), (28, 35, 2)],
            3,
        );
        let chars: Vec<char> = text.chars().collect();
        let decode = |boundaries, decoding| {
            surfaces(
                text,
                &decode_entities(&toks, &chars, &l, &WordRule::Whitespace, boundaries, Aggregation::First, decoding),
            )
        };
        let loc = |s: &str| (s.to_owned(), "LOC".to_owned());
        for decoding in [Decoding::Viterbi, Decoding::Greedy] {
            assert_eq!(
                decode(WordBoundaries::Punctuation, decoding),
                vec![loc("Cina"), loc("Russia"), loc("Emilia-Romagna")]
            );
        }
        // Hugging Face's words keep what the model says
        assert_eq!(
            decode(WordBoundaries::HuggingFace, Decoding::Greedy),
            vec![loc("Cina-Russia"), loc("Emilia-Romagna")]
        );
    }

    #[test]
    fn punctuation_glued_to_names_stays_outside_entities() {
        let l = labels(&["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]);
        // "(AP) Putin, AP.Putin" with pieces "(" "AP" ")" " Putin" "," " AP." "Putin";
        // the model says B-ORG on "(" and ")" and on "AP." and B-PER on "Putin" and ","
        let text = "(AP) Putin, AP.Putin";
        let toks =
            pieces(text, &[(0, 1, 3), (1, 3, 3), (3, 4, 4), (4, 10, 1), (10, 11, 2), (11, 15, 3), (15, 20, 1)], 5);
        let chars: Vec<char> = text.chars().collect();
        let ours = decode_entities(
            &toks,
            &chars,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::Punctuation,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(
            surfaces(text, &ours),
            vec![
                ("AP".to_owned(), "ORG".to_owned()),
                ("Putin".to_owned(), "PER".to_owned()),
                ("AP".to_owned(), "ORG".to_owned()),
                ("Putin".to_owned(), "PER".to_owned())
            ]
        );
        // Hugging Face's words: "(AP)" is one word (first piece "(" decides), "Putin," another,
        // "AP.Putin" a third: punctuation ends up inside the spans
        let hf = decode_entities(
            &toks,
            &chars,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::HuggingFace,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(
            surfaces(text, &hf),
            vec![
                ("(AP)".to_owned(), "ORG".to_owned()),
                ("Putin,".to_owned(), "PER".to_owned()),
                ("AP.Putin".to_owned(), "ORG".to_owned())
            ]
        );
    }

    #[test]
    fn an_entity_does_not_run_across_a_glued_full_stop_but_abbreviations_stay_whole() {
        let l = labels(&["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]);
        // "AP.Putin": the model says B-ORG, I-ORG, I-ORG, as if the missing space were not there
        let text = "ha riferito AP.Putin ha";
        let toks = pieces(text, &[(12, 14, 3), (14, 15, 4), (15, 20, 4)], 5);
        let e = decode_entities(
            &toks,
            &text.chars().collect::<Vec<_>>(),
            &l,
            &WordRule::Whitespace,
            WordBoundaries::Punctuation,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(
            surfaces(text, &e),
            vec![("AP".to_owned(), "ORG".to_owned()), ("Putin".to_owned(), "ORG".to_owned())]
        );
        // Hugging Face's words keep the pipeline's behaviour
        let hf = decode_entities(
            &toks,
            &text.chars().collect::<Vec<_>>(),
            &l,
            &WordRule::Whitespace,
            WordBoundaries::HuggingFace,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(surfaces(text, &hf), vec![("AP.Putin".to_owned(), "ORG".to_owned())]);
        // "A.C. Milan" and "U.S.A." are one entity each
        let text = "il A.C.Milan e U.S.A. oggi";
        let toks = pieces(
            text,
            &[
                (3, 4, 3),
                (4, 5, 4),
                (5, 6, 4),
                (6, 7, 4),
                (7, 12, 4),
                (15, 16, 3),
                (16, 17, 4),
                (17, 18, 4),
                (18, 19, 4),
                (19, 20, 4),
                (20, 21, 4),
            ],
            5,
        );
        let e = decode_entities(
            &toks,
            &text.chars().collect::<Vec<_>>(),
            &l,
            &WordRule::Whitespace,
            WordBoundaries::Punctuation,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(
            surfaces(text, &e),
            vec![("A.C.Milan".to_owned(), "ORG".to_owned()), ("U.S.A".to_owned(), "ORG".to_owned())]
        );
    }

    #[test]
    fn hyphen_and_quotes_split_words() {
        let l = labels(&["O", "B-LOC", "I-LOC"]);
        let text = "«Cina-Russia»";
        let toks = pieces(text, &[(0, 1, 0), (1, 5, 1), (5, 6, 0), (6, 12, 1), (12, 13, 2)], 3);
        let chars: Vec<char> = text.chars().collect();
        let e = decode_entities(
            &toks,
            &chars,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::Punctuation,
            Aggregation::First,
            Decoding::Greedy,
        );
        // the closing guillemet continues "Russia" (I-LOC) but is trimmed from the span
        assert_eq!(
            surfaces(text, &e),
            vec![("Cina".to_owned(), "LOC".to_owned()), ("Russia".to_owned(), "LOC".to_owned())]
        );
    }

    #[test]
    fn an_entity_of_punctuation_only_is_dropped() {
        let l = labels(&["O", "B-MISC"]);
        let text = "a , b";
        let toks = pieces(text, &[(0, 1, 0), (1, 3, 1), (3, 5, 0)], 2);
        let chars: Vec<char> = text.chars().collect();
        assert!(decode_entities(
            &toks,
            &chars,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::Punctuation,
            Aggregation::First,
            Decoding::Greedy
        )
        .is_empty());
        assert!(is_punctuation('»') && is_punctuation('-') && is_punctuation('’') && !is_punctuation('€'));
    }

    #[test]
    fn a_lone_boundary_mark_at_the_start_does_not_make_an_entity() {
        // "MOSCA (AP)" as e5's tokenizer cuts it: `▁` (0, 1), `MOS` (0, 3), `CA` (3, 5), ...
        let l = labels(&["O", "B-LOC", "I-LOC", "B-ORG"]);
        let text = "MOSCA>> x";
        let mut toks = pieces(text, &[(0, 1, 1), (0, 3, 1), (3, 5, 0), (5, 7, 0), (7, 9, 0)], 4);
        toks[0].is_marker = true;
        let chars: Vec<char> = text.chars().collect();
        let ours = decode_entities(
            &toks,
            &chars,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::Punctuation,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(surfaces(text, &ours), vec![("MOSCA>>".trim_end_matches('>').to_owned(), "LOC".to_owned())]);
        let hf = decode_entities(
            &toks,
            &chars,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::HuggingFace,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(
            surfaces(text, &hf),
            vec![("M".to_owned(), "LOC".to_owned()), ("MOSCA>>".to_owned(), "LOC".to_owned())]
        );
    }

    #[test]
    fn given_tokens_are_the_words_and_bound_every_entity() {
        let l = labels(&["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]);
        // "Fiat S.p.A. , AP.Putin" tokenised by a corpus as Fiat | S.p.A. | , | AP | . | Putin;
        // the pieces: Fiat, S, ., p, ., A, ., ",", AP. (over "AP" and "."), Putin
        let text = "Fiat S.p.A. , AP.Putin";
        let toks = pieces(
            text,
            &[
                (0, 4, 1),
                (4, 6, 2),
                (6, 7, 0), // a piece the model gets wrong inside a given token: the first piece decides
                (7, 8, 2),
                (8, 9, 2),
                (9, 10, 2),
                (10, 11, 2),
                (11, 13, 0),
                (13, 17, 1),
                (17, 22, 3),
            ],
            5,
        );
        let chars: Vec<char> = text.chars().collect();
        let given = [[0, 4], [5, 11], [12, 13], [14, 16], [16, 17], [17, 22]];
        let e = decode_entities_in_words(&toks, &chars, &l, &given, Aggregation::First, Decoding::Greedy);
        assert_eq!(
            surfaces(text, &e),
            vec![
                ("Fiat S.p.A.".to_owned(), "ORG".to_owned()),
                ("AP".to_owned(), "ORG".to_owned()),
                ("Putin".to_owned(), "PER".to_owned())
            ]
        );
        for x in &e {
            assert!(given.iter().any(|g| g[0] == x.start) && given.iter().any(|g| g[1] == x.end), "{x:?}");
        }
        // the punctuation rule on the same pieces cuts the given token "S.p.A." apart
        let rule = decode_entities(
            &toks,
            &chars,
            &l,
            &WordRule::Whitespace,
            WordBoundaries::Punctuation,
            Aggregation::First,
            Decoding::Greedy,
        );
        assert_eq!(surfaces(text, &rule)[0], ("Fiat S".to_owned(), "ORG".to_owned()));
    }

    #[test]
    fn a_boundary_mark_is_in_no_word_and_uncovered_pieces_are_words_of_their_own() {
        let l = labels(&["O", "B-LOC", "I-LOC"]);
        // "MOSCA x": `▁` (0, 1) predicting B-LOC, `MOS`, `CA`, then "x" outside the given tokens
        let text = "MOSCA x";
        let mut toks = pieces(text, &[(0, 1, 1), (0, 3, 0), (3, 5, 0), (5, 7, 2)], 3);
        toks[0].is_marker = true;
        let chars: Vec<char> = text.chars().collect();
        let e = decode_entities_in_words(&toks, &chars, &l, &[[0, 5]], Aggregation::First, Decoding::Greedy);
        // the mark is in no word: `MOS` is the word's first piece (O); "x" (I-LOC, outside
        // every token) is a word of its own
        assert_eq!(surfaces(text, &e), vec![("x".to_owned(), "LOC".to_owned())]);
        toks[1].probs = toks[0].probs.clone();
        let e = decode_entities_in_words(&toks, &chars, &l, &[[0, 5]], Aggregation::First, Decoding::Greedy);
        assert_eq!(surfaces(text, &e), vec![("MOSCA x".to_owned(), "LOC".to_owned())]);
        // without given tokens every visible piece is a word
        let none = decode_entities_in_words(&toks, &chars, &l, &[], Aggregation::First, Decoding::Greedy);
        assert_eq!(
            surfaces(text, &none),
            vec![("MOS".to_owned(), "LOC".to_owned()), ("x".to_owned(), "LOC".to_owned())]
        );
    }

    /// Pieces of `text` at `cuts` (code-point ranges, each its own word) with the given
    /// probabilities.
    fn weighted(text: &str, cuts: &[((usize, usize), &[f32])]) -> Vec<TokenPrediction> {
        let mut toks = pieces(text, &cuts.iter().map(|&((a, b), _)| (a, b, 0)).collect::<Vec<_>>(), 2);
        for (t, (_, p)) in toks.iter_mut().zip(cuts) {
            t.probs = p.to_vec();
        }
        toks
    }

    fn decode_both(text: &str, toks: &[TokenPrediction], l: &LabelSet) -> [Vec<(String, String)>; 2] {
        let chars: Vec<char> = text.chars().collect();
        [Decoding::Greedy, Decoding::Viterbi].map(|d| {
            let e = decode_entities(
                toks,
                &chars,
                l,
                &WordRule::Whitespace,
                WordBoundaries::Punctuation,
                Aggregation::First,
                d,
            );
            surfaces(text, &e)
        })
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn viterbi_never_starts_an_entity_with_inside() {
        // O, B-PER, I-PER, B-LOC, I-LOC: "Anna" leans O (0.55) but may begin PER (0.40);
        // "Rossi" is I-PER (0.90): greedy starts an entity at "Rossi", Viterbi opens it at "Anna"
        let l = labels(&["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]);
        let text = "Anna Rossi vive";
        let toks = weighted(
            text,
            &[
                ((0, 4), &[0.55, 0.40, 0.03, 0.01, 0.01]),
                ((4, 10), &[0.04, 0.03, 0.90, 0.01, 0.02]),
                ((10, 15), &[0.96, 0.01, 0.01, 0.01, 0.01]),
            ],
        );
        let [greedy, viterbi] = decode_both(text, &toks, &l);
        assert_eq!(greedy, owned(&[("Rossi", "PER")]));
        assert_eq!(viterbi, owned(&[("Anna Rossi", "PER")]));
    }

    #[test]
    fn viterbi_keeps_one_type_through_an_entity() {
        // "Banca d'Italia": B-ORG then I-LOC (0.5) over I-ORG (0.45): greedy cuts the name in
        // two entities of two types; Viterbi reads one ORG
        let l = labels(&["O", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]);
        let text = "Banca Italia";
        let toks =
            weighted(text, &[((0, 5), &[0.02, 0.95, 0.01, 0.01, 0.01]), ((5, 12), &[0.02, 0.01, 0.45, 0.02, 0.50])]);
        let [greedy, viterbi] = decode_both(text, &toks, &l);
        assert_eq!(greedy, owned(&[("Banca", "ORG"), ("Italia", "LOC")]));
        assert_eq!(viterbi, owned(&[("Banca Italia", "ORG")]));
    }

    #[test]
    fn viterbi_closes_bioes_entities_and_respects_glued_breaks() {
        let l = labels(&["O", "B-PER", "I-PER", "E-PER", "S-PER"]);
        // B-PER then O (0.6) over E-PER (0.35): an entity left open is not well formed
        let text = "Anna Rossi";
        let toks =
            weighted(text, &[((0, 4), &[0.1, 0.8, 0.05, 0.03, 0.02]), ((4, 10), &[0.6, 0.01, 0.02, 0.35, 0.02])]);
        let [_, viterbi] = decode_both(text, &toks, &l);
        assert_eq!(viterbi, owned(&[("Anna Rossi", "PER")]));
        // "AP.Putin", the full stop read as I-ORG: nothing continues across the glued mark, so
        // greedy starts a second ORG at "Putin" (its I-ORG), Viterbi its best opening tag
        let l = labels(&["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]);
        let text = "AP.Putin";
        let toks = weighted(
            text,
            &[
                ((0, 2), &[0.02, 0.9, 0.04, 0.02, 0.02]),
                ((2, 3), &[0.3, 0.02, 0.6, 0.04, 0.04]),
                ((3, 8), &[0.05, 0.02, 0.5, 0.4, 0.03]),
            ],
        );
        let [greedy, viterbi] = decode_both(text, &toks, &l);
        assert_eq!(greedy, owned(&[("AP", "ORG"), ("Putin", "ORG")]));
        assert_eq!(viterbi, owned(&[("AP", "ORG"), ("Putin", "PER")]));
    }

    #[test]
    fn viterbi_reports_when_no_sequence_is_allowed() {
        let l = labels(&["B-PER", "I-PER", "E-PER"]);
        let t = Transitions::of(&l);
        // one word: B-PER must be closed, I-PER and E-PER need an open entity
        assert_eq!(viterbi(&[&[0.5, 0.3, 0.2]], &t, &[false]), None);
        assert_eq!(viterbi(&[&[0.5, 0.3, 0.2], &[0.1, 0.1, 0.8]], &t, &[false, false]), Some(vec![0, 2]));
        assert_eq!(viterbi(&[], &t, &[]), Some(vec![]));
        // IOB1 (no B- tags): an I- may start an entity
        let iob1 = Transitions::of(&labels(&["O", "I-PER"]));
        assert_eq!(viterbi(&[&[0.2, 0.8]], &iob1, &[false]), Some(vec![1]));
    }

    #[test]
    fn an_entity_does_not_run_across_a_line_break_between_given_tokens() {
        // two sentences of a pre-tokenised document, "Madagaskar" ending the first with B-LOC
        // and "ANTANANARIVO" opening the second with I-LOC (0.6) over B-LOC (0.35): the line
        // between them is a sentence boundary, so both decodings give two entities; Viterbi
        // reads the second word's best opening tag
        let l = labels(&["O", "B-LOC", "I-LOC"]);
        let text = "Madagaskar\nANTANANARIVO";
        let toks = weighted(text, &[((0, 10), &[0.05, 0.9, 0.05]), ((11, 23), &[0.05, 0.35, 0.6])]);
        let chars: Vec<char> = text.chars().collect();
        let given = [[0, 10], [11, 23]];
        for decoding in [Decoding::Greedy, Decoding::Viterbi] {
            let e = decode_entities_in_words(&toks, &chars, &l, &given, Aggregation::First, decoding);
            assert_eq!(surfaces(text, &e), owned(&[("Madagaskar", "LOC"), ("ANTANANARIVO", "LOC")]), "{decoding:?}");
        }
        // on one line the same tags make one entity
        let text = "Madagaskar ANTANANARIVO";
        let chars: Vec<char> = text.chars().collect();
        let e = decode_entities_in_words(&toks, &chars, &l, &given, Aggregation::First, Decoding::Viterbi);
        assert_eq!(surfaces(text, &e), owned(&[("Madagaskar ANTANANARIVO", "LOC")]));
    }

    #[test]
    fn trailing_function_words_are_cut_in_raw_and_pre_tokenised_text() {
        // "Tribunale di Milano," tagged B-ORG I-ORG B-LOC O: the ORG ends on "di"
        let l = labels(&["O", "B-ORG", "I-ORG", "B-LOC"]);
        let text = "Il Tribunale di Milano, ieri";
        let toks = weighted(
            text,
            &[
                ((0, 2), &[0.9, 0.05, 0.03, 0.02]),
                ((2, 12), &[0.1, 0.8, 0.05, 0.05]),
                ((12, 15), &[0.1, 0.1, 0.6, 0.2]),
                ((15, 22), &[0.1, 0.1, 0.1, 0.7]),
                ((22, 23), &[0.9, 0.05, 0.03, 0.02]),
                ((23, 28), &[0.9, 0.05, 0.03, 0.02]),
            ],
        );
        let chars: Vec<char> = text.chars().collect();
        let rule = WordRule::Whitespace;
        for decoding in [Decoding::Greedy, Decoding::Viterbi] {
            let trim = Decoder::new(l.clone(), Aggregation::First, decoding);
            let e = trim.entities(&toks, &chars, &rule, WordBoundaries::Punctuation);
            assert_eq!(surfaces(text, &e), owned(&[("Tribunale", "ORG"), ("Milano", "LOC")]), "{decoding:?}");
            // the score is the mean over the words kept: "Tribunale" alone
            assert!((e[0].score - 0.8).abs() < 1e-6, "{}", e[0].score);
            let given = [[0, 2], [3, 12], [13, 15], [16, 22], [22, 23], [24, 28]];
            let e = trim.entities_in_words(&toks, &chars, &given);
            assert_eq!(surfaces(text, &e), owned(&[("Tribunale", "ORG"), ("Milano", "LOC")]), "{decoding:?}");
            let keep = trim.clone().with_function_words(FunctionWords::Keep);
            let e = keep.entities(&toks, &chars, &rule, WordBoundaries::Punctuation);
            assert_eq!(surfaces(text, &e), owned(&[("Tribunale di", "ORG"), ("Milano", "LOC")]), "{decoding:?}");
            let e = keep.entities_in_words(&toks, &chars, &given);
            assert_eq!(surfaces(text, &e), owned(&[("Tribunale di", "ORG"), ("Milano", "LOC")]), "{decoding:?}");
        }
    }

    #[test]
    fn an_entity_of_function_words_only_is_dropped() {
        let l = labels(&["O", "B-LOC", "I-LOC"]);
        let text = "verso di la";
        let toks =
            weighted(text, &[((0, 5), &[0.9, 0.05, 0.05]), ((5, 8), &[0.1, 0.8, 0.1]), ((8, 11), &[0.1, 0.1, 0.8])]);
        let chars: Vec<char> = text.chars().collect();
        let decoder = Decoder::new(l, Aggregation::First, Decoding::Viterbi);
        assert!(decoder.entities(&toks, &chars, &WordRule::Whitespace, WordBoundaries::Punctuation).is_empty());
    }
}
