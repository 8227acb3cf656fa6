//! The one sha256 helper of the workspace: lowercase hex digests of bytes. A leaf module (it
//! depends on nothing in Postilla), so that every layer can hash without importing another.

use sha2::{Digest, Sha256};

/// Lowercase hex sha256 of `bytes`.
///
/// ```
/// assert_eq!(postilla_annotator::hash::sha256_hex(b"abc"),
///            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of a digest (or any bytes).
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
