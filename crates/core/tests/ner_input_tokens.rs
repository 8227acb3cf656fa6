//! Pre-tokenised input: when a text comes with its own tokens, they are the words. Property
//! test on generated texts and tokenisations (tokens glued to punctuation, tokens holding
//! punctuation, characters left outside every token), on tiny random models: every entity
//! starts at a token's start or at an uncovered piece, ends at a token's end or at an uncovered
//! piece, and its offsets are exact; invalid tokens are refused, and `input_tokens: false`
//! ignores them.

mod common;

use postilla_core::ner::{NerInput, NerOptions, NerPipeline};
use postilla_core::ModelError;
use proptest::prelude::*;

/// Token-sized strings, some holding punctuation the way gold tokens do.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("S.p.A.".to_owned()),
        Just("Baden-Württemberg".to_owned()),
        Just("Putin".to_owned()),
        Just(",".to_owned()),
        Just("(".to_owned()),
        Just("AP".to_owned()),
        Just(".".to_owned()),
        Just("dell'".to_owned()),
        Just("«".to_owned()),
        Just("Zürich".to_owned()),
        Just("😀".to_owned()),
        "[a-zA-Zàèéìòù]{1,9}",
    ]
}

/// A text built from tokens joined by a space or by nothing (glued), and the tokens' spans; a
/// token is sometimes left out of the list (its characters then lie outside every token).
fn tokenised() -> impl Strategy<Value = (String, Vec<[usize; 2]>)> {
    prop::collection::vec((token(), any::<bool>(), prop::bool::weighted(0.9)), 1..40).prop_map(|parts| {
        let (mut text, mut spans, mut at) = (String::new(), Vec::new(), 0usize);
        for (i, (tok, spaced, listed)) in parts.into_iter().enumerate() {
            if i > 0 && spaced {
                text.push(' ');
                at += 1;
            }
            let n = tok.chars().count();
            text.push_str(&tok);
            if listed {
                spans.push([at, at + n]);
            }
            at += n;
        }
        (text, spans)
    })
}

fn pipelines(input_tokens: bool) -> Vec<NerPipeline> {
    ["tiny-bert", "tiny-xlmr"]
        .iter()
        .map(|m| {
            let options =
                NerOptions { max_length: 24, stride: 6, batch_size: 5, input_tokens, ..NerOptions::default() };
            NerPipeline::load(&common::tiny_models().join(m), options).expect("load")
        })
        .collect()
}

thread_local! {
    static PIPELINES: Vec<NerPipeline> = pipelines(true);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn entities_start_and_end_at_the_given_tokens(docs in prop::collection::vec(tokenised(), 1..4)) {
        let inputs: Vec<NerInput> = docs.iter().map(|(t, w)| NerInput { text: t, words: Some(w), before: "", after: "" }).collect();
        let outputs = PIPELINES.with(|ps| ps.iter().map(|ner| ner.predict_inputs(&inputs).expect("predict")).collect::<Vec<_>>());
        for out in outputs {
            for ((text, spans), entities) in docs.iter().zip(&out) {
                let chars: Vec<char> = text.chars().collect();
                let covered = |i: usize| spans.iter().any(|s| s[0] <= i && i < s[1]);
                for e in entities {
                    prop_assert!(e.start < e.end && e.end <= chars.len());
                    prop_assert_eq!(chars[e.start..e.end].iter().collect::<String>(), e.text.clone());
                    prop_assert_eq!(&text[e.byte_start..e.byte_end], e.text.as_str());
                    // a boundary inside a given token is impossible; outside every token the
                    // tokenizer's pieces are the words
                    prop_assert!(
                        spans.iter().any(|s| s[0] == e.start) || !covered(e.start),
                        "entity {:?} starts inside a token of {:?}", e, spans
                    );
                    prop_assert!(
                        spans.iter().any(|s| s[1] == e.end) || !covered(e.end - 1),
                        "entity {:?} ends inside a token of {:?}", e, spans
                    );
                }
            }
        }
    }
}

#[test]
fn tokens_holding_punctuation_stay_whole_where_the_rule_cuts_them() {
    // a text whose every token holds punctuation inside: the rule's words split them, so some
    // entity of the tiny models ends inside a token there, never with the tokens as words
    let text = "S.p.A. Baden-Württemberg dell'Ente U.S.A. A.C.Milan Roma-Milano l'AP.Putin";
    let mut spans = Vec::new();
    let mut at = 0;
    for t in text.split(' ') {
        let n = t.chars().count();
        spans.push([at, at + n]);
        at += n + 1;
    }
    let inside = |e: &postilla_core::ner::NerEntity| {
        spans.iter().any(|s| (s[0] < e.start && e.start < s[1]) || (s[0] < e.end && e.end < s[1]))
    };
    let given = [NerInput { text, words: Some(&spans), before: "", after: "" }];
    let (mut with_tokens, mut with_rule) = (0, 0);
    for ner in pipelines(true) {
        with_tokens += ner.predict_inputs(&given).expect("predict")[0].iter().filter(|e| inside(e)).count();
        with_rule += ner.predict(&[text]).expect("predict")[0].iter().filter(|e| inside(e)).count();
    }
    assert_eq!(with_tokens, 0, "with the tokens as words no entity boundary falls inside a token");
    assert!(with_rule > 0, "the punctuation rule cuts some token (else this test proves nothing)");
}

#[test]
fn input_tokens_off_ignores_them() {
    let text = "Mario Rossi, (AP) S.p.A. Roma";
    let spans = [[0, 5], [6, 12], [13, 17], [18, 24], [25, 29]];
    for (on, off) in pipelines(true).iter().zip(pipelines(false)) {
        let given = [NerInput { text, words: Some(&spans), before: "", after: "" }];
        assert_eq!(off.predict_inputs(&given).expect("predict"), on.predict(&[text]).expect("predict"));
    }
}

#[test]
fn invalid_tokens_are_refused_with_the_text_named() {
    let ner = &pipelines(true)[0];
    let ok = NerInput::raw("Roma");
    for (words, why) in [
        (&[[0usize, 9]][..], "past the text"),
        (&[[2, 2]][..], "empty or reversed"),
        (&[[0, 3], [2, 4]][..], "before the previous token ends"),
    ] {
        let bad = NerInput { text: "Roma", words: Some(words), before: "", after: "" };
        match ner.predict_inputs(&[ok, bad]) {
            Err(ModelError::InvalidWords { index: 1, message }) => assert!(message.contains(why), "{message}"),
            other => panic!("{words:?}: expected InvalidWords for text 1, got {other:?}"),
        }
    }
}
