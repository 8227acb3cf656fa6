//! Property tests: the JSONL, CoNLL/KIND/GermEval, brat and doccano readers and the input
//! reader turn arbitrary bytes into records or errors, never a panic.

use std::io::Write;

use postilla_annotator::formats::conll::{import_file, ConllOptions, TokenFormat};
use postilla_annotator::formats::{brat, doccano, ImportStats, LabelMap};
use postilla_annotator::input::read_input;
use postilla_annotator::jsonl::parse_records;
use proptest::prelude::*;

/// Bytes that look a little like the formats (so parsers get past their first check) mixed
/// with arbitrary bytes.
fn inputs() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"Roma\tB-LOC\n".to_vec()),
        Just(b"1\tMerkel\tB-PER\tO\n".to_vec()),
        Just(b"-DOCSTART- O\n\n".to_vec()),
        Just(b"# id = x\n".to_vec()),
        Just(b"T1\tPER 0 4\tAnna\n".to_vec()),
        Just(b"{\"id\":\"a\",\"text\":\"Roma\",\"label\":[[0,4,\"LOC\"]]}\n".to_vec()),
        Just(b"{\"schema\":\"postilla/1\",\"id\":\"a\",\"entities\":[]}\n".to_vec()),
        Just("è\t\u{feff}“”😀\r\n".as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).and_then(|mut f| f.write_all(bytes)).expect("write");
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn no_reader_panics(bytes in inputs(), txt in inputs()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = parse_records(&bytes[..], std::path::Path::new("x.jsonl"));
        let tsv = write(dir.path(), "x.tsv", &bytes);
        for f in [TokenFormat::Conll, TokenFormat::Iob1, TokenFormat::Kind, TokenFormat::Germeval] {
            let _ = import_file(&tsv, f, &ConllOptions::default(), &mut ImportStats::default());
        }
        let jl = write(dir.path(), "d.jsonl", &bytes);
        let _ = doccano::import_file(&jl, &LabelMap::default(), &mut ImportStats::default());
        if let Ok(items) = read_input(jl.to_str().expect("path")) {
            for _ in items {}
        }
        write(dir.path(), "b.txt", &txt);
        let ann = write(dir.path(), "b.ann", &bytes);
        let _ = brat::import_pair(&ann, &LabelMap::default(), &mut ImportStats::default());
    }
}
