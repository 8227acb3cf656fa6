//! Annotate a directory of .txt files (or a .jsonl file) from research code, without the CLI.
//!
//! ```text
//! cargo run --release -p postilla-core --example annotate_corpus -- MODEL_DIR INPUT OUT.jsonl [--resume]
//! ```
//!
//! It loads the model once and hands the run to the library ([`postilla_core::run::run`]),
//! exactly as `postilla annotate` does: one postilla/1 record per document (error records
//! for unreadable ones), `OUT.partial` renamed at the end, `--resume` continuing a killed run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use postilla_core::annotate::{Annotator, AnnotatorConfig};
use postilla_core::ner::NerOptions;
use postilla_core::run::{run, RunEvent, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (resume, args): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| *a == "--resume");
    let [model, input, output] = args.as_slice() else {
        eprintln!("usage: annotate_corpus MODEL_DIR INPUT OUT.jsonl [--resume]");
        std::process::exit(2);
    };
    let options = NerOptions { batch_size: 32, ..NerOptions::default() };
    let mut annotator =
        Annotator::new(AnnotatorConfig { ner: Some((PathBuf::from(model), options)), ..Default::default() })?;
    let run_options =
        RunOptions { resume: !resume.is_empty(), ..RunOptions::new(vec![input.to_string()], PathBuf::from(output)) };
    let mut per_label = BTreeMap::<String, usize>::new();
    let summary = run(&mut annotator, &run_options, &mut |event| {
        if let RunEvent::Batch { records } = event {
            for e in records.iter().flat_map(|r| &r.entities) {
                *per_label.entry(e.label.clone()).or_default() += 1;
            }
        }
    })?;
    println!("{} documents in {:.1} s; entities per label: {per_label:?}", summary.documents, summary.seconds);
    Ok(())
}
