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
//!
//! The linear layers (over 80 % of the time) run on one of two CPU kernels, [`MatmulKernel`]:
//! libtorch's `linear` (MKL's sgemm in the PyPI wheel), or oneDNN, reached through libtorch's
//! `mkldnn_convolution` as a 1×1 convolution over the activations viewed channels-last (the
//! same memory, no copy). MKL 2022 runs its AVX2 "zen" sgemm kernel on AMD processors; oneDNN
//! runs its own AVX-512 code there, and `just bench` on a 2-core AMD EPYC (Zen 4) went from
//! 68–79 s to 60–66 s with the same entities (scores equal to the 6th decimal). `Auto`, the
//! default, picks oneDNN on AMD processors and MKL elsewhere (where MKL already ran near the
//! processor's peak in our measurements).
//!
//! The forward also runs in reduced precision ([`Precision`]: bf16, or int8 linear layers,
//! [`crate::model::int8`]); the layers then hold converted copies of their weights.

use std::collections::HashMap;

use tch::{nn, Kind, Tensor};

use crate::model::attention;
use crate::model::int8::{Int8Linear, QuantizedRows, RowNorm};
use crate::model::precision::Precision;

/// Which forward pass runs BERT-family encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// Postilla's fused forward where it applies (BERT, XLM-R with GELU), with its linear
    /// layers on the given kernel; else rust-bert's.
    Fused(MatmulKernel),
    /// rust-bert's `forward_t` everywhere (the reference; slower).
    RustBert,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::Fused(MatmulKernel::Auto)
    }
}

impl std::str::FromStr for Engine {
    type Err = String;
    /// `fused` (with [`MatmulKernel::Auto`]) or `rust-bert`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fused" => Ok(Engine::default()),
            "rust-bert" => Ok(Engine::RustBert),
            other => Err(format!("unknown engine {other:?} (expected fused or rust-bert)")),
        }
    }
}

/// The kernel that runs the fused forward's linear layers (see the module docs). Both compute
/// the same products in fp32; they differ in the last bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulKernel {
    /// [`MatmulKernel::OneDnn`] on AMD processors, [`MatmulKernel::Blas`] elsewhere and on GPUs.
    #[default]
    Auto,
    /// libtorch's `linear` (MKL's sgemm on CPU, cuBLAS on GPU).
    Blas,
    /// oneDNN, as a 1×1 convolution over the activations viewed channels-last (CPU only).
    OneDnn,
}

crate::names::named_values!(MatmulKernel, "matmul kernel", [Auto => "auto", Blas => "blas", OneDnn => "onednn"]);

impl MatmulKernel {
    /// The kernel actually used on `device` for a processor whose `/proc/cpuinfo` `vendor_id`
    /// is `cpu_vendor`: `Auto` resolved, and BLAS on GPUs whatever was asked.
    ///
    /// ```
    /// use postilla_core::model::encoder::MatmulKernel;
    /// use tch::Device;
    /// assert_eq!(MatmulKernel::Auto.resolve(Device::Cpu, Some("AuthenticAMD")), MatmulKernel::OneDnn);
    /// assert_eq!(MatmulKernel::Auto.resolve(Device::Cpu, Some("GenuineIntel")), MatmulKernel::Blas);
    /// assert_eq!(MatmulKernel::OneDnn.resolve(Device::Cuda(0), None), MatmulKernel::Blas);
    /// ```
    pub fn resolve(self, device: tch::Device, cpu_vendor: Option<&str>) -> MatmulKernel {
        match (self, device) {
            (_, tch::Device::Cuda(_) | tch::Device::Mps | tch::Device::Vulkan) => MatmulKernel::Blas,
            (MatmulKernel::Auto, _) if cpu_vendor == Some("AuthenticAMD") => MatmulKernel::OneDnn,
            (MatmulKernel::Auto, _) => MatmulKernel::Blas,
            (kernel, _) => kernel,
        }
    }

    /// The `vendor_id` of this machine's processor (Linux), e.g. `AuthenticAMD`.
    pub fn cpu_vendor() -> Option<String> {
        let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("vendor_id"))?;
        Some(line.split(':').nth(1)?.trim().to_owned())
    }
}

/// Dropout probabilities of a training forward ([`FusedEncoder::forward_t`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// After the embeddings and the output projections (`hidden_dropout_prob`).
    pub hidden: f64,
    /// On the attention probabilities (`attention_probs_dropout_prob`).
    pub attention: f64,
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

/// A linear layer `x · weightᵀ + bias` in one of the precisions of [`Precision`].
enum Linear {
    /// fp32 or bf16 weight `[out, in]` and bias `[out]` (the kind of the activations).
    Dense { weight: Tensor, bias: Tensor },
    /// fp32 layers applied as one: their weights and biases concatenated at every call, so
    /// that gradients reach each part (training's query/key/value projection).
    Parts { weights: Vec<Tensor>, biases: Vec<Tensor> },
    /// Int8 weights, activations quantized per token (see [`crate::model::int8`]).
    Int8(Int8Linear),
}

impl Linear {
    /// The layer in `precision`, from its fp32 weights.
    fn with_precision(self, precision: Precision) -> Result<Linear, tch::TchError> {
        match (self, precision) {
            (Linear::Dense { weight, bias }, Precision::Bf16) => {
                Ok(Linear::Dense { weight: weight.to_kind(Kind::BFloat16), bias: bias.to_kind(Kind::BFloat16) })
            }
            (Linear::Dense { weight, bias }, Precision::Int8) => {
                Ok(Linear::Int8(Int8Linear::quantize(&weight, &bias)?))
            }
            (layer, _) => Ok(layer),
        }
    }

    /// `x · weightᵀ + bias` computed in bfloat16 from bf16 copies of `x`, the weight and the
    /// bias, as PyTorch's CPU autocast runs `linear` (an int8 layer runs as it is).
    fn apply_autocast_bf16(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        match self {
            Linear::Dense { weight, bias } => linear_autocast_bf16(x, weight, bias),
            Linear::Parts { weights, biases } => {
                linear_autocast_bf16(x, &Tensor::f_cat(weights, 0)?, &Tensor::f_cat(biases, 0)?)
            }
            Linear::Int8(q) => q.apply(x),
        }
    }

    /// `x · weightᵀ + bias` over the last dimension of `x` (`[batch, length, in]`,
    /// contiguous).
    fn apply(&self, x: &Tensor, kernel: MatmulKernel) -> Result<Tensor, tch::TchError> {
        let (weight, bias) = match self {
            Linear::Dense { weight, bias } => (weight, bias),
            Linear::Int8(q) => return q.apply(x),
            Linear::Parts { weights, biases } => {
                return x.f_linear(&Tensor::f_cat(weights, 0)?, Some(&Tensor::f_cat(biases, 0)?))
            }
        };
        // (oneDNN refuses an empty image; `linear` returns the empty result; bf16 goes
        // through `linear`, which libtorch sends to oneDNN's bf16 kernels itself)
        if kernel != MatmulKernel::OneDnn || x.numel() == 0 || x.kind() != Kind::Float {
            return x.f_linear(weight, Some(bias));
        }
        // [rows, in] is the memory of an NHWC image [1, rows, 1, in]; viewed as NCHW
        // [1, in, rows, 1] (channels-last strides) it is what a 1×1 convolution with weight
        // [out, in, 1, 1] maps to [1, out, rows, 1], again channels-last: [rows, out].
        let mut size = x.size();
        let inputs = size[size.len() - 1];
        let outputs = weight.size()[0];
        let rows = x.numel() as i64 / inputs;
        let image = x.reshape([1, rows, 1, inputs]).permute([0, 3, 1, 2]);
        let weight = weight.view([outputs, inputs, 1, 1]);
        let y = image.f_mkldnn_convolution(&weight, Some(bias), [0, 0], [1, 1], [1, 1], 1)?;
        if let Some(last) = size.last_mut() {
            *last = outputs;
        }
        y.permute([0, 2, 3, 1]).f_reshape(size)
    }
}

/// `x · weightᵀ + bias` in bfloat16 on bf16 copies of all three (differentiable casts), as
/// PyTorch's CPU autocast runs `linear`; the result is bf16.
pub fn linear_autocast_bf16(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor, tch::TchError> {
    let bf16 = |t: &Tensor| t.to_kind(Kind::BFloat16);
    bf16(x).f_linear(&bf16(weight), Some(&bf16(bias)))
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    /// In int8: the two layer norms' constants for the fused row passes
    /// ([`Int8Linear::apply_residual_norm`]).
    int8_norms: Option<[RowNorm; 2]>,
}

/// A BERT-family encoder whose forward uses fused kernels (see the module docs).
pub struct FusedEncoder {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    shape: EncoderShape,
    /// Resolved (never `Auto`).
    kernel: MatmulKernel,
    /// The precision of the layers (the embeddings stay fp32).
    precision: Precision,
    /// Training in bf16 autocast: fp32 weights, each linear layer and attention computed in
    /// bfloat16 from bf16 copies made at every call (see [`FusedEncoder::for_training`]).
    autocast_bf16: bool,
}

impl std::fmt::Debug for FusedEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedEncoder")
            .field("shape", &self.shape)
            .field("kernel", &self.kernel)
            .field("precision", &self.precision)
            .finish()
    }
}

impl FusedEncoder {
    /// Builds the encoder over a rust-bert var store whose encoder sits under `prefix` (e.g.
    /// `"bert"`, `"roberta"`, or `""` for a bare `BertModel`), for the model's config.json.
    /// The tensors are shared with the var store, except the concatenated query/key/value
    /// weights. `kernel` is resolved for the var store's device and this processor (it
    /// matters in fp32 only). `Ok(None)` where the fused forward does not apply (see
    /// [`EncoderShape::from_config`]) or a tensor is missing. In bf16 and int8 the layers get
    /// their own converted copies of the weights; whether the processor runs that precision
    /// fast is the caller's check ([`Precision::check_supported`]).
    pub fn from_var_store(
        vs: &nn::VarStore,
        config: &serde_json::Value,
        prefix: &str,
        positions: Positions,
        kernel: MatmulKernel,
        precision: Precision,
    ) -> Result<Option<Self>, tch::TchError> {
        let kernel = kernel.resolve(vs.device(), MatmulKernel::cpu_vendor().as_deref());
        let Some(shape) = EncoderShape::from_config(config, positions) else { return Ok(None) };
        match Self::from_variables(&vs.variables(), prefix, shape, kernel, false) {
            Some(encoder) => encoder.with_precision(precision).map(Some),
            None => Ok(None),
        }
    }

    /// The kernel the linear layers run on (resolved).
    pub fn kernel(&self) -> MatmulKernel {
        self.kernel
    }

    /// The precision of the forward.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The encoder with its layers in `precision` (from fp32).
    fn with_precision(mut self, precision: Precision) -> Result<Self, tch::TchError> {
        if precision == self.precision {
            return Ok(self);
        }
        let _guard = tch::no_grad_guard();
        let norm = |n: LayerNorm| match precision {
            Precision::Bf16 => {
                LayerNorm { weight: n.weight.to_kind(Kind::BFloat16), bias: n.bias.to_kind(Kind::BFloat16) }
            }
            _ => n,
        };
        let eps = self.shape.layer_norm_eps;
        self.layers = std::mem::take(&mut self.layers)
            .into_iter()
            .map(|l| {
                let int8_norms = match precision {
                    Precision::Int8 => Some([
                        RowNorm::new(&l.attention_norm.weight, &l.attention_norm.bias, eps)?,
                        RowNorm::new(&l.output_norm.weight, &l.output_norm.bias, eps)?,
                    ]),
                    _ => None,
                };
                Ok(Layer {
                    int8_norms,
                    qkv: l.qkv.with_precision(precision)?,
                    attention_out: l.attention_out.with_precision(precision)?,
                    attention_norm: norm(l.attention_norm),
                    intermediate: l.intermediate.with_precision(precision)?,
                    output: l.output.with_precision(precision)?,
                    output_norm: norm(l.output_norm),
                })
            })
            .collect::<Result<_, tch::TchError>>()?;
        self.precision = precision;
        Ok(self)
    }

    /// The encoder over a rust-bert var store for training: the same forward, on the var
    /// store's own tensors (the query/key/value weights concatenated at every call, so that
    /// gradients reach them), libtorch's `linear`; dropout through
    /// [`FusedEncoder::forward_t`]. `None` where the fused forward does not apply.
    ///
    /// With `autocast_bf16`, what PyTorch's `torch.autocast("cpu", dtype=torch.bfloat16)` does
    /// to a BERT forward: the weights stay fp32 (the optimiser's master copy) and every linear
    /// layer runs in bfloat16 on bf16 copies of its input, weight and bias (the casts are
    /// differentiable, so the gradients reach the fp32 weights in fp32); attention runs on the
    /// bf16 projections; GELU and dropout keep the bf16 of their input; a residual sum of a
    /// bf16 projection and the fp32 stream is fp32 (type promotion), so the layer norms and
    /// the stream between layers stay fp32.
    pub fn for_training(
        vs: &nn::VarStore,
        config: &serde_json::Value,
        prefix: &str,
        positions: Positions,
        autocast_bf16: bool,
    ) -> Option<Self> {
        let shape = EncoderShape::from_config(config, positions)?;
        let mut encoder = Self::from_variables(&vs.variables(), prefix, shape, MatmulKernel::Blas, true)?;
        encoder.autocast_bf16 = autocast_bf16;
        Some(encoder)
    }

    /// Whether the forward runs in bf16 autocast (training).
    pub fn autocast_bf16(&self) -> bool {
        self.autocast_bf16
    }

    /// The feed-forward block, `down(gelu(up(x)))` (int8 layers run it inside
    /// [`Int8Block::run`]).
    fn feed_forward(&self, layer: &Layer, attended: &Tensor) -> Result<Tensor, tch::TchError> {
        let intermediate = self.linear(&layer.intermediate, attended)?.gelu("none");
        self.linear(&layer.output, &intermediate)
    }

    /// A linear layer of this encoder applied to `x` (in bf16 autocast when training so).
    fn linear(&self, layer: &Linear, x: &Tensor) -> Result<Tensor, tch::TchError> {
        match self.autocast_bf16 {
            true => layer.apply_autocast_bf16(x),
            false => layer.apply(x, self.kernel),
        }
    }

    fn from_variables(
        variables: &HashMap<String, Tensor>,
        prefix: &str,
        shape: EncoderShape,
        kernel: MatmulKernel,
        split_qkv: bool,
    ) -> Option<Self> {
        let name = |n: &str| if prefix.is_empty() { n.to_owned() } else { format!("{prefix}.{n}") };
        let get = |n: &str| variables.get(&name(n)).map(Tensor::shallow_clone);
        let linear =
            |n: &str| Some(Linear::Dense { weight: get(&format!("{n}.weight"))?, bias: get(&format!("{n}.bias"))? });
        let norm = |n: &str| Some(LayerNorm { weight: get(&format!("{n}.weight"))?, bias: get(&format!("{n}.bias"))? });
        let mut layers = Vec::with_capacity(shape.layers as usize);
        for i in 0..shape.layers {
            let p = format!("encoder.layer.{i}");
            let qkv = |part: &str| {
                get(&format!("{p}.attention.self.query.{part}"))
                    .zip(get(&format!("{p}.attention.self.key.{part}")))
                    .zip(get(&format!("{p}.attention.self.value.{part}")))
            };
            let ((qw, kw), vw) = qkv("weight")?;
            let ((qb, kb), vb) = qkv("bias")?;
            let _guard = tch::no_grad_guard();
            let qkv = match split_qkv {
                true => Linear::Parts { weights: vec![qw, kw, vw], biases: vec![qb, kb, vb] },
                false => {
                    Linear::Dense { weight: Tensor::cat(&[&qw, &kw, &vw], 0), bias: Tensor::cat(&[&qb, &kb, &vb], 0) }
                }
            };
            layers.push(Layer {
                qkv,
                attention_out: linear(&format!("{p}.attention.output.dense"))?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"))?,
                output: linear(&format!("{p}.output.dense"))?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
                int8_norms: None,
            });
        }
        Some(FusedEncoder {
            word: get("embeddings.word_embeddings.weight")?,
            position: get("embeddings.position_embeddings.weight")?,
            token_type: get("embeddings.token_type_embeddings.weight")?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            shape,
            kernel,
            precision: Precision::Fp32,
            autocast_bf16: false,
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
        self.forward_t(ids, mask, None)
    }

    /// [`FusedEncoder::forward`], with dropout where BERT applies it when `dropout` is given
    /// (training): after the embeddings, on the attention probabilities, after each
    /// attention and feed-forward output projection.
    pub fn forward_t(&self, ids: &Tensor, mask: &Tensor, dropout: Option<Dropout>) -> Result<Tensor, tch::TchError> {
        let hidden_dropout = |t: Tensor| match dropout {
            Some(d) if d.hidden > 0.0 => t.dropout(d.hidden, true),
            _ => t,
        };
        let attention_dropout = dropout.map_or(0.0, |d| d.attention);
        let size = ids.size();
        let (batch, length) = (size[0], size[1]);
        // (tch passes a missing mask as an undefined tensor, which libtorch 2.4 refuses)
        let attention_mask = mask.eq(1).view([batch, 1, 1, length]);
        // int8 attends window by window over its real tokens (see `crate::model::attention`)
        let lengths = match self.precision {
            Precision::Int8 => Some(window_lengths(mask)?),
            _ => None,
        };
        let mut x = hidden_dropout(self.embed(ids));
        if self.precision == Precision::Bf16 {
            x = x.to_kind(Kind::BFloat16);
        }
        // in int8, the layer input as the previous layer's fused pass quantized it
        let mut quantized_x: Option<QuantizedRows> = None;
        for layer in &self.layers {
            let projections = match (&layer.qkv, quantized_x.take()) {
                (Linear::Int8(qkv), Some(input)) => qkv.apply_quantized(&input)?,
                _ => self.linear(&layer.qkv, &x)?,
            };
            let context = self.attention(&projections, lengths.as_deref(), &attention_mask, attention_dropout)?;
            if let (Some(int8), None) = (Int8Block::of(layer), dropout) {
                let (next, quantized) = int8.run(&context, &x)?;
                x = next;
                quantized_x = Some(quantized);
                continue;
            }
            let projected = hidden_dropout(self.linear(&layer.attention_out, &context)?);
            let attended = self.norm(&(projected + &x), &layer.attention_norm);
            let output = hidden_dropout(self.feed_forward(layer, &attended)?);
            x = self.norm(&(output + &attended), &layer.output_norm);
        }
        Ok(x.to_kind(Kind::Float))
    }

    /// A layer's attention context `[batch, length, hidden]` from its query, key and value
    /// projections side by side (`[batch, length, 3·hidden]`): window by window over each
    /// window's `lengths` real tokens (int8: in Rust where [`attention::available`], else with
    /// libtorch's kernel per window), or over the whole padded batch with its `mask`
    /// (`[batch, 1, 1, length]`, true = token) and attention `dropout`.
    fn attention(
        &self,
        projections: &Tensor,
        lengths: Option<&[i64]>,
        mask: &Tensor,
        dropout: f64,
    ) -> Result<Tensor, tch::TchError> {
        let (hidden, heads) = (self.shape.hidden, self.shape.heads);
        let head_dim = hidden / heads;
        if let Some(lengths) = lengths.filter(|_| attention::available(head_dim)) {
            return attention::attend_windows(projections, lengths, heads);
        }
        let size = projections.size();
        let (batch, length) = (size[0], size[1]);
        let qkv = projections.view([batch, length, 3, heads, head_dim]).permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        match lengths {
            Some(lengths) => attention_per_window(&q, &k, &v, lengths),
            None => Ok(Tensor::f_scaled_dot_product_attention(&q, &k, &v, Some(mask), dropout, false, None::<f64>)?
                .transpose(1, 2)
                .reshape([batch, length, hidden])),
        }
    }
}

/// The part of a layer after attention when all its layers are int8: four row passes
/// around three int8 products, no fp32 tensor operation in between.
struct Int8Block<'a> {
    attention_out: &'a Int8Linear,
    up: &'a Int8Linear,
    down: &'a Int8Linear,
    norms: &'a [RowNorm; 2],
}

impl<'a> Int8Block<'a> {
    /// The block of an int8 layer; `None` in other precisions.
    fn of(layer: &'a Layer) -> Option<Self> {
        match (&layer.attention_out, &layer.intermediate, &layer.output, &layer.int8_norms) {
            (Linear::Int8(attention_out), Linear::Int8(up), Linear::Int8(down), Some(norms)) => {
                Some(Int8Block { attention_out, up, down, norms })
            }
            _ => None,
        }
    }

    /// `attended = norm(context · W_o + x)`, then `norm(down(gelu(up(attended))) + attended)`:
    /// the layer's output, in fp32 and quantized for the next layer's query/key/value product.
    fn run(&self, context: &Tensor, x: &Tensor) -> Result<(Tensor, QuantizedRows), tch::TchError> {
        let [attention_norm, output_norm] = self.norms;
        let (attended, attended_rows) =
            self.attention_out.apply_residual_norm(&QuantizedRows::quantize(context)?, x, attention_norm)?;
        let activations = self.up.apply_gelu_quantized(&attended_rows)?;
        self.down.apply_residual_norm(&activations, &attended, output_norm)
    }
}

/// The number of real tokens of each window of a right-padded batch, from its attention mask
/// `[batch, length]` (1 = token, 0 = padding).
pub fn window_lengths(mask: &Tensor) -> Result<Vec<i64>, tch::TchError> {
    Vec::<i64>::try_from(mask.f_ne(0)?.f_sum_dim_intlist(&[1i64][..], false, Kind::Int64)?)
}

/// Attention computed for each window alone over its `lengths[b]` real tokens (batches are
/// right-padded), from `q`, `k`, `v` `[batch, heads, length, head_dim]`; the context
/// `[batch, length, hidden]`, zero at padding positions (which only ever feed row-wise
/// operations and are never read as keys).
///
/// Used in int8, where it makes the encoder's output for a window independent of the batch
/// it came in: the int8 products are exact and every other step works row by row, but
/// attention over a padded batch sums over the batch's length, whose blocking moves the last
/// bits with the other windows' lengths, and int8 rounding can turn such a bit into a
/// different code (0.04 % of the bench corpus's entity spans changed with the batch size
/// before this). It also skips the padding's work. With libtorch's kernel, for the head sizes
/// that [`attention::attend_windows`] (the faster one, in Rust) does not cover.
fn attention_per_window(q: &Tensor, k: &Tensor, v: &Tensor, lengths: &[i64]) -> Result<Tensor, tch::TchError> {
    let size = q.size();
    let (batch, heads, length, head_dim) = (size[0], size[1], size[2], size[3]);
    let context = Tensor::f_zeros([batch, length, heads * head_dim], (q.kind(), q.device()))?;
    for (b, &n) in lengths.iter().enumerate().filter(|(_, &n)| n > 0) {
        let window = |t: &Tensor| t.f_narrow(0, b as i64, 1)?.f_narrow(2, 0, n);
        // (an all-true mask: tch passes a missing one as an undefined tensor, refused by libtorch 2.4)
        let mask = Tensor::f_ones([1, 1, 1, n], (Kind::Bool, q.device()))?;
        let attended = Tensor::f_scaled_dot_product_attention(
            &window(q)?,
            &window(k)?,
            &window(v)?,
            Some(&mask),
            0.0,
            false,
            None::<f64>,
        )?;
        let rows = attended.f_transpose(1, 2)?.f_reshape([n, heads * head_dim])?;
        context.f_get(b as i64)?.f_narrow(0, 0, n)?.f_copy_(&rows)?;
    }
    Ok(context)
}
