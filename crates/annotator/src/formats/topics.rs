//! Topic-classification gold: SIB-200 (TSV with header `index_id category text`), XGLUE news
//! classification (`title<TAB>body<TAB>label`, no header; text = title, blank line, body) and
//! 10kGNAD (CSV `label;text` with `'` quoting, `''` for a quote inside). Each line is one
//! document with one gold topic.

use std::path::Path;

use super::{FormatError, ImportStats, LabelMap};
use crate::record::{AnnotationRecord, TopicScore};

/// Which topic format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicFormat {
    /// SIB-200.
    Sib200,
    /// XGLUE news classification.
    XglueNc,
    /// 10kGNAD.
    Gnad10k,
}

/// Imports one file.
pub fn import_file(
    path: &Path,
    format: TopicFormat,
    map: &LabelMap,
    stats: &mut ImportStats,
) -> Result<Vec<AnnotationRecord>, FormatError> {
    let content = std::fs::read_to_string(path).map_err(|e| FormatError::io(path, e))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut records = Vec::new();
    let mut push = |id: String, text: String, label: &str| {
        let mut r = AnnotationRecord::for_text(&id, &text);
        r.topics.push(TopicScore { label: map.apply(label).to_owned(), score: None });
        r.text = Some(text);
        stats.add(&r);
        records.push(r);
    };
    match format {
        TopicFormat::Sib200 => {
            let mut lines = content.lines().enumerate();
            match lines.next() {
                Some((_, h)) if h.trim_end() == "index_id\tcategory\ttext" => {}
                _ => {
                    return Err(FormatError::malformed(path, 1, "expected the header `index_id<TAB>category<TAB>text`"))
                }
            }
            for (i, line) in lines {
                if line.trim().is_empty() {
                    continue;
                }
                let cols: Vec<&str> = line.splitn(3, '\t').collect();
                let [idx, cat, text] = cols.as_slice() else {
                    return Err(FormatError::malformed(path, i + 1, "expected 3 tab-separated columns"));
                };
                if idx.parse::<u64>().is_err() || cat.is_empty() || text.trim().is_empty() {
                    return Err(FormatError::malformed(path, i + 1, format!("bad row {line:?}")));
                }
                push(format!("sib200-{idx}"), text.trim_end().to_owned(), cat);
            }
        }
        TopicFormat::XglueNc => {
            for (i, line) in content.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let cols: Vec<&str> = line.split('\t').collect();
                let [title, body, label] = cols.as_slice() else {
                    return Err(FormatError::malformed(
                        path,
                        i + 1,
                        format!("expected title<TAB>body<TAB>label, got {} columns", cols.len()),
                    ));
                };
                if label.trim().is_empty() {
                    return Err(FormatError::malformed(path, i + 1, "empty label"));
                }
                push(format!("{stem}-{:06}", i + 1), format!("{}\n\n{}", title.trim(), body.trim()), label.trim());
            }
        }
        TopicFormat::Gnad10k => {
            for (n, row) in parse_quoted_csv(&content, ';', '\'').into_iter().enumerate() {
                let (line, fields) = row.map_err(|(line, m)| FormatError::malformed(path, line, m))?;
                let [label, text] = fields.as_slice() else {
                    return Err(FormatError::malformed(
                        path,
                        line,
                        format!("expected label;text, got {} fields", fields.len()),
                    ));
                };
                push(format!("{stem}-{:06}", n + 1), text.clone(), label);
            }
        }
    }
    Ok(records)
}

type CsvRow = Result<(usize, Vec<String>), (usize, String)>;

/// A small CSV reader: `delim`-separated fields, `quote`-quoted fields may contain delimiters
/// and newlines, a doubled quote is a literal quote. Returns rows with their first line number.
fn parse_quoted_csv(content: &str, delim: char, quote: char) -> Vec<CsvRow> {
    let mut rows = Vec::new();
    let mut chars = content.chars().peekable();
    let mut line = 1usize;
    while chars.peek().is_some() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut at_field_start = true;
        let mut error = None;
        loop {
            match chars.next() {
                None => {
                    if quoted {
                        error = Some("unterminated quoted field".to_owned());
                    }
                    break;
                }
                Some(c) if quoted => {
                    if c == quote {
                        if chars.peek() == Some(&quote) {
                            chars.next();
                            field.push(quote);
                        } else {
                            quoted = false;
                        }
                    } else {
                        if c == '\n' {
                            line += 1;
                        }
                        field.push(c);
                    }
                }
                Some(c) if c == quote && at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                Some(c) if c == delim => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                Some('\n') => {
                    line += 1;
                    break;
                }
                Some('\r') => {}
                Some(c) => {
                    field.push(c);
                    at_field_start = false;
                }
            }
        }
        fields.push(field);
        if fields.len() == 1 && fields[0].is_empty() && error.is_none() {
            continue; // blank line
        }
        rows.push(match error {
            Some(e) => Err((start_line, e)),
            None => Ok((start_line, fields)),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::parse_quoted_csv;

    #[test]
    fn gnad_style_quoting() {
        let rows = parse_quoted_csv("Sport;'Er sagt: ''Tor!''; dann\nmehr'\nWeb;plain\n", ';', '\'');
        let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.unwrap().1).collect();
        assert_eq!(
            rows,
            vec![
                vec!["Sport".to_owned(), "Er sagt: 'Tor!'; dann\nmehr".to_owned()],
                vec!["Web".into(), "plain".into()]
            ]
        );
        assert!(parse_quoted_csv("a;'open", ';', '\'')[0].is_err());
    }
}
