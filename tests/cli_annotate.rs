//! End-to-end: `postilla annotate` over the seeds and over bad inputs.

mod common;

use common::{postilla, read_jsonl, run, stderr};

#[test]
fn annotates_the_seeds_into_schema_valid_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("seeds.jsonl");
    let model = common::tiny_models().join("tiny-bert");
    let o = run(postilla().args(["annotate", "seeds/", "--batch-size", "3", "--ner"]).arg(&model).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("5 documents"), "summary line: {}", stderr(&o));
    let records = read_jsonl(&out);
    assert_eq!(records.len(), 5);
    common::assert_schema_valid(&records);
    let weights_sha = {
        use sha2::Digest;
        let bytes = std::fs::read(model.join("model.safetensors")).expect("weights");
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let mut langs = Vec::new();
    for r in &records {
        let id = r["id"].as_str().expect("id");
        let text = std::fs::read_to_string(common::root().join("seeds").join(format!("{id}.txt"))).expect("seed");
        let chars: Vec<char> = text.chars().collect();
        let entities = r["entities"].as_array().expect("entities");
        assert!(!entities.is_empty());
        for e in entities {
            let (s, t) = (e["start"].as_u64().expect("start") as usize, e["end"].as_u64().expect("end") as usize);
            assert_eq!(chars[s..t].iter().collect::<String>(), e["text"].as_str().expect("text"));
        }
        assert_eq!(r["provenance"]["ner_model"]["sha256"], weights_sha.as_str());
        assert_eq!(r["provenance"]["params"]["max_length"], 128, "capped at the model's 128 positions");
        langs.push(r["lang"]["code"].as_str().expect("lang").to_owned());
    }
    langs.sort();
    assert_eq!(langs, ["de", "it", "it", "it", "it"]);
}

#[test]
fn bad_documents_become_error_records_and_the_run_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    std::fs::create_dir(&input).expect("mkdir");
    std::fs::write(input.join("good.txt"), "Angela Merkel ha visitato Roma.").expect("write");
    std::fs::write(input.join("latin1.txt"), b"Citt\xe0 di Milano").expect("write");
    std::fs::write(input.join("empty.txt"), "").expect("write");
    std::fs::write(input.join("blank.txt"), " \n\t\n").expect("write");
    std::fs::write(input.join("bom.txt"), "\u{feff}Olaf Scholz a Berlino.").expect("write");
    let out = dir.path().join("out.jsonl");
    let model = common::tiny_models().join("tiny-bert");
    let o = run(postilla().arg("annotate").arg(&input).arg("--no-topics").arg("--ner").arg(&model).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(1), "exit 1 when some documents failed: {}", stderr(&o));
    let records = read_jsonl(&out);
    common::assert_schema_valid(&records);
    let kinds: Vec<(String, String)> = records
        .iter()
        .map(|r| (r["id"].as_str().unwrap_or("").to_owned(), r["error"]["kind"].as_str().unwrap_or("ok").to_owned()))
        .collect();
    assert_eq!(
        kinds,
        [("blank", "empty"), ("bom", "ok"), ("empty", "empty"), ("good", "ok"), ("latin1", "invalid_utf8")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let bom = &records[1];
    let e = &bom["entities"].as_array().expect("entities");
    for x in e.iter() {
        let text = "Olaf Scholz a Berlino.";
        let chars: Vec<char> = text.chars().collect();
        let (s, t) = (x["start"].as_u64().expect("s") as usize, x["end"].as_u64().expect("e") as usize);
        assert_eq!(chars[s..t].iter().collect::<String>(), x["text"].as_str().expect("t"), "offsets exclude the BOM");
    }
}

#[test]
fn jsonl_on_stdin_with_a_malformed_line() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let model = common::tiny_models().join("tiny-bert");
    let mut child = postilla()
        .args(["annotate", "-", "--no-topics", "--ner"])
        .arg(&model)
        .arg("-o")
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let input = "{\"id\":\"a\",\"text\":\"Roma e Parigi\"}\n{broken\n{\"id\":\"c\",\"text\":\"Berlino\"}\n";
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(1));
    let records = read_jsonl(&out);
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["error"]["kind"], "malformed_jsonl");
    assert_eq!(records[1]["source"], "stdin:2");
    assert_eq!(records[2]["id"], "c");
    assert!(records[2]["error"].is_null());
}

#[test]
fn a_missing_output_directory_is_refused_before_any_work() {
    let o = run(postilla().args(["annotate", "seeds/", "-o", "/nonexistent-dir/out.jsonl"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not exist"));
}

#[test]
fn an_unknown_model_type_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("m");
    common::copy_dir(&common::tiny_models().join("tiny-bert"), &model);
    let cfg = std::fs::read_to_string(model.join("config.json")).expect("config");
    std::fs::write(model.join("config.json"), cfg.replace("\"model_type\": \"bert\"", "\"model_type\": \"gpt2\""))
        .expect("write");
    let o = run(postilla().args(["annotate", "seeds/", "--ner"]).arg(&model).arg("-o").arg(dir.path().join("o.jsonl")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("gpt2"), "{}", stderr(&o));
}

#[test]
fn the_seeds_get_politics_as_top_topic_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("seeds.jsonl");
    let o = run(postilla().args(["annotate", "seeds/", "--no-ner", "-o"]).arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let records = read_jsonl(&out);
    common::assert_schema_valid(&records);
    let taxonomy_sha = {
        use sha2::Digest;
        let bytes = std::fs::read(common::root().join("taxonomies/news.toml")).expect("taxonomy");
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    for r in &records {
        let topics = r["topics"].as_array().expect("topics");
        assert_eq!(topics.len(), 12, "single-label mode ranks every topic");
        assert_eq!(topics[0]["label"], "politics", "{}: {:?}", r["id"], &topics[..3]);
        let sum: f64 = topics.iter().map(|t| t["score"].as_f64().expect("score")).sum();
        assert!((sum - 1.0).abs() < 1e-4, "softmax scores sum to 1");
        let p = &r["provenance"];
        assert_eq!(p["params"]["topic_method"], "embedding");
        assert_eq!(p["params"]["topic_taxonomy"]["sha256"], taxonomy_sha.as_str());
        assert_eq!(p["topic_model"]["id"], "e5-small");
        assert_eq!(p["params"]["topic_adapter"]["sha256"], sha256_of(SHIPPED_ADAPTER).as_str(), "the shipped adapter");
        assert_eq!(p["params"]["topic_temperature"], 0.05, "the adapter's temperature");
    }
}

const SHIPPED_ADAPTER: &str = "models/topic-adapters/e5-small.safetensors";

fn sha256_of(relative: &str) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(common::root().join(relative)).expect("read");
    sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn topic_scores(r: &serde_json::Value) -> std::collections::BTreeMap<String, f64> {
    r["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| (t["label"].as_str().expect("label").to_owned(), t["score"].as_f64().expect("score")))
        .collect()
}

#[test]
fn the_topic_adapter_changes_scores_and_is_refused_where_it_does_not_belong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let annotate = |extra: &[&str], out: &str| {
        run(postilla()
            .args(["annotate", "seeds/", "--no-ner", "--topics", "taxonomies/sib200.toml"])
            .args(extra)
            .arg("-o")
            .arg(dir.path().join(out)))
    };
    // the default is the shipped adapter; --topic-adapter FILE is the same file; --no-topic-adapter differs
    for (extra, out) in [(&[][..], "default.jsonl"), (&["--topic-adapter", SHIPPED_ADAPTER][..], "given.jsonl")] {
        let o = annotate(extra, out);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = annotate(&["--no-topic-adapter"], "plain.jsonl");
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |name: &str| read_jsonl(&dir.path().join(name));
    let (default, given, plain) = (read("default.jsonl"), read("given.jsonl"), read("plain.jsonl"));
    for ((d, g), p) in default.iter().zip(&given).zip(&plain) {
        assert_eq!(topic_scores(d), topic_scores(g), "{}", d["id"]);
        assert_ne!(topic_scores(d), topic_scores(p), "{}: the adapter changes the scores", d["id"]);
        assert!(p["provenance"]["params"]["topic_adapter"].is_null());
        assert_eq!(p["provenance"]["params"]["topic_temperature"], 0.02);
    }

    // an adapter trained on other encoder weights is refused, naming both
    let mut bytes = std::fs::read(common::root().join(SHIPPED_ADAPTER)).expect("adapter");
    let encoder = read_jsonl(&dir.path().join("default.jsonl"))[0]["provenance"]["topic_model"]["sha256"]
        .as_str()
        .expect("sha")
        .to_owned();
    let at = bytes.windows(encoder.len()).position(|w| w == encoder.as_bytes()).expect("encoder sha in the header");
    let other: String = encoder.chars().rev().collect();
    bytes[at..at + other.len()].copy_from_slice(other.as_bytes());
    let foreign = dir.path().join("foreign.safetensors");
    std::fs::write(&foreign, &bytes).expect("write");
    let o = annotate(&["--topic-adapter", foreign.to_str().expect("utf-8")], "x.jsonl");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("trained for encoder {other}, but the topic model is {encoder}")),
        "{}",
        stderr(&o)
    );

    // a truncated adapter file is a clear error naming the file
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let o = annotate(&["--topic-adapter", truncated.to_str().expect("utf-8")], "y.jsonl");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("truncated.safetensors") && stderr(&o).contains("not safetensors"), "{}", stderr(&o));

    // the NLI method has no use for an adapter
    let o = annotate(&["--topic-method", "nli", "--topic-adapter", SHIPPED_ADAPTER], "z.jsonl");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("embedding method only"), "{}", stderr(&o));
}

#[test]
fn topics_fall_back_to_english_for_other_languages_and_multi_label_keeps_only_assigned() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("docs.jsonl");
    let mut f = std::fs::File::create(&input).expect("create");
    writeln!(f, "{}", serde_json::json!({"id": "fr", "text": "Le président français a rencontré le chancelier allemand à Berlin pour discuter de la guerre en Ukraine et de la politique européenne."})).expect("write");
    writeln!(f, "{}", serde_json::json!({"id": "it", "text": "La Juventus ha battuto l'Inter per due a zero nella partita di campionato di ieri sera a Torino."})).expect("write");
    drop(f);
    let out = dir.path().join("out.jsonl");
    // with the shipped adapter and its threshold (the default), and with plain cosines
    for extra in [&[][..], &["--no-topic-adapter", "--topic-threshold", "0.8"][..]] {
        let o =
            run(postilla().args(["annotate", "--no-ner", "--multi-label"]).args(extra).arg(&input).arg("-o").arg(&out));
        assert!(o.status.success(), "{}", stderr(&o));
        let records = read_jsonl(&out);
        common::assert_schema_valid(&records);
        assert_eq!(records[0]["lang"]["code"], "fr");
        assert_eq!(records[0]["lang"]["topic_language"], "en", "French has no wording in the taxonomy");
        assert!(records[1]["lang"]["topic_language"].is_null());
        let sport: Vec<&str> =
            records[1]["topics"].as_array().expect("topics").iter().map(|t| t["label"].as_str().expect("l")).collect();
        assert!(sport.contains(&"sport"), "{sport:?}");
        assert!(sport.len() < 12, "multi-label keeps only topics above the threshold: {sport:?}");
        for t in records[1]["topics"].as_array().expect("topics") {
            assert!(t["score"].as_f64().expect("score") >= 0.5);
        }
    }
}

#[test]
fn a_taxonomy_with_a_missing_language_is_refused_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tax = dir.path().join("t.toml");
    std::fs::write(&tax, "name = \"t\"\nlanguages = [\"it\", \"de\"]\n[[topics]]\nid = \"a\"\nit = { label = \"a\", description = \"A.\" }\n").expect("write");
    let o = run(postilla()
        .args(["annotate", "seeds/", "--no-ner", "--topics"])
        .arg(&tax)
        .arg("-o")
        .arg(dir.path().join("o.jsonl")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("topics[0].de: missing"), "{}", stderr(&o));
}

#[test]
fn ner_and_nli_topics_in_one_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let ner = common::tiny_models().join("tiny-bert");
    let nli = common::tiny_nli_models().join("entail-last");
    let o = run(postilla()
        .args([
            "annotate",
            "seeds/",
            "--topics",
            "taxonomies/news.toml",
            "--topic-method",
            "nli",
            "--aggregate",
            "max",
            "--ner",
        ])
        .arg(&ner)
        .arg("--topic-model")
        .arg(&nli)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let records = read_jsonl(&out);
    common::assert_schema_valid(&records);
    for r in &records {
        assert!(!r["entities"].as_array().expect("entities").is_empty());
        assert_eq!(r["topics"].as_array().expect("topics").len(), 12);
        assert_eq!(r["provenance"]["params"]["topic_method"], "nli");
        assert_eq!(r["provenance"]["params"]["topic_aggregate"], "max");
        assert_eq!(r["provenance"]["params"]["topic_templates"]["it"], "Questo testo parla di {}.");
        assert_eq!(r["provenance"]["topic_model"]["id"], "entail-last");
    }
}

#[test]
fn a_5_mb_document_and_a_10000_file_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big_dir = dir.path().join("big");
    std::fs::create_dir(&big_dir).expect("mkdir");
    let seeds = common::seeds().join("\n\n");
    let mut big = String::with_capacity(5_300_000);
    while big.len() < 5_000_000 {
        big.push_str(&seeds);
        big.push_str("\n\n");
    }
    std::fs::write(big_dir.join("big.txt"), &big).expect("write");
    let out = dir.path().join("big.jsonl");
    let model = common::tiny_models().join("tiny-bert");
    let o = run(postilla()
        .arg("annotate")
        .arg(&big_dir)
        .args(["--no-topics", "--batch-size", "64", "--ner"])
        .arg(&model)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &read_jsonl(&out)[0];
    let chars: Vec<char> = big.chars().collect();
    let entities = r["entities"].as_array().expect("entities");
    assert!(entities.len() > 10_000, "{} entities", entities.len());
    for e in entities.iter().step_by(97) {
        let (s, t) = (e["start"].as_u64().expect("s") as usize, e["end"].as_u64().expect("e") as usize);
        assert_eq!(chars[s..t].iter().collect::<String>(), e["text"].as_str().expect("text"));
    }

    let many = dir.path().join("many");
    for i in 0..10_000 {
        let sub = many.join(format!("{:02}", i % 100));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join(format!("{i:05}.txt")), format!("Documento {i}: Mario Rossi a Roma.")).expect("write");
    }
    let out = dir.path().join("many.jsonl");
    let o = run(postilla()
        .arg("annotate")
        .arg(&many)
        .args(["--no-topics", "--batch-size", "64", "--ner"])
        .arg(&model)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let records = read_jsonl(&out);
    assert_eq!(records.len(), 10_000);
    assert_eq!(records[0]["id"], "00/00000");
    assert_eq!(records[9_999]["id"], "99/09999");
}

#[test]
fn every_kind_of_bad_jsonl_line_becomes_an_error_record_between_good_neighbours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("docs.jsonl");
    let good =
        |id: &str| serde_json::json!({"id": id, "text": format!("{id}: Mario Rossi è arrivato a Roma.")}).to_string();
    let lines = [
        good("g1"),
        "{not json".to_owned(),
        good("g2"),
        r#"{"id":"no-text"}"#.to_owned(),
        good("g3"),
        r#"{"id":"number-text","text":42}"#.to_owned(),
        good("g4"),
        r#"{"id":"../etc/passwd","text":"Roma"}"#.to_owned(),
        good("g5"),
        r#"{"id":"bell\u0007","text":"Roma"}"#.to_owned(),
        good("g6"),
        r#"{"id":"g1","text":"the same id again"}"#.to_owned(),
        good("g7"),
        r#"{"id":"nul","text":"binary\u0000data"}"#.to_owned(),
        good("g8"),
        r#"{"id":"blank","text":"  \n "}"#.to_owned(),
        good("g9"),
    ];
    let mut bytes = lines.join("\n").into_bytes();
    bytes.extend_from_slice(b"\n{\"id\":\"latin1\",\"text\":\"Citt\xe0\"}\n");
    bytes.extend_from_slice(good("g10").as_bytes());
    std::fs::write(&input, bytes).expect("write");
    let out = dir.path().join("out.jsonl");
    let model = common::tiny_models().join("tiny-bert");
    let o = run(postilla()
        .arg("annotate")
        .arg(&input)
        .args(["--no-topics", "--batch-size", "2", "--ner"])
        .arg(&model)
        .arg("-o")
        .arg(&out));
    assert_eq!(o.status.code(), Some(1), "exit 1: finished with error records; {}", stderr(&o));
    let records = read_jsonl(&out);
    common::assert_schema_valid(&records);
    let got: Vec<(String, String)> = records
        .iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r["error"]["kind"].as_str().unwrap_or("ok").to_owned()))
        .collect();
    let path = input.display().to_string();
    let want = [
        ("g1", "ok"),
        (&format!("{path}:2"), "malformed_jsonl"),
        ("g2", "ok"),
        ("no-text", "missing_text"),
        ("g3", "ok"),
        ("number-text", "missing_text"),
        ("g4", "ok"),
        ("../etc/passwd", "invalid_id"),
        ("g5", "ok"),
        ("bell\u{7}", "invalid_id"),
        ("g6", "ok"),
        ("g1", "duplicate_id"),
        ("g7", "ok"),
        ("nul", "binary"),
        ("g8", "ok"),
        ("blank", "empty"),
        ("g9", "ok"),
        (&format!("{path}:18"), "invalid_utf8"),
        ("g10", "ok"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(got, want);
    for r in &records {
        match r["error"]["message"].as_str() {
            Some(message) => {
                assert!(message.len() > 10, "a clear message: {message:?}");
                assert!(r["source"].as_str().is_some_and(|s| s.contains(":")), "source names the line: {r}");
                assert!(stderr(&o).contains(message), "reported on stderr too: {message}");
            }
            None => assert!(!r["entities"].as_array().expect("entities").is_empty(), "neighbour {} annotated", r["id"]),
        }
    }
}

#[test]
fn truncated_or_corrupted_model_files_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let annotate = |model: &std::path::Path| {
        run(postilla().args(["annotate", "seeds/", "--no-topics", "--ner"]).arg(model).arg("-o").arg(&out))
    };

    // no manifest: a truncated weights file is caught by its format
    let truncated = dir.path().join("truncated");
    common::copy_dir(&common::tiny_models().join("tiny-bert"), &truncated);
    let weights = std::fs::read(truncated.join("model.safetensors")).expect("read");
    std::fs::write(truncated.join("model.safetensors"), &weights[..weights.len() / 2]).expect("write");
    let o = annotate(&truncated);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("model.safetensors"), "names the file: {}", stderr(&o));
    assert!(!out.exists() && !dir.path().join("out.jsonl.partial").exists(), "nothing written");

    // with a manifest (as every model Postilla builds has): one flipped bit is a sha256 mismatch
    let flipped = dir.path().join("flipped");
    common::copy_dir(&common::tiny_models().join("tiny-bert"), &flipped);
    let o = run(postilla().args(["models", "manifest"]).arg(&flipped));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(annotate(&flipped).status.success(), "an intact model with a manifest loads");
    std::fs::remove_file(&out).expect("rm");
    let mut weights = std::fs::read(flipped.join("model.safetensors")).expect("read");
    let last = weights.len() - 1;
    weights[last] ^= 0x10;
    std::fs::write(flipped.join("model.safetensors"), &weights).expect("write");
    let o = annotate(&flipped);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("sha256") && stderr(&o).contains("model.safetensors"), "{}", stderr(&o));
    assert!(!out.exists() && !dir.path().join("out.jsonl.partial").exists(), "nothing written");

    // a file listed in the manifest is missing
    weights[last] ^= 0x10;
    std::fs::write(flipped.join("model.safetensors"), &weights).expect("write");
    std::fs::remove_file(flipped.join("tokenizer.json")).expect("rm");
    let o = annotate(&flipped);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing tokenizer.json"), "{}", stderr(&o));
}

#[test]
fn topic_calibration_shifts_each_cosine_by_its_topic_offset_and_is_refused_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    // unlabelled calibration texts: 40 Italian SIB-200 train sentences (labels are not read)
    let gold = dir.path().join("train.jsonl");
    common::import_shared("sib200", "topics/sib200/ita_Latn/train.tsv", &gold);
    let texts = dir.path().join("texts.jsonl");
    common::write_jsonl(&texts, &read_jsonl(&gold)[..40]);
    let cal = dir.path().join("cal.json");
    let o = run(postilla()
        .args(["topics", "calibrate", "--topics", "taxonomies/sib200.toml"])
        .arg(&texts)
        .arg("-o")
        .arg(&cal));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("it 40"), "{}", stderr(&o));
    let calibration: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).expect("cal")).expect("json");
    assert_eq!(calibration["texts"]["it"], 40);
    assert!(calibration["texts"]["de"].is_null(), "no German texts, so German stays uncalibrated");

    let annotate = |extra: &[&str], out: &std::path::Path| {
        run(postilla()
            .args(["annotate", "seeds/", "--no-ner", "--topics", "taxonomies/sib200.toml"])
            .args(extra)
            .arg("-o")
            .arg(out))
    };
    let (plain, calibrated) = (dir.path().join("plain.jsonl"), dir.path().join("cal.jsonl"));
    assert!(annotate(&[], &plain).status.success());
    let o = annotate(&["--topic-calibration", cal.to_str().expect("utf-8 path")], &calibrated);
    assert!(o.status.success(), "{}", stderr(&o));
    for (p, c) in read_jsonl(&plain).iter().zip(read_jsonl(&calibrated)) {
        let temperature = c["provenance"]["params"]["topic_temperature"].as_f64().expect("temperature");
        let lang = c["lang"]["code"].as_str().expect("lang");
        assert_eq!(c["provenance"]["params"]["topic_calibration"]["languages"], serde_json::json!(["it"]));
        let scores = |r: &serde_json::Value| -> std::collections::BTreeMap<String, f64> {
            r["topics"]
                .as_array()
                .expect("topics")
                .iter()
                .map(|t| (t["label"].as_str().expect("l").to_owned(), t["score"].as_f64().expect("s")))
                .collect()
        };
        let (ps, cs) = (scores(p), scores(&c));
        if lang != "it" {
            assert_eq!(ps, cs, "{}: an uncalibrated language is unchanged", c["id"]);
            continue;
        }
        // softmax((cos - offset) / T) vs softmax(cos / T): log ratio + offset / T is the same for every topic
        let means = calibration["mean_cosine"]["it"].as_object().expect("means");
        let centre = means.values().map(|v| v.as_f64().expect("f")).sum::<f64>() / means.len() as f64;
        let shifted: Vec<f64> = ps
            .iter()
            .filter(|(t, &s)| s > 1e-3 && cs[*t] > 1e-3)
            .map(|(t, s)| (cs[t] / s).ln() + (means[t].as_f64().expect("f") - centre) / temperature)
            .collect();
        assert!(shifted.len() >= 2, "{}: too few comparable topics", c["id"]);
        let spread =
            shifted.iter().cloned().fold(f64::MIN, f64::max) - shifted.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread < 0.01, "{}: calibration is not a per-topic shift of the cosines: {shifted:?}", c["id"]);
        assert_ne!(ps, cs, "{}: calibration changed the scores", c["id"]);
    }

    // measured through the shipped topic adapter (the default), so refused without it
    assert!(calibration["adapter_sha256"].is_string(), "{calibration}");
    let o = annotate(&["--topic-calibration", cal.to_str().expect("utf-8 path"), "--no-topic-adapter"], &plain);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("computed for topic adapter"), "{}", stderr(&o));

    // another taxonomy, or the NLI method, refuses the calibration
    let o = run(postilla()
        .args(["annotate", "seeds/", "--no-ner", "--topic-calibration"])
        .arg(&cal)
        .arg("-o")
        .arg(dir.path().join("x.jsonl")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("computed for taxonomy"), "{}", stderr(&o));
    let o = run(postilla()
        .args([
            "annotate",
            "seeds/",
            "--no-ner",
            "--topics",
            "taxonomies/sib200.toml",
            "--topic-method",
            "nli",
            "--topic-model",
        ])
        .arg(common::tiny_nli_models().join("entail-last"))
        .arg("--topic-calibration")
        .arg(&cal)
        .arg("-o")
        .arg(dir.path().join("y.jsonl")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("embedding method only"), "{}", stderr(&o));
}

#[test]
fn a_document_reads_its_neighbours_in_input_order_as_context() {
    // KIND WN dev sentences, one record each; with --context 1 a sentence's entities depend on
    // the sentences right before and after it in the file, and on nothing else
    let dir = tempfile::tempdir().expect("tempdir");
    let gold = dir.path().join("wn.jsonl");
    common::import_shared("kind", "ner/it/kind/WN_dev.tsv", &gold);
    let sentences: Vec<serde_json::Value> = read_jsonl(&gold)
        .iter()
        .take(40)
        .enumerate()
        .map(|(i, r)| serde_json::json!({"id": format!("s{i:02}"), "text": r["text"]}))
        .collect();
    let model = common::tiny_models().join("tiny-bert");
    let annotate = |records: &[serde_json::Value], name: &str, context: &str| {
        let (input, out) = (dir.path().join(format!("{name}.in.jsonl")), dir.path().join(format!("{name}.jsonl")));
        common::write_jsonl(&input, records);
        let o = run(postilla()
            .arg("annotate")
            .arg(&input)
            .args(["--no-topics", "--context", context, "--ner"])
            .arg(&model)
            .arg("-o")
            .arg(&out));
        assert!(o.status.success(), "{}", stderr(&o));
        read_jsonl(&out)
    };
    let entities = |r: &serde_json::Value| r["entities"].to_string();
    let all = annotate(&sentences, "all", "1");
    let alone = annotate(&sentences, "alone", "0");
    assert_eq!(all[0]["provenance"]["params"]["context"], 1);
    assert_eq!(alone[0]["provenance"]["params"]["context"], 0);
    // context is read: some sentence's entities change with it
    assert!(all.iter().zip(&alone).any(|(a, b)| entities(a) != entities(b)), "context changed nothing");
    // only the neighbours count: sentences 1..40 without sentence 0 give sentences 2.. the
    // same entities, and each sentence alone in a file reads as under --context 0
    let rest = annotate(&sentences[1..], "rest", "1");
    for (a, b) in all[2..].iter().zip(&rest[1..]) {
        assert_eq!(a["id"], b["id"]);
        assert_eq!(entities(a), entities(b), "{}", a["id"]);
    }
    for i in [0, 7, 21] {
        let single = annotate(&sentences[i..=i], &format!("single{i}"), "1");
        assert_eq!(entities(&single[0]), entities(&alone[i]), "sentence {i}");
    }
}
