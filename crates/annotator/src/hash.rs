//! The one sha256 helper of the workspace: lowercase hex digests of bytes (and base64). A leaf module (it
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

/// Standard base64 (RFC 4648, with padding) of `bytes`: what tokenizer.json's
/// `precompiled_charsmap` and a Content-Security-Policy's `sha256-…` sources expect.
///
/// ```
/// use postilla_annotator::hash::base64;
/// for (input, expected) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
///     assert_eq!(base64(input.as_bytes()), expected);
/// }
/// ```
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
