//! The NLI topic method against Hugging Face's `pipeline("zero-shot-classification")` on tiny
//! random NLI models in three label layouts (entailment first, entailment last, two-class):
//! same ranking and scores within 1e-4, single- and multi-label, with the Italian template.

mod common;

use std::path::{Path, PathBuf};

use postilla_core::topics::{NliOptions, NliTopicScorer, TopicTaxonomy};

const TEMPLATE: &str = "Questo testo parla di {}.";
const LABELS: [(&str, &str); 5] = [
    ("politics", "politica"),
    ("economy", "economia"),
    ("sport", "sport"),
    ("health", "salute"),
    ("culture", "cultura e spettacolo"),
];

fn nli_models() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new(common::python())
            .arg(common::root().join("tests/support/hf_nli_reference.py"))
            .arg("make-models")
            .arg(dir.path())
            .status()
            .expect("run hf_nli_reference.py");
        assert!(status.success());
        dir
    })
    .path()
}

fn taxonomy() -> TopicTaxonomy {
    let mut toml = format!("name = \"t\"\nlanguages = [\"it\"]\n[templates]\nit = \"{TEMPLATE}\"\n");
    for (id, label) in LABELS {
        toml.push_str(&format!(
            "[[topics]]\nid = \"{id}\"\nit = {{ label = \"{label}\", description = \"{label}\" }}\n"
        ));
    }
    TopicTaxonomy::from_toml(&toml, "test").expect("taxonomy")
}

fn texts() -> Vec<String> {
    vec![
        "Il presidente Mattarella ha incontrato il cancelliere tedesco a Roma.".into(),
        "La Juventus ha vinto contro l’Inter per due a zero.".into(),
        "L’inflazione è salita al 3 per cento secondo l’Istat.".into(),
        "Xi Jinping e Vladimir Putin hanno discusso di cooperazione strategica, energia e commercio.".into(),
        "Un nuovo vaccino riduce i ricoveri negli ospedali.".into(),
    ]
}

fn reference(model: &Path, multi: bool) -> Vec<Vec<(String, f64)>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let t: PathBuf = dir.path().join("texts.json");
    let l: PathBuf = dir.path().join("labels.json");
    std::fs::write(&t, serde_json::to_string(&texts()).expect("json")).expect("write");
    let labels: Vec<&str> = LABELS.iter().map(|(_, l)| *l).collect();
    std::fs::write(&l, serde_json::to_string(&labels).expect("json")).expect("write");
    let out = std::process::Command::new(common::python())
        .arg(common::root().join("tests/support/hf_nli_reference.py"))
        .arg("predict")
        .arg(model)
        .arg(&t)
        .arg(&l)
        .arg(TEMPLATE)
        .arg(if multi { "1" } else { "0" })
        .output()
        .expect("reference");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<Vec<(String, f64)>> = serde_json::from_slice(&out.stdout).expect("json");
    // labels back to topic ids
    v.into_iter()
        .map(|r| {
            r.into_iter().map(|(l, s)| (LABELS.iter().find(|(_, x)| *x == l).expect("label").0.to_owned(), s)).collect()
        })
        .collect()
}

fn compare(layout: &str, multi: bool) {
    let dir = nli_models().join(layout);
    let expected = reference(&dir, multi);
    let options = NliOptions { multi_label: multi, threshold: 0.0, batch_size: 3, ..NliOptions::default() };
    let scorer = NliTopicScorer::load(&dir, taxonomy(), options).expect("load");
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got = scorer.score(&refs, &vec!["it"; refs.len()]).expect("score");
    for (i, (ours, theirs)) in got.iter().zip(&expected).enumerate() {
        // same labels with the same scores (within 1e-4)...
        let mut a: Vec<(&str, f64)> = ours.iter().map(|x| (x.0.as_str(), x.1)).collect();
        let mut b: Vec<(&str, f64)> = theirs.iter().map(|x| (x.0.as_str(), x.1)).collect();
        a.sort_by(|x, y| x.0.cmp(y.0));
        b.sort_by(|x, y| x.0.cmp(y.0));
        assert_eq!(
            a.iter().map(|x| x.0).collect::<Vec<_>>(),
            b.iter().map(|x| x.0).collect::<Vec<_>>(),
            "{layout} multi={multi}: labels of text {i}"
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x.1 - y.1).abs() < 1e-4, "{layout} multi={multi} text {i} {}: {} vs {}", x.0, x.1, y.1);
        }
        // ...and the same ranking, except between labels the reference scores within 2e-4 of
        // each other (a near-tie may flip with the order of float operations)
        let position = |label: &str| ours.iter().position(|x| x.0 == label).expect("label");
        for (k, hi) in theirs.iter().enumerate() {
            for lo in &theirs[k + 1..] {
                if hi.1 - lo.1 > 2e-4 {
                    assert!(
                        position(&hi.0) < position(&lo.0),
                        "{layout} multi={multi}: text {i} ranks {} below {}",
                        hi.0,
                        lo.0
                    );
                }
            }
        }
        if !multi {
            assert!((ours.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-6);
        }
    }
    let spread: f64 = got.iter().map(|r| r[0].1 - r[r.len() - 1].1).sum();
    assert!(spread > 0.05, "{layout}: scores must differ for the comparison to mean something (spread {spread})");
}

#[test]
fn entailment_first_single_and_multi_label() {
    compare("entail-first", false);
    compare("entail-first", true);
}

#[test]
fn entailment_last_single_and_multi_label() {
    compare("entail-last", false);
    compare("entail-last", true);
}

#[test]
fn two_class_single_and_multi_label() {
    compare("two-class", false);
    compare("two-class", true);
}

#[test]
fn a_model_without_entailment_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("m");
    std::fs::create_dir(&model).expect("mkdir");
    for e in std::fs::read_dir(nli_models().join("two-class")).expect("dir") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, model.join(p.file_name().expect("name"))).expect("copy");
    }
    let cfg = std::fs::read_to_string(model.join("config.json")).expect("config");
    std::fs::write(
        model.join("config.json"),
        cfg.replace("not_entailment", "NEGATIVE").replace("\"entailment\"", "\"POSITIVE\""),
    )
    .expect("write");
    let err = NliTopicScorer::load(&model, taxonomy(), NliOptions::default()).unwrap_err().to_string();
    assert!(err.contains("no entailment"), "{err}");
}

#[test]
fn long_documents_are_chunked_and_aggregated() {
    let dir = nli_models().join("entail-first");
    let seeds = common::seeds();
    let text = seeds[3].as_str(); // ~1000 tokens, the tiny model takes 128
    for aggregate in [postilla_core::topics::ChunkAggregation::Mean, postilla_core::topics::ChunkAggregation::Max] {
        let scorer =
            NliTopicScorer::load(&dir, taxonomy(), NliOptions { aggregate, ..NliOptions::default() }).expect("load");
        let got = scorer.score(&[text], &["it"]).expect("score");
        assert_eq!(got[0].len(), LABELS.len());
        assert!((got[0].iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-6);
    }
}
