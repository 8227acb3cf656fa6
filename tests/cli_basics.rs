//! The binary's basics: version and help, the seeds are byte-identical to the shared copies,
//! model verification catches corrupt files, pickle weights are refused.

mod common;

use common::{postilla, run, stderr};
use sha2::Digest;

#[test]
fn version_and_help() {
    let o = run(postilla().arg("--version"));
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), format!("postilla {}", env!("CARGO_PKG_VERSION")));
    let o = run(postilla().arg("--help"));
    let help = String::from_utf8_lossy(&o.stdout);
    for cmd in ["annotate", "models"] {
        assert!(help.contains(cmd), "--help lists {cmd}");
    }
}

#[test]
fn version_runs_with_an_empty_library_path() {
    let o = run(postilla().arg("--version").env("LD_LIBRARY_PATH", ""));
    assert!(o.status.success(), "the binary finds libtorch through its rpath: {}", stderr(&o));
}

#[test]
fn seeds_match_their_checksums() {
    let seeds = common::root().join("seeds");
    let sums = std::fs::read_to_string(seeds.join("SHA256SUMS")).expect("SHA256SUMS");
    let mut n = 0;
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(seeds.join(name)).expect("seed file");
        let actual: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(actual, hash, "{name}");
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn models_verify_passes_on_the_built_base_model() {
    let o = run(postilla().args(["models", "verify", "models/e5-small"]));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn models_verify_detects_a_corrupted_or_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("e5-small");
    let src = common::root().join("models/e5-small");
    std::fs::create_dir(&copy).expect("mkdir");
    for f in ["manifest.json", "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
        std::fs::copy(src.join(f), copy.join(f)).expect("copy");
    }
    // weights: a symlink is enough to pass, then a truncated copy must fail
    std::os::unix::fs::symlink(src.join("model.safetensors"), copy.join("model.safetensors")).expect("link");
    let ok = run(postilla().args(["models", "verify"]).arg(&copy));
    assert!(ok.status.success(), "{}", stderr(&ok));

    let mut tok = std::fs::read(copy.join("tokenizer.json")).expect("read");
    tok[100] ^= 1;
    std::fs::write(copy.join("tokenizer.json"), tok).expect("write");
    let bad = run(postilla().args(["models", "verify"]).arg(&copy));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("sha256"), "{}", stderr(&bad));

    std::fs::remove_file(copy.join("config.json")).expect("rm");
    let missing = run(postilla().args(["models", "verify"]).arg(&copy));
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("missing config.json"), "{}", stderr(&missing));
}

#[test]
fn pickle_weights_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("pickled");
    common::copy_dir(&common::tiny_models().join("tiny-bert"), &model);
    std::fs::rename(model.join("model.safetensors"), model.join("pytorch_model.bin")).expect("rename");
    let out = dir.path().join("out.jsonl");
    let o = run(postilla().args(["annotate", "seeds/", "--ner"]).arg(&model).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("pickle"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written that could be mistaken for a result");
}

#[test]
fn seed_gold_matches_the_seeds_and_validates() {
    let gold = common::read_jsonl(&common::root().join("seeds/gold.jsonl"));
    assert_eq!(gold.len(), 5);
    common::assert_schema_valid(&gold);
    for r in &gold {
        let id = r["id"].as_str().expect("id");
        let text = std::fs::read_to_string(common::root().join("seeds").join(format!("{id}.txt"))).expect("seed");
        assert_eq!(r["text"].as_str(), Some(text.as_str()));
        let sha: String = sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(r["text_sha256"].as_str(), Some(sha.as_str()));
        let chars: Vec<char> = text.chars().collect();
        let entities = r["entities"].as_array().expect("entities");
        assert!(entities.len() >= 15, "{id} has only {} gold entities", entities.len());
        for e in entities {
            let (s, t) = (e["start"].as_u64().expect("s") as usize, e["end"].as_u64().expect("e") as usize);
            assert_eq!(chars[s..t].iter().collect::<String>(), e["text"].as_str().expect("text"));
        }
    }
}

#[test]
fn eval_runs_on_the_seeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pred = dir.path().join("pred.jsonl");
    let model = common::tiny_models().join("tiny-bert");
    let o = run(postilla().args(["annotate", "seeds/", "--no-topics", "--ner"]).arg(&model).arg("-o").arg(&pred));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(postilla().args(["eval", "--json", "--gold", "seeds/gold.jsonl", "--pred"]).arg(&pred));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["documents"], 5);
    assert_eq!(v["entities"]["strict"]["possible"].as_u64(), Some(190));
}
