//! A fused inference forward for BERT-family encoders (BERT and XLM-R), over the weights that
//! rust-bert's modules hold.
//!
//! rust-bert defines the models and owns their weights; Postilla loads them with rust-bert's
//! constructors and runs them either through rust-bert's own `forward_t` (the reference,
//! [`Engine::RustBert`]) or through this forward ([`Engine::Fused`], the default for BERT and
//! XLM-R). Profiling `just bench` showed a quarter of the CPU time outside matrix products in
//! rust-bert's forward: GELU as five element-wise passes (`x * 0.5 * (1 + erf(x / √2))`) over the
//! `[batch, length, 4·hidden]` activations, and attention as scale, mask addition, softmax and
//! a copy over `[batch, heads, length, length]` scores. This forward computes the same
//! function with libtorch's fused kernels:
//!
//! * query, key and value projections as one matrix product (their weights concatenated once);
//! * `scaled_dot_product_attention` (scale, mask, softmax and both products in one kernel);
//! * `gelu` as one kernel (exact erf form, as BERT's `hidden_act = "gelu"`).
//!
//! It is the same computation in another order of floating-point operations: outputs agree
//! with rust-bert's to ~1e-6 (tested in `crates/core/tests/fused_encoder.rs`, and through the
//! pipeline against Hugging Face in `ner_parity.rs`). Architectures or activations it does not
//! cover run through rust-bert.

use std::collections::HashMap;

use tch::{nn, Kind, Tensor};

/// Which forward pass runs BERT-family encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// Postilla's fused forward where it applies (BERT, XLM-R with GELU), else rust-bert's.
    #[default]
    Fused,
    /// rust-bert's `forward_t` everywhere (the reference; slower).
    RustBert,
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fused" => Ok(Engine::Fused),
            "rust-bert" => Ok(Engine::RustBert),
            other => Err(format!("unknown engine {other:?} (expected fused or rust-bert)")),
        }
    }
}

/// How position ids are assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// 0, 1, 2, … (BERT).
    Absolute,
    /// Non-padding tokens count up from `padding_idx + 1`; padding gets `padding_idx`
    /// (RoBERTa / XLM-R).
    AfterPadding(i64),
}

/// The encoder's shape parameters, from config.json.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderShape {
    /// `hidden_size`.
    pub hidden: i64,
    /// `num_attention_heads`.
    pub heads: i64,
    /// `num_hidden_layers`.
    pub layers: i64,
    /// `layer_norm_eps`.
    pub layer_norm_eps: f64,
    /// Position id scheme.
    pub positions: Positions,
}

impl EncoderShape {
    /// Reads the shape from config.json; `None` when the fused forward does not cover the
    /// configuration (an activation other than exact GELU, or missing sizes).
    pub fn from_config(config: &serde_json::Value, positions: Positions) -> Option<Self> {
        if config.get("hidden_act").and_then(|v| v.as_str()).unwrap_or("gelu") != "gelu" {
            return None;
        }
        let int = |key: &str| config.get(key).and_then(|v| v.as_i64());
        Some(EncoderShape {
            hidden: int("hidden_size")?,
            heads: int("num_attention_heads")?,
            layers: int("num_hidden_layers")?,
            layer_norm_eps: config.get("layer_norm_eps").and_then(|v| v.as_f64()).unwrap_or(1e-12),
            positions,
        })
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn apply(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A BERT-family encoder whose forward uses fused kernels (see the module docs).
pub struct FusedEncoder {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    shape: EncoderShape,
}

impl std::fmt::Debug for FusedEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedEncoder").field("shape", &self.shape).finish()
    }
}

impl FusedEncoder {
    /// Builds the encoder over a rust-bert var store whose encoder sits under `prefix` (e.g.
    /// `"bert"`, `"roberta"`, or `""` for a bare `BertModel`), for the model's config.json.
    /// The tensors are shared with the var store, except the concatenated query/key/value
    /// weights. `None` where the fused forward does not apply (see
    /// [`EncoderShape::from_config`]) or a tensor is missing.
    pub fn from_var_store(
        vs: &nn::VarStore,
        config: &serde_json::Value,
        prefix: &str,
        positions: Positions,
    ) -> Option<Self> {
        Self::from_variables(&vs.variables(), prefix, EncoderShape::from_config(config, positions)?)
    }

    fn from_variables(variables: &HashMap<String, Tensor>, prefix: &str, shape: EncoderShape) -> Option<Self> {
        let name = |n: &str| if prefix.is_empty() { n.to_owned() } else { format!("{prefix}.{n}") };
        let get = |n: &str| variables.get(&name(n)).map(Tensor::shallow_clone);
        let linear = |n: &str| Some(Linear { weight: get(&format!("{n}.weight"))?, bias: get(&format!("{n}.bias"))? });
        let norm = |n: &str| Some(LayerNorm { weight: get(&format!("{n}.weight"))?, bias: get(&format!("{n}.bias"))? });
        let mut layers = Vec::with_capacity(shape.layers as usize);
        for i in 0..shape.layers {
            let p = format!("encoder.layer.{i}");
            let (q, k, v) = (
                linear(&format!("{p}.attention.self.query"))?,
                linear(&format!("{p}.attention.self.key"))?,
                linear(&format!("{p}.attention.self.value"))?,
            );
            let _guard = tch::no_grad_guard();
            layers.push(Layer {
                qkv: Linear {
                    weight: Tensor::cat(&[&q.weight, &k.weight, &v.weight], 0),
                    bias: Tensor::cat(&[&q.bias, &k.bias, &v.bias], 0),
                },
                attention_out: linear(&format!("{p}.attention.output.dense"))?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"))?,
                output: linear(&format!("{p}.output.dense"))?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Some(FusedEncoder {
            word: get("embeddings.word_embeddings.weight")?,
            position: get("embeddings.position_embeddings.weight")?,
            token_type: get("embeddings.token_type_embeddings.weight")?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            shape,
        })
    }

    fn norm(&self, x: &Tensor, n: &LayerNorm) -> Tensor {
        x.layer_norm([self.shape.hidden], Some(&n.weight), Some(&n.bias), self.shape.layer_norm_eps, true)
    }

    fn embed(&self, ids: &Tensor) -> Tensor {
        let length = ids.size()[1];
        let positions = match self.shape.positions {
            Positions::Absolute => Tensor::arange(length, (Kind::Int64, ids.device())).unsqueeze(0),
            // as Hugging Face's create_position_ids_from_input_ids: from the ids, not the mask
            Positions::AfterPadding(padding_idx) => {
                let real = ids.ne(padding_idx).to_kind(Kind::Int64);
                real.cumsum(1, Kind::Int64) * &real + padding_idx
            }
        };
        let x = Tensor::embedding(&self.word, ids, -1, false, false)
            + Tensor::embedding(&self.position, &positions, -1, false, false)
            + self.token_type.get(0);
        self.norm(&x, &self.embedding_norm)
    }

    /// Last hidden states `[batch, length, hidden]` for token ids and an attention mask
    /// (1 = token, 0 = padding), both `[batch, length]`. Call under `tch::no_grad_guard`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor, tch::TchError> {
        let size = ids.size();
        let (batch, length) = (size[0], size[1]);
        let (hidden, heads) = (self.shape.hidden, self.shape.heads);
        let head_dim = hidden / heads;
        // (tch passes a missing mask as an undefined tensor, which libtorch 2.4 refuses)
        let attention_mask = mask.eq(1).view([batch, 1, 1, length]);
        let mut x = self.embed(ids);
        for layer in &self.layers {
            let qkv = layer.qkv.apply(&x).view([batch, length, 3, heads, head_dim]).permute([2, 0, 3, 1, 4]);
            let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
            let context =
                Tensor::f_scaled_dot_product_attention(&q, &k, &v, Some(&attention_mask), 0.0, false, None::<f64>)?
                    .transpose(1, 2)
                    .reshape([batch, length, hidden]);
            let attended = self.norm(&(layer.attention_out.apply(&context) + &x), &layer.attention_norm);
            let intermediate = layer.intermediate.apply(&attended).gelu("none");
            x = self.norm(&(layer.output.apply(&intermediate) + &attended), &layer.output_norm);
        }
        Ok(x)
    }
}
