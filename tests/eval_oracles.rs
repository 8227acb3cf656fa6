//! `postilla eval` against the tools researchers cite, run live from the test environment:
//! seqeval (strict IOB2 micro/macro/per-type P/R/F1), nervaluate (the four SemEval-2013
//! schemas, overall and per type) and scikit-learn (classification_report, confusion_matrix),
//! to 1e-9, on the gold files of ../shared/data and seeded perturbations of them
//! (tests/support/eval_reference.py perturb).

mod common;

use std::path::Path;

use common::{import_shared, postilla, run, stderr};
use serde_json::Value;

fn reference(args: &[&std::ffi::OsStr]) -> Value {
    let o = std::process::Command::new(common::python())
        .arg(common::root().join("tests/support/eval_reference.py"))
        .args(args)
        .output()
        .expect("run eval_reference.py");
    assert!(o.status.success(), "reference: {}", String::from_utf8_lossy(&o.stderr));
    if o.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&o.stdout).expect("reference JSON")
    }
}

fn postilla_eval(gold: &Path, pred: &Path) -> Value {
    let o = run(postilla().args(["eval", "--json", "--gold"]).arg(gold).arg("--pred").arg(pred));
    assert!(o.status.success(), "eval: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("eval JSON")
}

fn close(a: &Value, b: &Value, what: &str) {
    let (x, y) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
    assert!((x - y).abs() < 1e-9, "{what}: postilla {x} vs reference {y}");
}

fn check_ner(format: &str, rel: &str, seeds: &[u64]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("gold.jsonl");
    import_shared(format, rel, &gold);
    for &seed in seeds {
        let pred = dir.path().join(format!("pred{seed}.jsonl"));
        reference(&["perturb".as_ref(), gold.as_os_str(), pred.as_os_str(), seed.to_string().as_ref()]);
        let ours = postilla_eval(&gold, &pred);
        let theirs = reference(&["ner".as_ref(), gold.as_os_str(), pred.as_os_str()]);
        let strict = &ours["entities"]["strict"];
        let seq = &theirs["seqeval"];
        for (ours_key, seq_key) in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")] {
            close(
                &strict["micro"][ours_key],
                &seq["micro avg"][seq_key],
                &format!("{rel} seed {seed} strict micro {ours_key}"),
            );
            close(
                &strict["macro_avg"][ours_key],
                &seq["macro avg"][seq_key],
                &format!("{rel} seed {seed} strict macro {ours_key}"),
            );
        }
        let types = ours["types"].as_array().expect("types");
        for t in types {
            let t = t.as_str().expect("type");
            for (ours_key, seq_key) in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")] {
                close(&strict["per_type"][t]["scores"][ours_key], &seq[t][seq_key], &format!("{rel} {t} {ours_key}"));
            }
            close(&strict["per_type"][t]["possible"], &seq[t]["support"], &format!("{rel} {t} support"));
        }
        let nerv = &theirs["nervaluate"];
        for (schema, name) in [("strict", "strict"), ("exact", "exact"), ("partial", "partial"), ("type", "ent_type")] {
            let o = &ours["entities"][schema];
            let n = &nerv["overall"][name];
            for k in ["correct", "incorrect", "partial", "missed", "spurious"] {
                assert_eq!(o["counts"][k], n[k], "{rel} seed {seed} {schema} {k}");
            }
            for k in ["precision", "recall", "f1"] {
                close(&o["micro"][k], &n[k], &format!("{rel} seed {seed} {schema} {k}"));
            }
            for t in types {
                let t = t.as_str().expect("type");
                for k in ["correct", "incorrect", "partial", "missed", "spurious"] {
                    assert_eq!(o["per_type"][t]["counts"][k], nerv["entities"][t][name][k], "{rel} {schema} {t} {k}");
                }
                close(
                    &o["per_type"][t]["scores"]["f1"],
                    &nerv["entities"][t][name]["f1"],
                    &format!("{rel} {schema} {t} f1"),
                );
            }
        }
        assert!(strict["micro"]["f1"].as_f64().expect("f1") < 0.95, "the perturbation must make errors");
        eprintln!("{rel} seed {seed}: strict micro F1 {} equals seqeval and nervaluate", strict["micro"]["f1"]);
    }
}

#[test]
fn ner_scores_equal_seqeval_and_nervaluate_on_kind() {
    check_ner("kind", "ner/it/kind/WN_dev.tsv", &[1, 2]);
}

#[test]
fn ner_scores_equal_seqeval_and_nervaluate_on_conll_de() {
    check_ner("conll", "ner/de/conll2003/dev.tsv", &[3]);
}

#[test]
fn ner_scores_equal_seqeval_and_nervaluate_on_germeval() {
    check_ner("germeval", "ner/de/germeval2014/dev.tsv", &[4]);
}

#[test]
fn ner_scores_equal_seqeval_and_nervaluate_on_evalita() {
    check_ner("conll", "ner/it/evalita2009/train.tsv", &[5]);
}

fn check_topics(format: &str, rel: &str, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("gold.jsonl");
    import_shared(format, rel, &gold);
    let pred = dir.path().join("pred.jsonl");
    reference(&["perturb".as_ref(), gold.as_os_str(), pred.as_os_str(), seed.to_string().as_ref()]);
    let ours = postilla_eval(&gold, &pred);
    let theirs = reference(&["topics".as_ref(), gold.as_os_str(), pred.as_os_str()]);
    let t = &ours["topics"];
    let r = &theirs["report"];
    close(&t["accuracy"], &r["accuracy"], "accuracy");
    for (ours_key, sk) in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")] {
        close(&t["macro_avg"][ours_key], &r["macro avg"][sk], &format!("macro {ours_key}"));
        close(&t["weighted"][ours_key], &r["weighted avg"][sk], &format!("weighted {ours_key}"));
    }
    for label in theirs["labels"].as_array().expect("labels") {
        let l = label.as_str().expect("label");
        for (ours_key, sk) in [("precision", "precision"), ("recall", "recall"), ("f1", "f1"), ("support", "support")] {
            let sk = if sk == "f1" { "f1-score" } else { sk };
            close(&t["per_class"][l][ours_key], &r[l][sk], &format!("{l} {ours_key}"));
        }
    }
    assert_eq!(t["labels"], theirs["labels"]);
    assert_eq!(t["confusion"], theirs["confusion"]);
    assert!(t["accuracy"].as_f64().expect("acc") < 0.95);
}

#[test]
fn topic_scores_equal_scikit_learn_on_sib200() {
    check_topics("sib200", "topics/sib200/ita_Latn/dev.tsv", 11);
}

#[test]
fn topic_scores_equal_scikit_learn_on_xglue() {
    check_topics("xglue-nc", "topics/xglue-nc-de/dev.tsv", 12);
}

#[test]
fn bootstrap_is_deterministic_and_brackets_the_estimate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("gold.jsonl");
    import_shared("kind", "ner/it/kind/WN_dev.tsv", &gold);
    let pred = dir.path().join("pred.jsonl");
    reference(&["perturb".as_ref(), gold.as_os_str(), pred.as_os_str(), "9".as_ref()]);
    let args = |seed: &str| {
        let o = run(postilla()
            .args(["eval", "--json", "--bootstrap", "300", "--seed", seed, "--gold"])
            .arg(&gold)
            .arg("--pred")
            .arg(&pred));
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<Value>(&o.stdout).expect("json")
    };
    let (a, b, c) = (args("7"), args("7"), args("8"));
    assert_eq!(a["bootstrap"], b["bootstrap"], "same seed, same intervals");
    assert_ne!(a["bootstrap"], c["bootstrap"], "another seed, other intervals");
    let ci = &a["bootstrap"]["ci95"]["entities.strict.micro.f1"];
    let f1 = a["entities"]["strict"]["micro"]["f1"].as_f64().expect("f1");
    let (lo, hi) = (ci[0].as_f64().expect("lo"), ci[1].as_f64().expect("hi"));
    assert!(lo < f1 && f1 < hi && hi - lo < 0.1, "interval [{lo}, {hi}] around {f1}");
}

#[test]
fn paired_bootstrap_prefers_the_better_system() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("gold.jsonl");
    import_shared("kind", "ner/it/kind/WN_dev.tsv", &gold);
    let worse = dir.path().join("worse.jsonl");
    reference(&["perturb".as_ref(), gold.as_os_str(), worse.as_os_str(), "21".as_ref()]);
    let o = run(postilla()
        .args(["eval", "--json", "--bootstrap", "200", "--gold"])
        .arg(&gold)
        .arg("--pred")
        .arg(&worse)
        .arg("--pred")
        .arg(&gold));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let m = &v["metrics"]["entities.strict.micro.f1"];
    assert!(m["delta"].as_f64().expect("delta") > 0.3);
    assert!(m["p_value"].as_f64().expect("p") < 0.01, "{m}");
}

#[test]
fn mismatched_texts_and_missing_ids_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("gold.jsonl");
    import_shared("kind", "ner/it/kind/WN_dev.tsv", &gold);
    let text = std::fs::read_to_string(&gold).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    let short = dir.path().join("short.jsonl");
    std::fs::write(&short, lines.join("\n")).expect("write");
    let o = run(postilla().args(["eval", "--gold"]).arg(&gold).arg("--pred").arg(&short));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("lacks 1 document id"), "{}", stderr(&o));
    let mut v: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    v[3]["text_sha256"] = Value::String("0".repeat(64));
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n")).expect("write");
    let o = run(postilla().args(["eval", "--gold"]).arg(&gold).arg("--pred").arg(&other));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("different texts"), "{}", stderr(&o));
}

#[test]
fn errors_file_lists_each_kind_of_error_with_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("gold.jsonl");
    import_shared("kind", "ner/it/kind/WN_dev.tsv", &gold);
    let pred = dir.path().join("pred.jsonl");
    reference(&["perturb".as_ref(), gold.as_os_str(), pred.as_os_str(), "3".as_ref()]);
    let errors = dir.path().join("errors.jsonl");
    let o = run(postilla().args(["eval", "--gold"]).arg(&gold).arg("--pred").arg(&pred).arg("--errors").arg(&errors));
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = common::read_jsonl(&errors);
    for kind in ["missed", "spurious", "mislabelled", "boundary"] {
        assert!(lines.iter().any(|l| !l[kind].as_array().expect(kind).is_empty()), "some {kind} error");
    }
    let missed =
        lines.iter().find_map(|l| l["missed"].as_array().and_then(|a| a.first().cloned())).expect("a missed span");
    let ctx = missed["context"].as_str().expect("context");
    assert!(ctx.contains(&format!("[[{}]]", missed["text"].as_str().expect("text"))));
}

#[test]
fn multi_label_topic_scores_equal_scikit_learn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let labels = ["politics", "economy", "energy", "sport", "health", "conflict"];
    let mut rng = postilla_annotator::eval::bootstrap::SplitMix64::new(77);
    let pick = |rng: &mut postilla_annotator::eval::bootstrap::SplitMix64| -> Vec<Value> {
        let mut set: Vec<&str> = labels.iter().copied().filter(|_| rng.below(3) == 0).collect();
        if set.is_empty() && rng.below(2) == 0 {
            set.push(labels[rng.below(labels.len())]);
        }
        set.into_iter().map(|l| serde_json::json!({"label": l})).collect()
    };
    let (mut g, mut p) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let sha = format!("{:064x}", i);
        g.push(serde_json::json!({"schema": "postilla/1", "id": format!("d{i}"), "text_sha256": sha, "entities": [], "topics": pick(&mut rng)}).to_string());
        p.push(serde_json::json!({"schema": "postilla/1", "id": format!("d{i}"), "text_sha256": sha, "entities": [], "topics": pick(&mut rng)}).to_string());
    }
    let (gold, pred) = (dir.path().join("g.jsonl"), dir.path().join("p.jsonl"));
    std::fs::write(&gold, g.join("\n")).expect("write");
    std::fs::write(&pred, p.join("\n")).expect("write");
    let ours = postilla_eval(&gold, &pred);
    let theirs = reference(&["multilabel".as_ref(), gold.as_os_str(), pred.as_os_str()]);
    let t = &ours["topics"];
    assert_eq!(t["mode"], "multi-label");
    for (o, s) in [("micro", "micro"), ("macro_avg", "macro"), ("weighted", "weighted")] {
        for k in ["precision", "recall", "f1"] {
            close(&t[o][k], &theirs[s][k], &format!("multi-label {s} {k}"));
        }
    }
    for l in labels {
        for k in ["precision", "recall", "f1", "support"] {
            close(&t["per_class"][l][k], &theirs["per_class"][l][k], &format!("{l} {k}"));
        }
    }
}
