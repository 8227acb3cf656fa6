//! Reduced precisions (`--precision bf16|int8`) on the default NER model and the real seeds:
//! how far each stays from fp32, the errors for precisions that cannot run, and provenance.
//!
//! Stated tolerances (README, "Precision"), on the five seed articles:
//! * int8: at least 99 % of the tokens keep fp32's label, at least 97 % of fp32's entity spans
//!   come out identical (span and type), and the strict F1 against the seed gold stays within
//!   1 point of fp32's; the differences are printed (run with `--nocapture`).
//! * bf16: at least 98 % of the tokens keep fp32's label (checked on every machine through the
//!   model API, which does not refuse emulated bf16; the CLI does, see below).
//! * both: no logit moves by 3 or more, and some move (the precision is really applied).
//! * the embedding topic encoder in int8 (`--topic-precision`): every seed keeps its top topic,
//!   whose score moves by less than 0.1.
//! * int8 is independent of batching: a window's logits are bit-for-bit the same alone and in
//!   a padded batch, and the entities the same with batch size 1 and 16.
//! * the default is fp32; `--precision auto` runs the precision of the rule for this processor
//!   (bf16 on AMD processors with bf16 instructions, fp32 elsewhere and under rust-bert's
//!   forward) and provenance
//!   names that one, never `auto`.

mod common;

use std::collections::BTreeSet;

use common::{postilla, read_jsonl, run, stderr};
use postilla_core::model::{Engine, Precision};
use postilla_core::ner::model::TokenClassifier;
use postilla_core::ner::{NerOptions, NerPipeline};
use postilla_core::text::TextTokenizer;
use tch::{Device, Kind, Tensor};

fn default_model_dir() -> std::path::PathBuf {
    let dir = common::root().join("models/ner-it-de");
    assert!(dir.join("model.safetensors").exists(), "{} is not built: run `just setup`", dir.display());
    dir
}

fn seed_texts() -> Vec<String> {
    let mut paths: Vec<_> = std::fs::read_dir(common::root().join("seeds"))
        .expect("seeds/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read_to_string(p).expect("seed")).collect()
}

/// The model's logits `[real tokens, labels]` for the seeds' first 254 tokens each, one batch.
fn token_logits(classifier: &TokenClassifier, ids: &Tensor, mask: &Tensor) -> Tensor {
    let _guard = tch::no_grad_guard();
    let logits = classifier.logits(ids, mask).expect("forward");
    let labels = logits.size()[2];
    logits.masked_select(&mask.to_kind(Kind::Bool).unsqueeze(-1)).view([-1, labels])
}

fn labels(logits: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(logits.argmax(-1, false)).expect("labels")
}

fn seed_batch(dir: &std::path::Path) -> (Tensor, Tensor) {
    let tokenizer = TextTokenizer::from_dir(dir).expect("tokenizer");
    let rows: Vec<Vec<i64>> = seed_texts()
        .iter()
        .map(|t| {
            let ids = tokenizer.ids(t, true).expect("ids");
            let (bos, eos) = (ids[0], ids[ids.len() - 1]);
            let body = &ids[1..ids.len() - 1];
            std::iter::once(bos)
                .chain(body.iter().take(254).copied())
                .chain(std::iter::once(eos))
                .map(i64::from)
                .collect()
        })
        .collect();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let padded: Vec<i64> =
        rows.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(1, width - r.len()))).collect();
    let mask: Vec<i64> = rows
        .iter()
        .flat_map(|r| std::iter::repeat_n(1, r.len()).chain(std::iter::repeat_n(0, width - r.len())))
        .collect();
    let shape = [rows.len() as i64, width as i64];
    (Tensor::from_slice(&padded).view(shape), Tensor::from_slice(&mask).view(shape))
}

fn agreement(a: &[i64], b: &[i64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

#[test]
fn int8_and_bf16_token_labels_stay_within_tolerance_of_fp32() {
    let dir = default_model_dir();
    let (ids, mask) = seed_batch(&dir);
    let load = |p| TokenClassifier::load(&dir, Device::Cpu, Engine::default(), p).expect("load");
    let fp32_logits = token_logits(&load(Precision::Fp32), &ids, &mask);
    let fp32 = labels(&fp32_logits);
    assert!(fp32.len() > 1000, "{} tokens", fp32.len());
    assert!(fp32.iter().filter(|&&l| l != 0).count() > 50, "fp32 finds entity tokens");
    // bf16 is refused where the processor has no bf16 instructions (tested below)
    let bf16 = Precision::cpu_flags().split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16");
    if !bf16 {
        eprintln!("bf16: not available on this processor, only int8 compared");
    }
    for (precision, least) in [(Precision::Int8, 0.99), (Precision::Bf16, 0.98)] {
        if precision == Precision::Bf16 && !bf16 {
            continue;
        }
        let classifier = load(precision);
        assert_eq!(classifier.precision(), precision);
        let logits = token_logits(&classifier, &ids, &mask);
        let share = agreement(&fp32, &labels(&logits));
        let drift = f64::try_from((&logits - &fp32_logits).abs().max()).expect("max");
        eprintln!(
            "{precision}: {:.2} % of {} seed tokens keep fp32's label; largest logit difference {drift:.3}",
            100.0 * share,
            fp32.len()
        );
        assert!(share >= least, "{precision}: only {:.4} of the tokens keep fp32's label", share);
        // it is another computation (not fp32 under another name), and a close one
        assert!(drift > 1e-3, "{precision}: logits equal fp32's to {drift}: is the precision applied?");
        assert!(drift < 3.0, "{precision}: a logit moved by {drift}");
    }
}

type Span = (usize, usize, usize, String);

fn spans(precision: Precision) -> BTreeSet<Span> {
    spans_in_batches_of(precision, NerOptions::default().batch_size)
}

fn spans_in_batches_of(precision: Precision, batch_size: usize) -> BTreeSet<Span> {
    let options = NerOptions { precision, batch_size, ..NerOptions::default() };
    let ner = NerPipeline::load(&default_model_dir(), options).expect("load");
    let texts = seed_texts();
    let docs: Vec<&str> = texts.iter().map(String::as_str).collect();
    ner.predict(&docs)
        .expect("predict")
        .into_iter()
        .enumerate()
        .flat_map(|(d, entities)| entities.into_iter().map(move |e| (d, e.start, e.end, e.label)))
        .collect()
}

#[test]
fn int8_entity_spans_stay_within_tolerance_of_fp32() {
    let (fp32, int8) = (spans(Precision::Fp32), spans(Precision::Int8));
    let same = fp32.intersection(&int8).count();
    let share = same as f64 / fp32.len() as f64;
    eprintln!("int8: {same} of fp32's {} seed entity spans identical ({:.1} %)", fp32.len(), 100.0 * share);
    for span in fp32.difference(&int8) {
        eprintln!("  fp32 only: {span:?}");
    }
    for span in int8.difference(&fp32) {
        eprintln!("  int8 only: {span:?}");
    }
    assert!(share >= 0.97, "only {share:.3} of the entity spans survive int8");
}

#[test]
fn int8_logits_of_a_window_are_the_same_alone_and_in_a_padded_batch() {
    // activations are quantized per token, the int8 products are exact and int8 attends window
    // by window, so a window's logits do not move by a bit with the batch around it
    let dir = default_model_dir();
    let (full_ids, full_mask) = seed_batch(&dir);
    // windows of different lengths, right-padded as the pipeline pads them
    let width = full_ids.size()[1];
    let keep = Tensor::arange(width, (Kind::Int64, Device::Cpu))
        .unsqueeze(0)
        .lt_tensor(&(Tensor::from_slice(&[256i64, 200, 131, 77, 240]).narrow(0, 0, full_ids.size()[0]).unsqueeze(1)));
    let mask = &full_mask * keep.to_kind(Kind::Int64);
    let ids = full_ids.where_self(&mask.ne(0), &Tensor::from(1i64));
    let classifier = TokenClassifier::load(&dir, Device::Cpu, Engine::default(), Precision::Int8).expect("load");
    let together = token_logits(&classifier, &ids, &mask);
    let lengths = Vec::<i64>::try_from(mask.sum_dim_intlist(&[1i64][..], false, Kind::Int64)).expect("lengths");
    assert!(lengths.iter().any(|&n| n < ids.size()[1]), "the batch has padding");
    let mut row = 0;
    for (b, &n) in lengths.iter().enumerate() {
        let window = |t: &Tensor| t.narrow(0, b as i64, 1).narrow(1, 0, n);
        let alone = token_logits(&classifier, &window(&ids), &window(&mask));
        assert!(
            alone.equal(&together.narrow(0, row, n)),
            "window {b} ({n} tokens): logits differ alone and in the batch"
        );
        row += n;
    }
}

#[test]
fn int8_entities_do_not_depend_on_the_other_documents_of_a_batch() {
    // see above; through the whole pipeline (windows, batches, decoding)
    let (alone, together) = (spans_in_batches_of(Precision::Int8, 1), spans_in_batches_of(Precision::Int8, 16));
    assert!(alone.len() > 100);
    assert_eq!(alone, together, "int8 spans change with the batch");
}

fn seed_gold_f1(precision: &str, out: &std::path::Path) -> f64 {
    let o = run(postilla().args(["annotate", "seeds/", "--no-topics", "--precision", precision, "-o"]).arg(out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("deprecated"), "libtorch's fbgemm deprecation notes leak: {}", stderr(&o));
    let o = run(postilla()
        .args(["eval", "--gold", "seeds/gold.jsonl", "--types", "PER,ORG,LOC", "--json", "--pred"])
        .arg(out));
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("eval JSON");
    report["entities"]["strict"]["micro"]["f1"].as_f64().expect("F1")
}

#[test]
fn int8_seed_gold_f1_and_provenance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fp32 = seed_gold_f1("fp32", &dir.path().join("fp32.jsonl"));
    let int8 = seed_gold_f1("int8", &dir.path().join("int8.jsonl"));
    eprintln!("seed gold strict F1 (PER/ORG/LOC): fp32 {fp32:.4}, int8 {int8:.4}");
    assert!(int8 >= fp32 - 0.01, "int8 F1 {int8:.4} is more than 1 point under fp32's {fp32:.4}");
    for (name, precision) in [("fp32.jsonl", "fp32"), ("int8.jsonl", "int8")] {
        for r in read_jsonl(&dir.path().join(name)) {
            assert_eq!(r["provenance"]["params"]["precision"], precision, "provenance names the precision");
        }
    }
}

#[test]
fn the_topic_encoder_runs_in_the_precision_asked_and_provenance_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("topics.jsonl");
    let o = run(postilla().args(["annotate", "seeds/", "--no-ner", "--topic-precision", "int8", "-o"]).arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let fp32_out = dir.path().join("topics-fp32.jsonl");
    let o = run(postilla().args(["annotate", "seeds/", "--no-ner", "-o"]).arg(&fp32_out));
    assert!(o.status.success(), "{}", stderr(&o));
    let (int8, fp32) = (read_jsonl(&out), read_jsonl(&fp32_out));
    for (a, b) in int8.iter().zip(&fp32) {
        assert_eq!(a["provenance"]["params"]["topic_precision"], "int8");
        assert_eq!(b["provenance"]["params"]["topic_precision"], "fp32");
        // the top topic is the same and its score moves by less than 0.1 (the softmax's
        // temperature, 0.05, turns small cosine changes into larger score changes)
        assert_eq!(a["topics"][0]["label"], b["topics"][0]["label"], "{}", a["id"]);
        let (x, y) =
            (a["topics"][0]["score"].as_f64().expect("score"), b["topics"][0]["score"].as_f64().expect("score"));
        eprintln!("{}: top topic {} score {x} (int8) vs {y} (fp32)", a["id"], a["topics"][0]["label"]);
        assert!((x - y).abs() < 0.1, "{}: top topic score {x} (int8) vs {y} (fp32)", a["id"]);
    }
}

#[test]
fn precisions_that_cannot_run_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    // bf16 runs where the processor has bf16 instructions; elsewhere it is refused, not emulated
    let native = {
        let flags = Precision::cpu_flags();
        flags.split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16")
    };
    let o = run(postilla().args(["annotate", "seeds/", "--no-topics", "--precision", "bf16", "-o"]).arg(&out));
    if native {
        assert!(o.status.success(), "{}", stderr(&o));
    } else {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("precision bf16 is not available"), "{}", stderr(&o));
        assert!(stderr(&o).contains("avx512_bf16"), "the error says what is missing: {}", stderr(&o));
        assert!(!out.exists(), "nothing written");
    }
    // reduced precisions live in the fused forward: rust-bert's forward refuses them
    let o = run(postilla()
        .args(["annotate", "seeds/", "--no-topics", "--engine", "rust-bert", "--precision", "int8", "-o"])
        .arg(&out));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("precision int8 is not available"), "{}", stderr(&o));
    assert!(stderr(&o).contains("fp32 only"), "{}", stderr(&o));
    // an unknown precision names the choices
    let o = run(postilla().args(["annotate", "seeds/", "--precision", "fp16", "-o"]).arg(&out));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("fp32, bf16 or int8"), "{}", stderr(&o));
}

#[test]
fn the_default_is_auto_resolved_for_this_processor_and_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let precision_of = |extra: &[&str], name: &str| -> Vec<serde_json::Value> {
        let out = dir.path().join(name);
        let o = run(postilla().args(["annotate", "seeds/", "--no-topics"]).args(extra).arg("-o").arg(&out));
        assert!(o.status.success(), "{}", stderr(&o));
        read_jsonl(&out)
    };
    // the rule, written out: int8 on processors with VNNI instructions, fp32 elsewhere
    let flags = Precision::cpu_flags();
    let vnni = flags.split_whitespace().any(|f| f == "avx512_vnni" || f == "avx_vnni");
    let expected = if vnni { "int8" } else { "fp32" };
    let default = precision_of(&[], "default.jsonl");
    let auto = precision_of(&["--precision", "auto"], "auto.jsonl");
    let explicit = precision_of(&["--precision", expected], "explicit.jsonl");
    for ((d, a), b) in default.iter().zip(&auto).zip(&explicit) {
        assert_eq!(d["provenance"]["params"]["precision"], expected, "the default is auto, resolved and recorded");
        assert_eq!(a["provenance"]["params"]["precision"], expected, "auto resolved and recorded, never 'auto'");
        assert_eq!(a["entities"], b["entities"], "auto is the run of what it resolved to: {}", a["id"]);
        assert_eq!(d["entities"], b["entities"], "the default is the run of what auto resolved to: {}", a["id"]);
    }
    // where only rust-bert's fp32 forward runs, auto is fp32 (an explicit int8 is refused, above)
    for r in precision_of(&["--precision", "auto", "--engine", "rust-bert"], "rust-bert.jsonl") {
        assert_eq!(r["provenance"]["params"]["precision"], "fp32");
    }
}
