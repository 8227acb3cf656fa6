//! Token-level NER formats: CoNLL (`token … tag`, space or tab separated, `-DOCSTART-`
//! document breaks), IOB1, KIND (`token<TAB>tag`) and GermEval 2014
//! (`index<TAB>token<TAB>outer<TAB>nested`); and the CoNLL IOB2 exporter.
//!
//! Decoding tags into spans: `B-X` starts an entity; `I-X` continues an entity of type `X`
//! and otherwise starts one (IOB1, and conlleval's reading of an IOB2 `I-` after `O`); `O`
//! closes. The gold files in `../shared/data` are valid IOB2, so both readings agree there.
//!
//! Documents: one per `-DOCSTART-` block when the file has such lines, otherwise one per
//! sentence (`doc_per_sentence` forces one per sentence). A line `# id = X` (written by the
//! exporter) names the next document. The text is rebuilt as tokens joined by single spaces,
//! sentences joined by `\n`.

use std::path::Path;

use super::{record_text, FormatError, ImportStats, LabelMap};
use crate::record::{AnnotationRecord, EntitySpan};

/// Which token-level format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// `token [columns…] tag`, whitespace separated, IOB2.
    Conll,
    /// Same columns, IOB1 (an `I-` may start an entity).
    Iob1,
    /// KIND: `token<TAB>tag`, IOB2.
    Kind,
    /// GermEval 2014: `index<TAB>token<TAB>outer<TAB>nested`, IOB2 with `*deriv`/`*part`.
    Germeval,
}

/// Options of the token-level importers.
#[derive(Debug, Clone, Default)]
pub struct ConllOptions {
    /// One document per sentence even when the file has `-DOCSTART-` lines.
    pub doc_per_sentence: bool,
    /// GermEval: read the nested (inner) column instead of the outer one.
    pub nested: bool,
    /// GermEval: keep `*deriv`/`*part` labels (e.g. `LOCderiv`) instead of dropping them.
    pub keep_deriv_part: bool,
    /// Label renaming applied after reading (GermEval also maps `OTH` to `MISC` by default).
    pub map: LabelMap,
}

struct Sentence {
    tokens: Vec<String>,
    tags: Vec<Option<(bool, String)>>, // (begins, type); None = O
}

#[derive(Default)]
struct DocBuilder {
    id: Option<String>,
    sentences: Vec<Sentence>,
}

/// Imports one file.
pub fn import_file(
    path: &Path,
    format: TokenFormat,
    opts: &ConllOptions,
    stats: &mut ImportStats,
) -> Result<Vec<AnnotationRecord>, FormatError> {
    let bytes = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        FormatError::malformed(path, line_of_byte(e.as_bytes(), e.utf8_error().valid_up_to()), "not UTF-8")
    })?;
    let has_docstart = text.lines().any(|l| l.starts_with("-DOCSTART-"));
    let per_sentence = opts.doc_per_sentence || !has_docstart;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut map = opts.map.clone();
    if format == TokenFormat::Germeval && !map.0.contains_key("OTH") {
        map.0.insert("OTH".into(), "MISC".into());
    }

    let mut records = Vec::new();
    let mut doc = DocBuilder::default();
    let mut sentence = Sentence { tokens: Vec::new(), tags: Vec::new() };
    let mut finish_sentence = |doc: &mut DocBuilder, sentence: &mut Sentence, records: &mut Vec<AnnotationRecord>| {
        if sentence.tokens.is_empty() {
            return;
        }
        stats.sentences += 1;
        doc.sentences.push(std::mem::replace(sentence, Sentence { tokens: Vec::new(), tags: Vec::new() }));
        if per_sentence {
            finish_doc(doc, &stem, &map, records);
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let lineno = i + 1;
        if line.trim().is_empty() {
            finish_sentence(&mut doc, &mut sentence, &mut records);
            continue;
        }
        if line.starts_with("-DOCSTART-") {
            finish_sentence(&mut doc, &mut sentence, &mut records);
            finish_doc(&mut doc, &stem, &map, &mut records);
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if let ["#", "id", "=", id] = cols.as_slice() {
            finish_sentence(&mut doc, &mut sentence, &mut records);
            finish_doc(&mut doc, &stem, &map, &mut records);
            doc.id = Some((*id).to_owned());
            continue;
        }
        if format == TokenFormat::Germeval && line.starts_with('#') {
            continue; // GermEval source comments
        }
        let (token, tag) = columns(line, format, opts).map_err(|m| FormatError::malformed(path, lineno, m))?;
        let tag = parse_tag(tag, format, opts).map_err(|m| FormatError::malformed(path, lineno, m))?;
        sentence.tokens.push(token.to_owned());
        sentence.tags.push(tag);
    }
    finish_sentence(&mut doc, &mut sentence, &mut records);
    finish_doc(&mut doc, &stem, &map, &mut records);
    for r in &records {
        stats.add(r);
    }
    Ok(records)
}

fn line_of_byte(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The token and raw tag of a data line.
fn columns<'a>(line: &'a str, format: TokenFormat, opts: &ConllOptions) -> Result<(&'a str, &'a str), String> {
    match format {
        TokenFormat::Conll | TokenFormat::Iob1 => {
            let cols: Vec<&str> = line.split_whitespace().collect();
            match cols.as_slice() {
                [token, .., tag] if cols.len() >= 2 => Ok((token, tag)),
                _ => Err(format!("expected `token … tag`, got {line:?}")),
            }
        }
        TokenFormat::Kind => match line.split('\t').collect::<Vec<_>>().as_slice() {
            [token, tag] if !token.is_empty() && !token.contains(char::is_whitespace) => Ok((token, tag.trim())),
            _ => Err(format!("expected `token<TAB>tag`, got {line:?}")),
        },
        TokenFormat::Germeval => {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 3
                || cols[0].parse::<u32>().is_err()
                || cols[1].is_empty()
                || cols[1].contains(char::is_whitespace)
            {
                return Err(format!("expected `index<TAB>token<TAB>outer<TAB>nested`, got {line:?}"));
            }
            if opts.nested {
                cols.get(3).map(|t| (cols[1], t.trim())).ok_or_else(|| format!("no nested column in {line:?}"))
            } else {
                Ok((cols[1], cols[2].trim()))
            }
        }
    }
}

/// `O` -> None; `B-X` -> (true, X); `I-X` -> (false, X). GermEval `*deriv`/`*part` become O
/// unless kept.
fn parse_tag(tag: &str, format: TokenFormat, opts: &ConllOptions) -> Result<Option<(bool, String)>, String> {
    if tag == "O" {
        return Ok(None);
    }
    let (begins, entity) = match tag.split_once('-') {
        Some(("B", e)) if !e.is_empty() => (true, e),
        Some(("I", e)) if !e.is_empty() => (false, e),
        _ => return Err(format!("tag {tag:?} is not O, B-TYPE or I-TYPE")),
    };
    if format == TokenFormat::Germeval
        && !opts.keep_deriv_part
        && (entity.ends_with("deriv") || entity.ends_with("part"))
    {
        return Ok(None);
    }
    Ok(Some((begins, entity.to_owned())))
}

fn finish_doc(doc: &mut DocBuilder, stem: &str, map: &LabelMap, records: &mut Vec<AnnotationRecord>) {
    let builder = std::mem::take(doc);
    if builder.sentences.is_empty() {
        doc.id = None;
        return;
    }
    let id = builder.id.unwrap_or_else(|| format!("{stem}-{:06}", records.len() + 1));
    let mut text = String::new();
    let mut chars = 0usize;
    let mut tokens = Vec::new();
    let mut entities = Vec::new();
    for (si, s) in builder.sentences.iter().enumerate() {
        if si > 0 {
            text.push('\n');
            chars += 1;
        }
        let mut open: Option<(usize, usize, String)> = None; // (start, end, type)
        for (ti, (tok, tag)) in s.tokens.iter().zip(&s.tags).enumerate() {
            if ti > 0 {
                text.push(' ');
                chars += 1;
            }
            let start = chars;
            text.push_str(tok);
            chars += tok.chars().count();
            tokens.push([start, chars]);
            match tag {
                None => close(&mut open, &mut entities),
                Some((begins, ty)) => {
                    let continues = !begins && open.as_ref().is_some_and(|o| &o.2 == ty);
                    if continues {
                        if let Some(o) = open.as_mut() {
                            o.1 = chars;
                        }
                    } else {
                        close(&mut open, &mut entities);
                        open = Some((start, chars, ty.clone()));
                    }
                }
            }
        }
        close(&mut open, &mut entities);
    }
    let mut record = AnnotationRecord::for_text(&id, &text);
    record.entities = entities
        .into_iter()
        .filter_map(|(s, e, ty)| EntitySpan::from_text(&text, s, e, map.apply(&ty), None))
        .collect();
    record.text = Some(text);
    record.tokens = Some(tokens);
    records.push(record);
}

fn close(open: &mut Option<(usize, usize, String)>, entities: &mut Vec<(usize, usize, String)>) {
    if let Some(o) = open.take() {
        entities.push(o);
    }
}

/// Splits `text` into tokens for export when a record has no token boundaries: runs of
/// letters/digits are tokens, every other non-space character is a token of its own, and
/// tokens are also cut at entity boundaries so that every entity covers whole tokens.
pub fn tokenize_for_export(text: &str, cuts: &[usize]) -> Vec<[usize; 2]> {
    let cuts: std::collections::BTreeSet<usize> = cuts.iter().copied().collect();
    let mut tokens = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.chars().enumerate() {
        let word = c.is_alphanumeric();
        if let Some(s) = start {
            if !word || cuts.contains(&i) {
                tokens.push([s, i]);
                start = None;
            }
        }
        if c.is_whitespace() {
            continue;
        }
        if word {
            if start.is_none() {
                start = Some(i);
            }
        } else {
            tokens.push([i, i + 1]);
        }
    }
    if let Some(s) = start {
        tokens.push([s, text.chars().count()]);
    }
    tokens
}

/// Writes records as CoNLL IOB2: `-DOCSTART- O`, `# id = ID`, then one `token<TAB>tag` line
/// per token with a blank line after each sentence (a sentence ends where the text has a
/// newline between two tokens). Records need their text; tokens come from the record or from
/// [`tokenize_for_export`].
pub fn export(records: &[AnnotationRecord]) -> Result<String, FormatError> {
    let mut out = String::new();
    for r in records {
        let text = record_text(r)?;
        let chars: Vec<char> = text.chars().collect();
        let tokens = match &r.tokens {
            Some(t) => t.clone(),
            None => {
                let cuts: Vec<usize> = r.entities.iter().flat_map(|e| [e.start, e.end]).collect();
                tokenize_for_export(text, &cuts)
            }
        };
        let tags = token_tags(r, &tokens)?;
        out.push_str("-DOCSTART- O\n");
        out.push_str(&format!("# id = {}\n\n", r.id));
        let mut prev_end: Option<usize> = None;
        for (tok, tag) in tokens.iter().zip(&tags) {
            if let Some(p) = prev_end {
                if chars[p..tok[0]].contains(&'\n') {
                    out.push('\n');
                }
            }
            let surface: String = chars[tok[0]..tok[1]].iter().collect();
            out.push_str(&surface);
            out.push('\t');
            out.push_str(tag);
            out.push('\n');
            prev_end = Some(tok[1]);
        }
        out.push('\n');
    }
    Ok(out)
}

/// IOB2 tags for the tokens; every entity must start and end on token boundaries.
fn token_tags(r: &AnnotationRecord, tokens: &[[usize; 2]]) -> Result<Vec<String>, FormatError> {
    let mut tags = vec!["O".to_owned(); tokens.len()];
    for e in &r.entities {
        let first = tokens.iter().position(|t| t[0] == e.start);
        let last = tokens.iter().position(|t| t[1] == e.end);
        match (first, last) {
            (Some(a), Some(b)) if a <= b => {
                if tags[a..=b].iter().any(|t| t != "O") {
                    return Err(FormatError::Unexportable {
                        id: r.id.clone(),
                        message: format!("entity [{}, {}) overlaps another; IOB2 cannot express it", e.start, e.end),
                    });
                }
                tags[a] = format!("B-{}", e.label);
                for t in &mut tags[a + 1..=b] {
                    *t = format!("I-{}", e.label);
                }
            }
            _ => {
                return Err(FormatError::Unexportable {
                    id: r.id.clone(),
                    message: format!("entity [{}, {}) {:?} does not fall on token boundaries", e.start, e.end, e.text),
                })
            }
        }
    }
    Ok(tags)
}
