//! `postilla`: a thin command-line layer over postilla-core and postilla-annotator.
//! It parses arguments, wires the libraries together and reports; all the work is in the
//! libraries.

// Argument docs are `--help` texts written for a terminal (e.g. "token<TAB>tag"), not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Annotate multilingual news (Italian and German first) with named entities and topics as
/// stand-off JSONL, and evaluate annotations against gold labels.
///
/// Exit codes: 0 success; 1 the run finished but some documents failed (error records
/// written); 2 bad usage or unusable input/model.
#[derive(Parser, Debug)]
#[command(name = "postilla", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Annotate documents (a directory of .txt, .txt files, JSONL of {"id","text"}, or - for
    /// JSONL on stdin) and write postilla/1 JSONL.
    Annotate(commands::annotate::AnnotateArgs),
    /// Score predictions against gold: entities (strict, exact, partial, type), topics,
    /// bootstrap intervals, paired comparison, error export.
    Eval(commands::eval::EvalArgs),
    /// Import gold data (CoNLL, IOB1, GermEval, KIND, SIB-200, 10kGNAD, XGLUE, brat, doccano)
    /// as postilla/1 JSONL.
    Import(commands::import::ImportArgs),
    /// Export postilla/1 JSONL as brat, doccano, CoNLL or W3C Web Annotation.
    Export(commands::export::ExportArgs),
    /// Join the outputs of a sharded run (--shard K/N) in input order.
    Merge(commands::merge::MergeArgs),
    /// Build, verify and list model directories; pin your own with a manifest.
    Models(commands::models::ModelsArgs),
    /// Write a self-contained HTML report of a run (and of its evaluation with --gold) to
    /// read in a browser, offline.
    Report(commands::report::ReportArgs),
    /// Topic taxonomies: calibrate the embedding method on unlabelled texts of your domain.
    Topics(commands::topics::TopicsArgs),
    /// Fine-tune a model on gold annotations (`train ner`: a token classifier), on CPU.
    Train(commands::train::TrainArgs),
}

/// What a command reports back to `main`.
pub enum Outcome {
    /// Everything succeeded.
    Success,
    /// The run finished but some documents failed.
    PartialFailure,
}

fn main() -> ExitCode {
    postilla_core::runtime::tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Annotate(args) => commands::annotate::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Models(args) => commands::models::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Topics(args) => commands::topics::run(args),
        Command::Train(args) => commands::train::run(args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::PartialFailure) => ExitCode::from(1),
        Err(e) => {
            eprintln!("postilla: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
