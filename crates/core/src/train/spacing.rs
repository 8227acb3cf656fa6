//! News spacing: gold imported from token-level formats has its tokens joined by single
//! spaces ("Putin , ( AP )"), while news text glues punctuation to words ("Putin, (AP)"). A
//! share of the lines of such documents (`--news-share`) is rebuilt with news spacing before
//! tokenization, so that the model also sees the pieces raw text gives (the rules of
//! training/train_ner.py's `build_text`). Entity spans are moved with their tokens.

use postilla_annotator::record::{AnnotationRecord, EntitySpan};

use super::rng::SplitMix64;

/// Tokens written without a space before them.
const NO_SPACE_BEFORE: [&str; 14] = [",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "»", "”", "’", "…"];
/// Tokens written without a space after them.
const NO_SPACE_AFTER: [&str; 7] = ["(", "[", "{", "«", "„", "“", "‘"];

/// Whether news spacing glues `token` to the token before it (`prev`); `quote_open` tells
/// whether a `"` is open.
fn glued(prev: &str, token: &str, quote_open: bool) -> bool {
    if NO_SPACE_BEFORE.contains(&token) || token == "'s" || NO_SPACE_AFTER.contains(&prev) {
        return true;
    }
    let mut back = prev.chars().rev();
    if back.next() == Some('\'') && back.next().is_some_and(char::is_alphabetic) {
        return true; // dell' + Italia
    }
    if token == "\"" {
        return quote_open;
    }
    prev == "\"" && quote_open
}

/// The record with a share `news_share` of its lines rebuilt with news spacing, or `None`
/// when it has no token boundaries, no line was drawn, or an entity does not start and end on
/// token boundaries.
pub fn news_spaced(record: &AnnotationRecord, news_share: f64, rng: &mut SplitMix64) -> Option<AnnotationRecord> {
    let tokens = record.tokens.as_ref()?;
    let chars: Vec<char> = record.text.as_deref()?.chars().collect();
    let mut text = String::new();
    let mut starts = vec![0usize; chars.len() + 1];
    let mut ends = vec![usize::MAX; chars.len() + 1];
    let (mut length, mut news, mut quote_open, mut changed) = (0usize, false, false, false);
    for (i, &[a, b]) in tokens.iter().enumerate() {
        let gap: String = chars[if i == 0 { 0 } else { tokens[i - 1][1] }..a].iter().collect();
        let token: String = chars[a..b].iter().collect();
        let line_start = i == 0 || gap.contains('\n');
        if line_start {
            news = rng.next_f64() < news_share;
            quote_open = false;
        }
        let previous: String =
            if i == 0 { String::new() } else { chars[tokens[i - 1][0]..tokens[i - 1][1]].iter().collect() };
        let separator = if line_start || !news || !glued(&previous, &token, quote_open) { gap } else { String::new() };
        changed |= news && !line_start && separator.is_empty();
        length += separator.chars().count();
        text.push_str(&separator);
        if token == "\"" {
            quote_open = !quote_open;
        }
        starts[a] = length;
        length += b - a;
        ends[b] = length;
        text.push_str(&token);
    }
    if !changed {
        return None;
    }
    let entities = record
        .entities
        .iter()
        .map(|e| {
            let (start, end) = (starts[e.start], ends[e.end]);
            let aligned = end != usize::MAX && (start > 0 || e.start == tokens.first().map_or(0, |t| t[0]));
            aligned.then(|| EntitySpan::from_text(&text, start, end, &e.label, e.score)).flatten()
        })
        .collect::<Option<Vec<_>>>()?;
    Some(AnnotationRecord {
        text: Some(text),
        entities,
        tokens: None,
        text_sha256: None,
        tokens_sha256: None,
        ..record.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(words: &[&str], spans: &[(usize, usize, &str)]) -> AnnotationRecord {
        let text = words.join(" ");
        let mut tokens = Vec::new();
        let mut pos = 0;
        for w in words {
            let n = w.chars().count();
            tokens.push([pos, pos + n]);
            pos += n + 1;
        }
        let entities = spans
            .iter()
            .map(|&(a, b, l)| EntitySpan::from_text(&text, tokens[a][0], tokens[b - 1][1], l, None).expect("span"))
            .collect();
        AnnotationRecord {
            schema: "postilla/1".into(),
            id: "d".into(),
            source: None,
            text_sha256: None,
            tokens_sha256: None,
            text: Some(text),
            tokens: Some(tokens),
            lang: None,
            entities,
            topics: Vec::new(),
            provenance: None,
            error: None,
        }
    }

    #[test]
    fn glues_punctuation_and_moves_the_spans() {
        let r = record(
            &["Putin", ",", "(", "AP", ")", "dell'", "Italia", "e", "\"", "Repubblica", "\"", "."],
            &[(0, 1, "PER"), (3, 4, "ORG"), (6, 7, "LOC"), (9, 10, "ORG")],
        );
        let mut rng = SplitMix64::new(1, 1);
        let spaced = news_spaced(&r, 1.0, &mut rng).expect("rebuilt");
        assert_eq!(spaced.text.as_deref(), Some("Putin, (AP) dell'Italia e \"Repubblica\"."));
        let surfaces: Vec<&str> = spaced.entities.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(surfaces, ["Putin", "AP", "Italia", "Repubblica"]);
        assert!(news_spaced(&r, 0.0, &mut rng).is_none(), "share 0 changes nothing");
    }

    #[test]
    fn decides_per_line_and_keeps_line_breaks() {
        let mut r = record(&["Roma", ",", "oggi"], &[(0, 1, "LOC")]);
        r.text = Some("Roma ,\noggi".into());
        let mut rng = SplitMix64::new(1, 1);
        let spaced = news_spaced(&r, 1.0, &mut rng).expect("rebuilt");
        assert_eq!(spaced.text.as_deref(), Some("Roma,\noggi"));
    }
}
