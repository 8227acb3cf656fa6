//! Property test: on generated Unicode text (accents, combining marks, emoji, CJK, curly
//! quotes, missing spaces, tabs, CRLF), every predicted entity's code points equal its
//! surface, and its UTF-8 byte offsets point at the same text.

mod common;

use postilla_core::ner::{NerOptions, NerPipeline};
use proptest::prelude::*;

fn pieces() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("Müller".to_owned()),
            Just("Zürich".to_owned()),
            Just("Straße".to_owned()),
            Just("e\u{301}".to_owned()),
            Just("“Roma”".to_owned()),
            Just("AP.Putin".to_owned()),
            Just("😀🇮🇹".to_owned()),
            Just("東京".to_owned()),
            Just("\t".to_owned()),
            Just("\r\n".to_owned()),
            Just("\u{a0}".to_owned()),
            Just(" ".to_owned()),
            "[a-zA-Zàèéìòù]{1,9}",
            any::<char>().prop_map(|c| c.to_string()),
        ],
        1..60,
    )
    .prop_map(|v| v.concat())
}

thread_local! {
    static PIPELINES: Vec<NerPipeline> = ["tiny-bert", "tiny-xlmr"]
        .iter()
        .map(|m| {
            let options = NerOptions { max_length: 24, stride: 6, batch_size: 5, ..NerOptions::default() };
            NerPipeline::load(&common::tiny_models().join(m), options).expect("load")
        })
        .collect();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn entity_offsets_are_exact(texts in prop::collection::vec(pieces(), 1..4)) {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let outputs = PIPELINES.with(|ps| ps.iter().map(|ner| ner.predict(&refs).expect("predict")).collect::<Vec<_>>());
        for out in outputs {
            for (text, entities) in texts.iter().zip(&out) {
                let chars: Vec<char> = text.chars().collect();
                for e in entities {
                    prop_assert!(e.start < e.end && e.end <= chars.len());
                    prop_assert_eq!(chars[e.start..e.end].iter().collect::<String>(), e.text.clone());
                    prop_assert_eq!(&text[e.byte_start..e.byte_end], e.text.as_str());
                    prop_assert!(!e.text.starts_with(char::is_whitespace) && !e.text.ends_with(char::is_whitespace));
                }
            }
        }
    }
}
