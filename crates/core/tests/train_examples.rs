//! Training targets from gold spans, with the real e5-small tokenizer: words are cut where
//! `postilla annotate` cuts them (punctuation glued to names included), each word's first
//! token carries the IOB2 label, and entities whose edges fall inside a word are counted.

mod common;

use postilla_core::annotator::record::AnnotationRecord;
use postilla_core::ner::tokens::DocTokenizer;
use postilla_core::ner::WordBoundaries;
use postilla_core::train::examples::{encode, LabelScheme, Target};
use postilla_core::train::gold::GoldSet;
use postilla_core::train::TrainOptions;

fn gold_file(dir: &std::path::Path, text: &str, spans: &[(&str, &str)]) -> std::path::PathBuf {
    let mut entities = Vec::new();
    let mut from = 0;
    for (surface, label) in spans {
        let byte = from + text[from..].find(surface).expect("surface in text");
        let start = text[..byte].chars().count();
        let end = start + surface.chars().count();
        entities.push(serde_json::json!({"start": start, "end": end, "label": label, "text": surface}));
        from = byte + surface.len();
    }
    let record = serde_json::json!({"schema": "postilla/1", "id": "d", "text": text, "entities": entities});
    let _: AnnotationRecord = serde_json::from_value(record.clone()).expect("valid record");
    let path = dir.join("gold.jsonl");
    std::fs::write(&path, record.to_string() + "\n").expect("write");
    path
}

#[test]
fn glued_punctuation_gets_its_own_label_and_words_their_first_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "Roma (AP).Putin, Wang Yi e l'Unione Europea.\nNuova riga con Berlino";
    let spans = [("AP", "ORG"), ("Putin", "PER"), ("Wang Yi", "PER"), ("Unione Europea", "ORG"), ("Berlino", "LOC")];
    let path = gold_file(dir.path(), text, &spans);
    let base = common::e5_dir();
    let options = TrainOptions::new(vec![path.clone()], vec![], base.clone(), dir.path().join("out"));
    let gold = GoldSet::read(&options.train).expect("gold");
    let tokenizer = DocTokenizer::from_dir(&base).expect("tokenizer");
    let mut scheme = LabelScheme::new(vec!["PER".into(), "ORG".into(), "LOC".into()]);
    let encoded = encode(&gold, &tokenizer, &mut scheme, &options).expect("encode");
    assert_eq!(encoded.segments.len(), 2, "two lines, two segments");
    assert_eq!(encoded.misaligned_entities, 0);

    // the labelled words, read back through the tokenizer's spans
    let tokens = tokenizer.tokenize(text).expect("tokens");
    let starts = tokenizer.word_starts(&tokens, WordBoundaries::Punctuation);
    let labels = scheme.labels();
    let targets: Vec<Target> = encoded.segments.iter().flat_map(|s| s.targets.clone()).collect();
    assert_eq!(targets.len(), tokens.tokens.len());
    let mut words = Vec::new();
    for ((t, target), start) in tokens.tokens.iter().zip(&targets).zip(&starts) {
        match target {
            Target::Label(l) => {
                assert!(*start, "only word starts are labelled");
                let surface: String = tokens.chars[t.trimmed.0..t.trimmed.1].iter().collect();
                words.push(format!("{surface}/{}", labels[*l as usize]));
            }
            Target::Ignore => {}
            Target::Partial(_) => panic!("no partial labels asked for"),
        }
    }
    // each word shown by its first token (where its label sits): "Putin" after the glued
    // ")." is a word of its own with B-PER, ")." and "," are words labelled O
    assert_eq!(
        words.join(" "),
        "Roma/O (/O AP/B-ORG )./O P/B-PER ,/O Wang/B-PER Yi/I-PER e/O l/O '/O Unione/B-ORG Europea/I-ORG ./O \
         Nu/O riga/O con/O Berlin/B-LOC"
    );
}

#[test]
fn spans_that_cut_a_word_are_counted_as_misaligned() {
    let dir = tempfile::tempdir().expect("tempdir");
    // "Roma" inside "Romanzo" cannot be labelled exactly by the word rule
    let path = gold_file(dir.path(), "Il Romanzo di Milano", &[("Roma", "LOC"), ("Milano", "LOC")]);
    let base = common::e5_dir();
    let options = TrainOptions::new(vec![path], vec![], base.clone(), dir.path().join("out"));
    let gold = GoldSet::read(&options.train).expect("gold");
    let tokenizer = DocTokenizer::from_dir(&base).expect("tokenizer");
    let mut scheme = LabelScheme::new(vec!["LOC".into()]);
    let encoded = encode(&gold, &tokenizer, &mut scheme, &options).expect("encode");
    assert_eq!((encoded.entities, encoded.misaligned_entities), (2, 1));
}
