//! The HTML page: one file, inline CSS and script, the report data embedded once as JSON.
//!
//! Safety: the data sits in a `<script type="application/json">` element with `<`, `>`, `&`
//! and the two JavaScript line separators escaped as `\uXXXX`, so no text can close the
//! element; the script builds the page with DOM calls and `textContent` only (never
//! `innerHTML`), so document texts show as text; and a Content-Security-Policy allows only this
//! page's own style and script (by their sha256) and no network source at all.

use sha2::{Digest, Sha256};

use crate::{ReportData, ReportError};

/// The page's style sheet.
pub const STYLE: &str = include_str!("../assets/report.css");
/// The page's script.
pub const SCRIPT: &str = include_str!("../assets/report.js");

/// The whole page for `data`.
pub fn render_html(data: &ReportData) -> Result<String, ReportError> {
    let json = embed_json(&serde_json::to_string(data)?);
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"{generator}\">\n<title>{title}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n\
         <noscript>This report draws itself with its inline script: allow JavaScript for this file.</noscript>\n\
         <div id=\"app\"></div>\n\
         <script type=\"application/json\" id=\"report-data\">{json}</script>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        csp = content_security_policy(),
        generator = escape_html(&data.generator),
        title = escape_html(&data.title),
    ))
}

/// No network source of any kind; only this page's own style and script run.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; img-src 'none'; connect-src 'none'; \
         base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
}

/// `sha256-<base64>` of an inline element's text, as CSP compares it.
fn csp_hash(text: &str) -> String {
    format!("sha256-{}", postilla_annotator::hash::base64(&Sha256::digest(text.as_bytes())))
}

/// JSON that cannot end the `<script>` element it is placed in, nor be read as HTML: `<`,
/// `>` and `&` (which JSON only has inside strings) and U+2028/U+2029 become `\uXXXX`
/// escapes, which JSON.parse reads back as the same characters.
pub fn embed_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text for an HTML element or a quoted attribute.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_element_and_parses_back_to_the_same_text() {
        let hostile = "</script><script>alert(1)</script> & </textarea> \u{2028}";
        let json = serde_json::to_string(&serde_json::json!({ "text": hostile })).expect("json");
        let embedded = embed_json(&json);
        assert!(!embedded.contains('<') && !embedded.contains('>') && !embedded.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&embedded).expect("valid JSON");
        assert_eq!(back["text"], hostile);
    }

    #[test]
    fn the_policy_hashes_match_known_values() {
        // sha256("") in base64, as browsers compute it for an empty inline script
        assert_eq!(csp_hash(""), "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        let csp = content_security_policy();
        assert!(csp.starts_with("default-src 'none';"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("http"));
    }

    #[test]
    fn titles_are_escaped() {
        assert_eq!(escape_html("<b>\"x\" & 'y'</b>"), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
    }
}
