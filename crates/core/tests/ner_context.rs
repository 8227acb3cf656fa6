//! Context (`NerInput::before` / `after`, `NerOptions::context`): the model reads a text with
//! its neighbours' tokens and labels only the text. On tiny random models: entities lie in the
//! text with exact offsets; context changes what the model reads; a text that fills its window
//! alone, and a text with empty context, read exactly as without; neither batching nor the
//! other texts of a batch change a text's entities.

mod common;

use postilla_core::ner::{NerEntity, NerInput, NerOptions, NerPipeline};

const TEXTS: [&str; 6] = [
    "Il presidente Sergio Mattarella ha ricevuto al Quirinale il cancelliere Olaf Scholz.",
    "Roma e Berlino firmano un accordo sull'energia.",
    "La Juventus batte il Napoli 2-1.",
    "Angela Merkel traf Emmanuel Macron in Paris.",
    "Die Deutsche Bahn streicht Züge zwischen München und Zürich.",
    "Wang Yi incontra Blinken a Roma (ANSA).",
];

fn pipeline(model: &str, batch_size: usize) -> NerPipeline {
    let options = NerOptions { max_length: 48, stride: 8, batch_size, ..NerOptions::default() };
    NerPipeline::load(&common::tiny_models().join(model), options).expect("load")
}

/// Each text of `TEXTS` with `before[i]` and `after[i]` as context.
fn with_neighbours<'a>(before: &'a [String], after: &'a [String]) -> Vec<NerInput<'a>> {
    TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| NerInput { text: t, words: None, before: &before[i], after: &after[i] })
        .collect()
}

/// The texts before and after each text of `TEXTS`, joined by line breaks.
fn neighbours() -> (Vec<String>, Vec<String>) {
    let before = (0..TEXTS.len()).map(|i| TEXTS[..i].join("\n")).collect();
    let after = (0..TEXTS.len()).map(|i| TEXTS[i + 1..].join("\n")).collect();
    (before, after)
}

fn spans(out: &[Vec<NerEntity>]) -> Vec<Vec<(usize, usize, String)>> {
    out.iter().map(|es| es.iter().map(|e| (e.start, e.end, e.label.clone())).collect()).collect()
}

#[test]
fn context_is_read_and_only_the_text_is_labelled() {
    let (before, after) = neighbours();
    for model in ["tiny-bert", "tiny-xlmr"] {
        let ner = pipeline(model, 4);
        let alone = ner.predict(&TEXTS).expect("predict");
        let read = ner.predict_inputs(&with_neighbours(&before, &after)).expect("predict");
        for (text, entities) in TEXTS.iter().zip(&read) {
            let chars: Vec<char> = text.chars().collect();
            for e in entities {
                assert!(e.start < e.end && e.end <= chars.len(), "{model}: {e:?}");
                assert_eq!(chars[e.start..e.end].iter().collect::<String>(), e.text, "{model}");
            }
        }
        // a random model's labels move with what it reads: context is not ignored
        assert_ne!(spans(&alone), spans(&read), "{model}: context changed nothing");
        // empty context is no context
        let empty: Vec<NerInput> =
            TEXTS.iter().map(|t| NerInput { text: t, words: None, before: "", after: "" }).collect();
        assert_eq!(spans(&ner.predict_inputs(&empty).expect("predict")), spans(&alone), "{model}");
    }
}

#[test]
fn a_text_that_fills_its_window_reads_no_context() {
    let long = TEXTS.join(" ");
    let ner = pipeline("tiny-bert", 4);
    let alone = ner.predict(&[long.as_str()]).expect("predict");
    let input = NerInput { text: &long, words: None, before: TEXTS[0], after: TEXTS[1] };
    assert_eq!(spans(&ner.predict_inputs(&[input]).expect("predict")), spans(&alone));
}

#[test]
fn a_texts_entities_do_not_depend_on_the_batch() {
    let (before, after) = neighbours();
    let inputs = with_neighbours(&before, &after);
    let all = spans(&pipeline("tiny-xlmr", 16).predict_inputs(&inputs).expect("predict"));
    let ner = pipeline("tiny-xlmr", 1);
    for (i, input) in inputs.iter().enumerate().rev() {
        assert_eq!(spans(&ner.predict_inputs(std::slice::from_ref(input)).expect("predict"))[0], all[i]);
    }
}
