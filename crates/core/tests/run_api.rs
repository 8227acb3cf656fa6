//! The library's run API (`postilla_core::run`), used directly as research code would: a
//! sharded run merged equals a single run, a run cut mid-line resumes to the same bytes, the
//! events arrive in order with the right counts, and what the CLI turned into an exit is an
//! error value here. Runs the real default NER model (`models/ner-it-de`) on the seeds.

mod common;

use std::path::{Path, PathBuf};

use postilla_core::annotate::{AnnotateError, Annotator, AnnotatorConfig};
use postilla_core::annotator::resume::{ResumeError, Shard};
use postilla_core::defaults;
use postilla_core::ner::NerOptions;
use postilla_core::run::merge::merge_shards;
use postilla_core::run::{run, RunError, RunEvent, RunOptions, RunSummary};
use postilla_core::topics::{EmbeddingOptions, EmbeddingTopicScorer, TopicError};

fn annotator() -> Annotator {
    let dir = common::root().join(defaults::NER_MODEL_DIR);
    assert!(dir.join("model.safetensors").exists(), "{} is not built: run `just setup`", dir.display());
    let config = AnnotatorConfig { ner: Some((dir, NerOptions::default())), threads: Some(2), ..Default::default() };
    Annotator::new(config).expect("load the default NER model")
}

fn seeds() -> String {
    common::root().join("seeds").display().to_string()
}

/// Runs and collects the events as short strings.
fn run_logged(annotator: &mut Annotator, options: &RunOptions) -> (Result<RunSummary, RunError>, Vec<String>) {
    let mut events = Vec::new();
    let result = run(annotator, options, &mut |e| {
        events.push(match e {
            RunEvent::Calibration(_) => "calibration".to_owned(),
            RunEvent::Resumed { already_done, truncated_bytes } => {
                format!("resumed {already_done} cut {}", truncated_bytes > 0)
            }
            RunEvent::Started { total } => format!("started {total:?}"),
            RunEvent::Batch { records } => format!("batch {}", records.len()),
        })
    });
    (result, events)
}

fn options(inputs: Vec<String>, output: &Path) -> RunOptions {
    RunOptions { chunk_docs: 2, ..RunOptions::new(inputs, output.to_path_buf()) }
}

#[test]
fn shards_merge_into_the_single_run_and_a_cut_run_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut annotator = annotator();
    let single = dir.path().join("single.jsonl");
    let (summary, events) = run_logged(&mut annotator, &options(vec![seeds()], &single));
    let summary = summary.expect("single run");
    assert_eq!((summary.documents, summary.errors), (5, 0));
    assert!(summary.entities > 50, "the default model finds the seeds' entities: {summary:?}");
    assert_eq!(events, ["started Some(5)", "batch 2", "batch 2", "batch 1"]);
    assert!(!dir.path().join("single.jsonl.partial").exists(), "the partial file was renamed");
    let expected = std::fs::read(&single).expect("single output");

    // two shards, merged in input order
    let mut shard_files = Vec::new();
    for index in 0..2 {
        let out = dir.path().join(format!("shard{index}.jsonl"));
        let shard = Some(Shard { index, count: 2 });
        let (result, events) = run_logged(&mut annotator, &RunOptions { shard, ..options(vec![seeds()], &out) });
        result.expect("shard run");
        assert_eq!(events[0], "started None", "no total with a shard");
        shard_files.push(out);
    }
    let merged = merge_shards(&shard_files, &[seeds()]).expect("merge");
    let merged: Vec<u8> = merged
        .iter()
        .flat_map(|r| {
            let mut line = serde_json::to_vec(r).expect("json");
            line.push(b'\n');
            line
        })
        .collect();
    assert_eq!(merged, expected, "merged shards equal the single run");

    // a run killed mid-line: two records and half of the third
    let cut = dir.path().join("cut.jsonl");
    let lines: Vec<&[u8]> = expected.split_inclusive(|&b| b == b'\n').collect();
    let mut partial = [lines[0], lines[1]].concat();
    partial.extend_from_slice(&lines[2][..lines[2].len() / 2]);
    std::fs::write(&cut, &partial).expect("write cut output");
    let (result, events) = run_logged(&mut annotator, &RunOptions { resume: true, ..options(vec![seeds()], &cut) });
    assert_eq!(result.expect("resumed run").documents, 3, "only the missing documents are annotated");
    assert_eq!(events[0], "resumed 2 cut true");
    assert_eq!(std::fs::read(&cut).expect("resumed output"), expected, "resumed output equals the single run");
}

#[test]
fn a_changed_text_and_another_configuration_are_errors_not_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("docs.jsonl");
    let doc = |id: &str, text: &str| serde_json::json!({"id": id, "text": text}).to_string() + "\n";
    std::fs::write(&input, doc("a", "Mario Draghi è a Roma.") + &doc("b", "Olaf Scholz in Berlin.")).expect("input");
    let out = dir.path().join("out.jsonl");
    let mut annotator = annotator();
    let inputs = vec![input.display().to_string()];
    run(&mut annotator, &options(inputs.clone(), &out), &mut |_| {}).expect("first run");

    // the same id with another text: refused, the output untouched
    let before = std::fs::read(&out).expect("output");
    std::fs::write(&input, doc("a", "Mario Draghi è a Milano.") + &doc("b", "Olaf Scholz in Berlin.")).expect("input");
    let resumed = run(&mut annotator, &RunOptions { resume: true, ..options(inputs.clone(), &out) }, &mut |_| {});
    assert!(matches!(resumed, Err(RunError::Resume(ResumeError::TextChanged { ref id })) if id == "a"), "{resumed:?}");
    assert_eq!(std::fs::read(&out).expect("output"), before, "nothing written");

    // another configuration (a stride the records were not made with): refused
    let dir_model = common::root().join(defaults::NER_MODEL_DIR);
    let other = NerOptions { stride: 32, ..NerOptions::default() };
    let mut other =
        Annotator::new(AnnotatorConfig { ner: Some((dir_model, other)), ..Default::default() }).expect("load");
    let resumed = run(&mut other, &RunOptions { resume: true, ..options(inputs, &out) }, &mut |_| {});
    assert!(matches!(resumed, Err(RunError::Resume(ResumeError::ConfigMismatch { .. }))), "{resumed:?}");

    // an output directory that does not exist: an error before anything is read
    let missing = dir.path().join("no/such/dir/out.jsonl");
    let result = run(&mut annotator, &options(vec![seeds()], &missing), &mut |_| {});
    assert!(matches!(result, Err(RunError::OutputPath(_))), "{result:?}");
}

#[test]
fn a_language_missing_from_the_taxonomy_is_an_error_not_a_panic() {
    let taxonomy = defaults::taxonomy_or_news(None).expect("news taxonomy");
    let encoder = postilla_core::embed::SentenceEncoder::load(&common::e5_dir(), Default::default()).expect("e5");
    let scorer = EmbeddingTopicScorer::new(encoder, taxonomy, EmbeddingOptions::default()).expect("scorer");
    let scored = scorer.score(&["Le président est à Paris."], &["fr"]);
    assert!(matches!(scored, Err(TopicError::UnknownLanguage { ref language, .. }) if language == "fr"), "{scored:?}");
    assert!(scorer.score(&["Il presidente è a Roma."], &["it"]).is_ok());
}

#[test]
fn a_missing_model_is_a_typed_error() {
    let config = AnnotatorConfig {
        ner: Some((PathBuf::from("/nonexistent/model"), NerOptions::default())),
        ..Default::default()
    };
    assert!(matches!(Annotator::new(config), Err(AnnotateError::Model(_))));
}

/// Twenty-four short Italian news texts, eight per theme, for calibration tests.
fn calibration_texts() -> Vec<String> {
    let themes = [
        ("La squadra ha vinto la partita di calcio", "allo stadio davanti ai tifosi"),
        ("Il governo ha approvato la legge di bilancio", "dopo un lungo dibattito in parlamento"),
        ("La borsa di Milano ha chiuso in rialzo", "grazie ai titoli delle banche"),
    ];
    (0..24).map(|i| format!("{} numero {i} {}.", themes[i % 3].0, themes[i % 3].1)).collect()
}

#[test]
fn calibrating_on_texts_about_to_be_scored_embeds_each_text_once_with_the_same_cosines() {
    let taxonomy = defaults::taxonomy_or_news(None).expect("news taxonomy");
    let load = || {
        let encoder = postilla_core::embed::SentenceEncoder::load(&common::e5_dir(), Default::default()).expect("e5");
        EmbeddingTopicScorer::new(encoder, taxonomy.clone(), EmbeddingOptions::default()).expect("scorer")
    };
    let texts = calibration_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let langs = vec!["it"; refs.len()];
    let plain = load();
    let calibration = plain.calibration(&refs, &langs, "m").expect("calibration");
    let expected = plain.cosines(&refs, &langs).expect("cosines");
    assert_eq!(plain.embedded_texts(), 48, "without keeping, scoring embeds the texts again");
    let keeping = load();
    let kept = keeping.calibration_keeping_embeddings(&refs, &langs, "m").expect("calibration");
    assert_eq!(kept, calibration, "the same calibration either way");
    let cosines = keeping.cosines(&refs, &langs).expect("cosines");
    assert_eq!(keeping.embedded_texts(), 24, "each text embedded once");
    for (a, b) in cosines.iter().flatten().zip(expected.iter().flatten()) {
        assert!((a - b).abs() < 1e-6, "kept embeddings give the cosines of fresh ones: {a} vs {b}");
    }
    keeping.cosines(&refs[..3], &langs[..3]).expect("cosines");
    assert_eq!(keeping.embedded_texts(), 27, "a kept embedding serves once, then is released");
}

#[test]
fn relative_multi_label_assigns_topics_above_their_calibrated_spread() {
    let taxonomy = defaults::taxonomy_or_news(None).expect("news taxonomy");
    let texts = calibration_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let langs = vec!["it"; refs.len()];
    let encoder = postilla_core::embed::SentenceEncoder::load(&common::e5_dir(), Default::default()).expect("e5");
    let options = EmbeddingOptions { multi_label: true, relative_threshold: Some(1.0), ..EmbeddingOptions::default() };
    let mut scorer = EmbeddingTopicScorer::new(encoder, taxonomy.clone(), options).expect("scorer");
    let calibration = scorer.calibration(&refs, &langs, "m").expect("calibration");
    let raw = scorer.cosines(&refs, &langs).expect("cosines");
    scorer.calibrate_with(&calibration, "m", "test").expect("apply");
    let scored = scorer.score(&refs, &langs).expect("scores");
    let ids: Vec<&str> = taxonomy.topics.iter().map(|t| t.id.as_str()).collect();
    let (mean, std) = calibration.standardisation("it", &ids).expect("standardisation");
    for (doc, topics) in raw.iter().zip(&scored) {
        let want: Vec<&str> = ids
            .iter()
            .enumerate()
            .filter(|&(t, _)| std[t] > 0.0 && (doc[t] - mean[t]) / std[t] >= 1.0)
            .map(|(_, id)| *id)
            .collect();
        let mut got: Vec<&str> = topics.iter().map(|(id, _)| id.as_str()).collect();
        got.sort_unstable();
        let mut want = want;
        want.sort_unstable();
        assert_eq!(got, want, "exactly the topics one deviation above their mean");
        assert!(topics.iter().all(|(_, p)| (0.5..=1.0).contains(p)));
    }
    let sport = taxonomy.topics.iter().position(|t| t.id == "sport").expect("sport topic");
    let football: Vec<&Vec<(String, f64)>> = scored.iter().step_by(3).collect();
    assert!(
        football.iter().filter(|t| t.iter().any(|(id, _)| id == ids[sport])).count() >= 6,
        "the football texts stand out on sport: {football:?}"
    );
}
