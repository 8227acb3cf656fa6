//! Annotate a directory of .txt files (or a .jsonl file) from research code, without the CLI.
//!
//! ```text
//! cargo run --release -p postilla-core --example annotate_corpus -- MODEL_DIR INPUT OUT.jsonl
//! ```
//!
//! It loads the model once, streams the documents in batches, and writes one postilla/1
//! record per document (error records for unreadable ones), exactly as `postilla annotate`.

use std::path::PathBuf;

use postilla_core::annotate::{Annotator, AnnotatorConfig};
use postilla_core::annotator::input::{flag_duplicates, read_input};
use postilla_core::annotator::jsonl::JsonlWriter;
use postilla_core::ner::NerOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, output] = args.as_slice() else {
        eprintln!("usage: annotate_corpus MODEL_DIR INPUT OUT.jsonl");
        std::process::exit(2);
    };
    let options = NerOptions { batch_size: 32, ..NerOptions::default() };
    let annotator =
        Annotator::new(AnnotatorConfig { ner: Some((PathBuf::from(model), options)), ..Default::default() })?;
    let mut writer = JsonlWriter::create(output.as_ref())?;
    let mut per_label = std::collections::BTreeMap::<String, usize>::new();
    for batch in annotator.records(flag_duplicates(read_input(input)?), 64) {
        for record in &batch {
            for e in &record.entities {
                *per_label.entry(e.label.clone()).or_default() += 1;
            }
            writer.write(record)?;
        }
        writer.flush()?;
    }
    writer.sync()?;
    println!("entities per label: {per_label:?}");
    Ok(())
}
