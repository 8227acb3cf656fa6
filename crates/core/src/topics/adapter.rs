//! The topic adapter: a learned low-rank map on the sentence-embedding space that the embedding
//! method applies to documents and descriptions alike before comparing them.
//!
//! ```text
//! adapted(x) = normalise(x + (x U) Vᵀ)        U, V: dim × rank (V = 0 is the identity)
//! ```
//!
//! A topic's prototype becomes the normalised mean of its adapted description embeddings, and a
//! document's cosine is taken between its adapted embedding and those prototypes; calibration
//! and scoring are unchanged. Because the map acts on the embedding space, not on a fixed set of
//! labels, one adapter serves any taxonomy. `training/topic_adapter.py` trains it (cross-entropy
//! against the prototypes, with a penalty on `U Vᵀ` that keeps it near the identity); the
//! shipped one, `models/topic-adapters/e5-small.safetensors`, learned from the SIB-200 train
//! split in Italian and German.
//!
//! Adapted cosines live on another scale than the encoder's own (e5-small's raw cosines between
//! a text and descriptions sit in a narrow band around 0.8; adapted ones spread from about 0 to
//! 0.5), so an adapter carries the scoring defaults that go with it: the softmax temperature it
//! was trained at and a multi-label threshold measured on held-out data ([`AdapterDefaults`]).
//!
//! File: safetensors with float32 tensors `u` and `v` of shape `[dim, rank]` and metadata
//! `schema` = [`TopicAdapter::SCHEMA`], `encoder_sha256` (the weights it was trained on,
//! checked against the encoder it is used with), `temperature` and `threshold`.
//!
//! ```
//! use postilla_core::topics::adapter::{AdapterDefaults, TopicAdapter};
//! // dim 2, rank 1: u = [1, 0], v = [0, 1] maps (1, 0) to normalise((1, 0) + (0, 1))
//! let defaults = AdapterDefaults { temperature: 0.05, threshold: 0.15 };
//! let adapter = TopicAdapter::from_parts(vec![1.0, 0.0], vec![0.0, 1.0], 2, 1, "enc".into(), defaults).unwrap();
//! let y = adapter.apply(&[1.0, 0.0]);
//! assert!((y[0] - 0.5f32.sqrt()).abs() < 1e-6 && (y[1] - 0.5f32.sqrt()).abs() < 1e-6);
//! ```

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use postilla_annotator::hash::sha256_hex;

/// Why an adapter file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The file could not be read.
    #[error("topic adapter {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid adapter.
    #[error("topic adapter {path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong, naming the tensor or metadata key.
        message: String,
    },
    /// The adapter was trained on another encoder, or for another dimension.
    #[error("topic adapter {path} was trained for encoder {expected}, but the topic model is {actual}")]
    EncoderMismatch {
        /// The file.
        path: String,
        /// The encoder it was trained on (sha256 of its weights).
        expected: String,
        /// The encoder in use.
        actual: String,
    },
}

/// The scoring defaults that go with an adapter's cosines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdapterDefaults {
    /// Softmax / sigmoid temperature (the one the adapter was trained at).
    pub temperature: f64,
    /// Multi-label cosine threshold.
    pub threshold: f64,
}

/// A loaded topic adapter (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicAdapter {
    /// dim × rank, row-major
    u: Vec<f32>,
    /// dim × rank, row-major
    v: Vec<f32>,
    dim: usize,
    rank: usize,
    encoder_sha256: String,
    defaults: AdapterDefaults,
    sha256: String,
}

impl TopicAdapter {
    /// The `schema` metadata value of adapter files.
    pub const SCHEMA: &'static str = "postilla-topic-adapter/1";

    /// Builds an adapter from row-major `u` and `v` (each `dim × rank`); `encoder_sha256` names
    /// the encoder weights it belongs to.
    pub fn from_parts(
        u: Vec<f32>,
        v: Vec<f32>,
        dim: usize,
        rank: usize,
        encoder_sha256: String,
        defaults: AdapterDefaults,
    ) -> Result<Self, AdapterError> {
        if u.len() != dim * rank || v.len() != dim * rank {
            return Err(AdapterError::Format {
                path: "(in memory)".into(),
                message: format!("u and v must hold {dim} x {rank} values, got {} and {}", u.len(), v.len()),
            });
        }
        let mut bytes = Vec::with_capacity(8 * dim * rank + encoder_sha256.len());
        for x in u.iter().chain(&v) {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        bytes.extend_from_slice(encoder_sha256.as_bytes());
        bytes.extend_from_slice(&defaults.temperature.to_le_bytes());
        bytes.extend_from_slice(&defaults.threshold.to_le_bytes());
        let sha256 = sha256_hex(&bytes);
        Ok(TopicAdapter { u, v, dim, rank, encoder_sha256, defaults, sha256 })
    }

    /// Reads an adapter file; its sha256 (for provenance) is the file's.
    pub fn read(path: &Path) -> Result<Self, AdapterError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| AdapterError::Io { path: name.clone(), source: e })?;
        Self::from_bytes(&bytes, &name)
    }

    /// Parses the bytes of an adapter file (`origin` names it in errors); its sha256 is the
    /// bytes'.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, AdapterError> {
        let format = |message: String| AdapterError::Format { path: origin.to_owned(), message };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format(format!("not safetensors: {e}")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        match metadata.get("schema").map(String::as_str) {
            Some(Self::SCHEMA) => {}
            other => return Err(format(format!("metadata schema is {other:?}, expected {:?}", Self::SCHEMA))),
        }
        let encoder_sha256 =
            metadata.get("encoder_sha256").cloned().ok_or_else(|| format("metadata has no encoder_sha256".into()))?;
        let number = |key: &str, valid: fn(f64) -> bool, what: &str| -> Result<f64, AdapterError> {
            let text = metadata.get(key).ok_or_else(|| format(format!("metadata has no {key}")))?;
            text.parse::<f64>()
                .ok()
                .filter(|x| valid(*x))
                .ok_or_else(|| format(format!("metadata {key} is {text:?}, expected {what}")))
        };
        let defaults = AdapterDefaults {
            temperature: number("temperature", |t| t.is_finite() && t > 0.0, "a positive number")?,
            threshold: number("threshold", |t| (-1.0..=1.0).contains(&t), "a cosine in [-1, 1]")?,
        };
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| format(format!("not safetensors: {e}")))?;
        let matrix = |key: &str| -> Result<(Vec<f32>, usize, usize), AdapterError> {
            let t = tensors.tensor(key).map_err(|_| format(format!("no tensor {key:?}")))?;
            let [rows, cols] = *t.shape() else {
                return Err(format(format!("tensor {key:?} has shape {:?}, expected [dim, rank]", t.shape())));
            };
            if t.dtype() != Dtype::F32 {
                return Err(format(format!("tensor {key:?} is {:?}, expected F32", t.dtype())));
            }
            let values =
                t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<_>>();
            if let Some(bad) = values.iter().find(|x| !x.is_finite()) {
                return Err(format(format!("tensor {key:?} holds a non-finite value ({bad})")));
            }
            Ok((values, rows, cols))
        };
        let (u, dim, rank) = matrix("u")?;
        let (v, v_dim, v_rank) = matrix("v")?;
        if (v_dim, v_rank) != (dim, rank) {
            return Err(format(format!("u is [{dim}, {rank}] but v is [{v_dim}, {v_rank}]")));
        }
        Ok(TopicAdapter { u, v, dim, rank, encoder_sha256, defaults, sha256: sha256_hex(bytes) })
    }

    /// Checks that the adapter belongs to the encoder with these weights and dimension.
    pub fn check(&self, encoder_sha256: &str, dim: usize, origin: &str) -> Result<(), AdapterError> {
        if self.encoder_sha256 != encoder_sha256 {
            return Err(AdapterError::EncoderMismatch {
                path: origin.into(),
                expected: self.encoder_sha256.clone(),
                actual: encoder_sha256.into(),
            });
        }
        if self.dim != dim {
            return Err(AdapterError::Format {
                path: origin.into(),
                message: format!("adapter dimension {} but the encoder's is {dim}", self.dim),
            });
        }
        Ok(())
    }

    /// `normalise(x + (x U) Vᵀ)`.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut xu = vec![0f32; self.rank];
        for (xi, row) in x.iter().zip(self.u.chunks_exact(self.rank)) {
            for (acc, w) in xu.iter_mut().zip(row) {
                *acc += xi * w;
            }
        }
        let mut y: Vec<f32> = x
            .iter()
            .zip(self.v.chunks_exact(self.rank))
            .map(|(xi, row)| xi + row.iter().zip(&xu).map(|(w, a)| w * a).sum::<f32>())
            .collect();
        let n = y.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        for a in &mut y {
            *a /= n;
        }
        y
    }

    /// The temperature and threshold that go with the adapted cosines.
    pub fn defaults(&self) -> AdapterDefaults {
        self.defaults
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The rank of `U Vᵀ`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// sha256 of the encoder weights the adapter was trained on.
    pub fn encoder_sha256(&self) -> &str {
        &self.encoder_sha256
    }

    /// sha256 of the adapter file (of its values, for one built in memory), for provenance.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// (name, dtype, shape, little-endian bytes) of one tensor
    type Tensor<'a> = (&'a str, Dtype, Vec<usize>, Vec<u8>);
    /// tensors and metadata of one bad file, and a piece of the error it must give
    type BadCase<'a> = (Vec<Tensor<'a>>, Vec<(&'a str, &'a str)>, &'a str);

    fn write(path: &Path, tensors: &[Tensor], metadata: &[(&str, &str)]) {
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(k, d, s, b)| {
                ((*k).to_owned(), safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("view"))
            })
            .collect();
        let meta: HashMap<String, String> = metadata.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        safetensors::serialize_to_file(views, &Some(meta), path).expect("write");
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    const DEFAULTS: AdapterDefaults = AdapterDefaults { temperature: 0.05, threshold: 0.15 };

    #[test]
    fn zero_v_is_the_identity_up_to_normalisation() {
        let a =
            TopicAdapter::from_parts(vec![0.3, -1.0, 2.0], vec![0.0; 3], 3, 1, "e".into(), DEFAULTS).expect("adapter");
        let y = a.apply(&[3.0, 0.0, 4.0]);
        assert!((y[0] - 0.6).abs() < 1e-6 && y[1].abs() < 1e-6 && (y[2] - 0.8).abs() < 1e-6, "{y:?}");
    }

    #[test]
    fn apply_matches_the_formula() {
        // dim 3, rank 2; u and v row-major [dim, rank]
        let u = vec![1.0, 0.0, 0.0, 2.0, 1.0, 1.0];
        let v = vec![0.5, 0.0, 0.0, 0.0, 0.0, -1.0];
        let a = TopicAdapter::from_parts(u, v, 3, 2, "e".into(), DEFAULTS).expect("adapter");
        let x = [1.0f32, 1.0, 0.0];
        // x U = [1, 2]; (x U) Vᵀ = [0.5, 0, -2]; x + that = [1.5, 1, -2]
        let n = (1.5f32 * 1.5 + 1.0 + 4.0).sqrt();
        let y = a.apply(&x);
        for (got, want) in y.iter().zip([1.5 / n, 1.0 / n, -2.0 / n]) {
            assert!((got - want).abs() < 1e-6, "{y:?}");
        }
    }

    #[test]
    fn reads_a_file_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("a.safetensors");
        let u = f32_bytes(&[1.0, 0.0, 0.0, 1.0]);
        let v = f32_bytes(&[0.0, 1.0, 1.0, 0.0]);
        let meta = [
            ("schema", TopicAdapter::SCHEMA),
            ("encoder_sha256", "abc"),
            ("temperature", "0.05"),
            ("threshold", "0.149"),
        ];
        write(&good, &[("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::F32, vec![2, 2], v.clone())], &meta);
        let a = TopicAdapter::read(&good).expect("read");
        assert_eq!((a.dim(), a.rank(), a.encoder_sha256()), (2, 2, "abc"));
        assert_eq!(a.defaults(), AdapterDefaults { temperature: 0.05, threshold: 0.149 });
        assert_eq!(a.sha256(), sha256_hex(&std::fs::read(&good).expect("bytes")));
        assert!(a.check("abc", 2, "a").is_ok());
        assert!(matches!(a.check("other", 2, "a"), Err(AdapterError::EncoderMismatch { .. })));
        assert!(a.check("abc", 384, "a").expect_err("dim").to_string().contains("dimension"));

        let bad = dir.path().join("b.safetensors");
        let cases: Vec<BadCase> = vec![
            (vec![("u", Dtype::F32, vec![2, 2], u.clone())], meta.to_vec(), "no tensor \"v\""),
            (
                vec![("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::F32, vec![4], v.clone())],
                meta.to_vec(),
                "shape [4]",
            ),
            (
                vec![("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::F32, vec![1, 4], v.clone())],
                meta.to_vec(),
                "but v is [1, 4]",
            ),
            (
                vec![("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::I32, vec![2, 2], v.clone())],
                meta.to_vec(),
                "expected F32",
            ),
            (
                vec![
                    ("u", Dtype::F32, vec![2, 2], f32_bytes(&[1.0, f32::NAN, 0.0, 1.0])),
                    ("v", Dtype::F32, vec![2, 2], v.clone()),
                ],
                meta.to_vec(),
                "non-finite",
            ),
            (
                vec![("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::F32, vec![2, 2], v.clone())],
                vec![("encoder_sha256", "abc")],
                "schema",
            ),
            (
                vec![("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::F32, vec![2, 2], v.clone())],
                vec![("schema", TopicAdapter::SCHEMA)],
                "encoder_sha256",
            ),
            (
                vec![("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::F32, vec![2, 2], v.clone())],
                vec![meta[0], meta[1], ("temperature", "0"), meta[3]],
                "metadata temperature is \"0\", expected a positive number",
            ),
            (
                vec![("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::F32, vec![2, 2], v.clone())],
                vec![meta[0], meta[1], meta[2], ("threshold", "high")],
                "metadata threshold is \"high\"",
            ),
            (
                vec![("u", Dtype::F32, vec![2, 2], u.clone()), ("v", Dtype::F32, vec![2, 2], v.clone())],
                vec![meta[0], meta[1], meta[2]],
                "metadata has no threshold",
            ),
        ];
        for (tensors, metadata, expected) in cases {
            write(&bad, &tensors, &metadata);
            let err = TopicAdapter::read(&bad).expect_err(expected).to_string();
            assert!(err.contains(expected) && err.contains("b.safetensors"), "{err} (expected {expected})");
        }
        std::fs::write(&bad, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"u\": 1}").expect("write");
        assert!(TopicAdapter::read(&bad).expect_err("garbage").to_string().contains("not safetensors"));
        let truncated = std::fs::read(&good).expect("bytes");
        std::fs::write(&bad, &truncated[..truncated.len() - 5]).expect("write");
        assert!(TopicAdapter::read(&bad).expect_err("truncated").to_string().contains("not safetensors"));
        assert!(matches!(TopicAdapter::read(&dir.path().join("missing")), Err(AdapterError::Io { .. })));
    }
}
