//! End-to-end: the default NER model (models/ner-it-de, rebuilt by `just setup` from e5-small
//! and the committed trained weights) on the real seeds, and the determinism of its build.

mod common;

use std::path::Path;

use common::{postilla, read_jsonl, run, stderr};
use postilla_core::ner::decode::is_punctuation;

fn default_model_dir() -> std::path::PathBuf {
    let dir = common::root().join("models/ner-it-de");
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is not built: run `just setup` (part of `just test`)",
        dir.display()
    );
    dir
}

/// `just run`'s command: the seeds with the default models, no --ner.
fn annotate_seeds(out: &Path) -> Vec<serde_json::Value> {
    default_model_dir();
    let o = run(postilla().args(["annotate", "seeds/", "-o"]).arg(out));
    assert!(o.status.success(), "{}", stderr(&o));
    read_jsonl(out)
}

#[test]
fn just_run_finds_the_seed_entities_with_exact_clean_spans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("seeds.jsonl");
    let records = annotate_seeds(&out);
    assert_eq!(records.len(), 5);
    common::assert_schema_valid(&records);
    let mut n = 0;
    for r in &records {
        assert_eq!(r["provenance"]["ner_model"]["id"], "ner-it-de", "the default model is used");
        assert_eq!(r["provenance"]["params"]["word_boundaries"], "punctuation");
        assert_eq!(r["provenance"]["params"]["decoding"], "viterbi");
        let id = r["id"].as_str().expect("id");
        let text = std::fs::read_to_string(common::root().join("seeds").join(format!("{id}.txt"))).expect("seed");
        let chars: Vec<char> = text.chars().collect();
        for e in r["entities"].as_array().expect("entities") {
            let (s, t) = (e["start"].as_u64().expect("start") as usize, e["end"].as_u64().expect("end") as usize);
            let surface: String = chars[s..t].iter().collect();
            assert_eq!(surface, e["text"].as_str().expect("text"), "code-point offsets");
            // no sentence mark glued between two words inside a span ("AP.Putin"), except
            // after a single letter ("A.C.", "U.S.A.")
            for k in s + 2..t.saturating_sub(1) {
                let letters = chars[s..k].iter().rev().take_while(|c| c.is_alphanumeric()).count();
                assert!(
                    !(".,;:!?".contains(chars[k]) && chars[k + 1].is_uppercase() && letters >= 2),
                    "{}: entity {surface:?} runs across a glued {:?}",
                    r["id"],
                    chars[k]
                );
            }
            for c in [chars[s], chars[t - 1]] {
                assert!(
                    !c.is_whitespace() && !is_punctuation(c),
                    "{}: entity {surface:?} [{s}, {t}) begins or ends with {c:?}",
                    r["id"]
                );
            }
            n += 1;
        }
    }
    assert!(n >= 100, "only {n} entities in the five seed articles");

    // scored against the hand annotation of the seeds, PER/ORG/LOC
    let o = run(postilla()
        .args(["eval", "--gold", "seeds/gold.jsonl", "--types", "PER,ORG,LOC", "--json", "--pred"])
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("eval JSON");
    let f1 = report["entities"]["strict"]["micro"]["f1"].as_f64().expect("strict micro F1");
    eprintln!("default model on the seed gold: strict micro F1 (PER/ORG/LOC) {f1:.4}");
    assert!(f1 >= 0.75, "strict micro F1 {f1:.4} on the seed gold is under 0.75");
}

#[test]
fn names_glued_to_punctuation_come_out_without_it() {
    default_model_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("glued.jsonl");
    let texts = [
        "MOSCA (AP) Il presidente russo Vladimir Putin, in visita a Pechino, ha incontrato Xi Jinping.",
        "Roma, 12 marzo (ANSA).Il ministro Antonio Tajani ha parlato con la Cina-Russia di commercio.",
        "BERLIN (dpa) Bundeskanzler Olaf Scholz (SPD) traf am Montag in Paris Emmanuel Macron.",
        "Gli scambi di merci Cina-Russia crescono e i legami Russia-Cina pure, disse il ministro a Bologna.",
        "Il presidente russo Vladimir Putin ha parlato con il presidente cinese Xi Jinping in videoconferenza. \
         L’appello Putin-Xi è visto come un segnale all’Occidente.",
    ];
    let documents: Vec<serde_json::Value> =
        texts.iter().enumerate().map(|(i, t)| serde_json::json!({"id": format!("g{i}"), "text": t})).collect();
    common::write_jsonl(&input, &documents);
    let out = dir.path().join("glued.out.jsonl");
    let o = run(postilla().args(["annotate", "--no-topics", "-o"]).arg(&out).arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut surfaces = Vec::new();
    for r in read_jsonl(&out) {
        for e in r["entities"].as_array().expect("entities") {
            let text = e["text"].as_str().expect("text").to_owned();
            assert!(
                !text.starts_with(is_punctuation) && !text.ends_with(is_punctuation),
                "entity {text:?} carries punctuation at an edge"
            );
            surfaces.push((text, e["label"].as_str().expect("label").to_owned()));
        }
    }
    eprintln!("{surfaces:?}");
    for (name, label) in [("Putin", "PER"), ("Olaf Scholz", "PER"), ("Emmanuel Macron", "PER")] {
        assert!(
            surfaces.iter().any(|(s, l)| s.ends_with(name) && l == label),
            "{name} ({label}) not found in {surfaces:?}"
        );
    }
    assert!(surfaces.iter().all(|(s, _)| !s.contains(").") && !s.contains("),")), "{surfaces:?}");
    // two states joined by a hyphen are two places, never one entity (the country-pair rule
    // splits an entity that is exactly the pair; one that runs on past it is left as it is)
    assert!(surfaces.iter().all(|(s, _)| s != "Cina-Russia" && s != "Russia-Cina"), "{surfaces:?}");
    for name in ["Cina", "Russia"] {
        let found = surfaces.iter().filter(|(s, l)| s == name && l == "LOC").count();
        assert!(found >= 2, "{name} (LOC) found {found} times in {surfaces:?}");
    }
    // two people the document names apart, joined by a hyphen, are two people (the
    // person-pair rule); the model alone reads "Putin-Xi" as one person
    assert!(surfaces.iter().all(|(s, _)| s != "Putin-Xi"), "{surfaces:?}");
    for name in ["Putin", "Xi"] {
        assert!(surfaces.iter().any(|(s, l)| s == name && l == "PER"), "{name} (PER) not found in {surfaces:?}");
    }
}

#[test]
fn the_same_text_through_huggingface_words_keeps_glued_punctuation() {
    // the Hugging Face-identical options stay available (and are what the parity tests use)
    default_model_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("one.jsonl");
    std::fs::write(&input, "{\"id\": \"a\", \"text\": \"Ieri Vladimir Putin, presidente russo, ha parlato.\"}\n")
        .expect("write");
    let (ours, hf) = (dir.path().join("ours.jsonl"), dir.path().join("hf.jsonl"));
    for (out, words) in [(&ours, "punctuation"), (&hf, "huggingface")] {
        let (decoding, ends) = if words == "huggingface" { ("greedy", "keep") } else { ("viterbi", "trim") };
        let o = run(postilla()
            .args(["annotate", "--no-topics", "--word-boundaries", words, "--decoding", decoding])
            .args(["--function-words", ends, "-o"])
            .arg(out)
            .arg(&input));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let text_of = |p: &Path| -> Vec<String> {
        read_jsonl(p)[0]["entities"]
            .as_array()
            .expect("entities")
            .iter()
            .map(|e| e["text"].as_str().expect("text").to_owned())
            .collect()
    };
    assert_eq!(read_jsonl(&hf)[0]["provenance"]["params"]["word_boundaries"], "huggingface");
    assert_eq!(read_jsonl(&hf)[0]["provenance"]["params"]["decoding"], "greedy");
    assert_eq!(read_jsonl(&hf)[0]["provenance"]["params"]["function_words"], "keep");
    assert!(text_of(&ours).contains(&"Vladimir Putin".to_owned()), "{:?}", text_of(&ours));
    assert!(text_of(&hf).contains(&"Vladimir Putin,".to_owned()), "{:?}", text_of(&hf));
}

#[test]
fn pre_tokenised_input_is_labelled_on_its_own_tokens() {
    // a gold-style record (tokens joined by spaces, as `postilla import` writes them) whose
    // tokens hold punctuation, and one whose tokens are invalid
    default_model_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let words = [
        "Il",
        "presidente",
        "della",
        "Fiat",
        "S.p.A.",
        ",",
        "Sergio",
        "Marchionne",
        ",",
        "ha",
        "incontrato",
        "a",
        "Baden-Württemberg",
        "il",
        "ministro",
        "Winfried",
        "Kretschmann",
        ".",
    ];
    let text = words.join(" ");
    let mut spans = Vec::new();
    let mut at = 0;
    for w in words {
        let n = w.chars().count();
        spans.push([at, at + n]);
        at += n + 1;
    }
    let input = dir.path().join("tokenised.jsonl");
    common::write_jsonl(
        &input,
        &[
            serde_json::json!({"id": "t", "text": text, "tokens": spans}),
            serde_json::json!({"id": "bad", "text": "Roma", "tokens": [[0, 9]]}),
        ],
    );
    let (ours, rule) = (dir.path().join("tokens.jsonl"), dir.path().join("rule.jsonl"));
    let o = run(postilla().args(["annotate", "--no-topics", "-o"]).arg(&ours).arg(&input));
    assert_eq!(o.status.code(), Some(1), "an error record makes exit 1: {}", stderr(&o));
    let o = run(postilla().args(["annotate", "--no-topics", "--ignore-input-tokens", "-o"]).arg(&rule).arg(&input));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let records = read_jsonl(&ours);
    common::assert_schema_valid(&records);
    assert_eq!(records[1]["error"]["kind"], "invalid_tokens", "{}", records[1]);
    assert_eq!(records[0]["provenance"]["params"]["input_tokens"], true);
    assert_eq!(read_jsonl(&rule)[0]["provenance"]["params"]["input_tokens"], false);
    let entities = records[0]["entities"].as_array().expect("entities");
    let found: Vec<(&str, &str)> =
        entities.iter().map(|e| (e["text"].as_str().expect("text"), e["label"].as_str().expect("label"))).collect();
    eprintln!("{found:?}");
    for e in entities {
        let (s, t) = (e["start"].as_u64().expect("start") as usize, e["end"].as_u64().expect("end") as usize);
        assert!(spans.iter().any(|w| w[0] == s) && spans.iter().any(|w| w[1] == t), "{e} is not on token boundaries");
    }
    for (name, label) in [
        ("Fiat S.p.A.", "ORG"),
        ("Sergio Marchionne", "PER"),
        ("Winfried Kretschmann", "PER"),
        ("Baden-Württemberg", "LOC"),
    ] {
        assert!(found.contains(&(name, label)), "{name} ({label}) not in {found:?}");
    }
    // the punctuation rule, on the same text, trims the token "S.p.A." of its last full stop
    let by_rule: Vec<String> = read_jsonl(&rule)[0]["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| e["text"].as_str().expect("text").to_owned())
        .collect();
    assert!(by_rule.contains(&"Fiat S.p.A".to_owned()), "{by_rule:?}");
}

/// Every regular file of `dir` with its bytes' sha256.
fn hashes(dir: &Path) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            let sha = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect::<String>();
            (p.file_name().expect("name").to_string_lossy().into_owned(), sha)
        })
        .collect()
}

#[test]
fn models_build_twice_gives_identical_directories_equal_to_the_pinned_manifest() {
    let models = common::root().join("models");
    default_model_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp_models = dir.path().join("models");
    std::fs::create_dir_all(&tmp_models).expect("mkdir");
    std::os::unix::fs::symlink(models.join("e5-small"), tmp_models.join("e5-small")).expect("link e5-small");
    for pinned in ["e5-small.manifest.json", "ner-it-de.manifest.json"] {
        std::fs::copy(models.join(pinned), tmp_models.join(pinned)).expect("copy manifest");
    }
    // only what the repository commits: config, trained weights, model card
    let ner = tmp_models.join("ner-it-de");
    std::fs::create_dir_all(&ner).expect("mkdir");
    for e in std::fs::read_dir(models.join("ner-it-de")).expect("read dir") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if name == "config.json" || name == "README.md" || name.starts_with("trained-") {
            std::fs::copy(&p, ner.join(&name)).expect("copy");
        }
    }
    let build = || {
        let o = run(postilla().args(["models", "build", "--models-dir"]).arg(&tmp_models));
        assert!(o.status.success(), "{}", stderr(&o));
        hashes(&ner)
    };
    let first = build();
    for built in ["model.safetensors", "tokenizer.json", "manifest.json"] {
        std::fs::remove_file(ner.join(built)).expect("remove");
    }
    let second = build();
    assert_eq!(first, second, "two builds differ");
    assert!(first.contains_key("model.safetensors") && first.contains_key("manifest.json"));
    // verify checks the directory against the committed manifest, file by file
    let o = run(postilla().args(["models", "verify"]).arg(&ner));
    assert!(o.status.success(), "{}", stderr(&o));
    let pinned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models.join("ner-it-de.manifest.json")).expect("pinned"))
            .expect("pinned JSON");
    for (file, entry) in pinned["files"].as_object().expect("files") {
        assert_eq!(
            first.get(file).map(String::as_str),
            entry["sha256"].as_str(),
            "{file} differs from the pinned manifest"
        );
    }
    // a corrupted trained shard is refused with the file named
    let shard = std::fs::read_dir(&ner)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("trained-")))
        .expect("a trained shard");
    let mut bytes = std::fs::read(&shard).expect("read shard");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&shard, bytes).expect("corrupt");
    let o = run(postilla().args(["models", "verify"]).arg(&ner));
    assert!(!o.status.success(), "a corrupted shard must fail verification");
    assert!(stderr(&o).contains("trained-"), "{}", stderr(&o));
}
