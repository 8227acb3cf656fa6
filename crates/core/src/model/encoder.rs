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

use std::collections::HashMap;

use tch::{nn, Kind, Tensor};

/// Which forward pass runs BERT-family encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulKernel {
    /// [`MatmulKernel::OneDnn`] on AMD processors, [`MatmulKernel::Blas`] elsewhere and on GPUs.
    #[default]
    Auto,
    /// libtorch's `linear` (MKL's sgemm on CPU, cuBLAS on GPU).
    Blas,
    /// oneDNN, as a 1×1 convolution over the activations viewed channels-last (CPU only).
    OneDnn,
}

impl std::str::FromStr for MatmulKernel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(MatmulKernel::Auto),
            "blas" => Ok(MatmulKernel::Blas),
            "onednn" => Ok(MatmulKernel::OneDnn),
            other => Err(format!("unknown matmul kernel {other:?} (expected auto, blas or onednn)")),
        }
    }
}

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
    /// `[out, in]`.
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `x · weightᵀ + bias` over the last dimension of `x` (contiguous).
    fn apply(&self, x: &Tensor, kernel: MatmulKernel) -> Result<Tensor, tch::TchError> {
        // (oneDNN refuses an empty image; `linear` returns the empty result)
        if kernel != MatmulKernel::OneDnn || x.numel() == 0 {
            return x.f_linear(&self.weight, Some(&self.bias));
        }
        // [rows, in] is the memory of an NHWC image [1, rows, 1, in]; viewed as NCHW
        // [1, in, rows, 1] (channels-last strides) it is what a 1×1 convolution with weight
        // [out, in, 1, 1] maps to [1, out, rows, 1], again channels-last: [rows, out].
        let mut size = x.size();
        let inputs = size[size.len() - 1];
        let outputs = self.weight.size()[0];
        let rows = x.numel() as i64 / inputs;
        let image = x.reshape([1, rows, 1, inputs]).permute([0, 3, 1, 2]);
        let weight = self.weight.view([outputs, inputs, 1, 1]);
        let y = image.f_mkldnn_convolution(&weight, Some(&self.bias), [0, 0], [1, 1], [1, 1], 1)?;
        if let Some(last) = size.last_mut() {
            *last = outputs;
        }
        y.permute([0, 2, 3, 1]).f_reshape(size)
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
    /// Resolved (never `Auto`).
    kernel: MatmulKernel,
}

impl std::fmt::Debug for FusedEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedEncoder").field("shape", &self.shape).field("kernel", &self.kernel).finish()
    }
}

impl FusedEncoder {
    /// Builds the encoder over a rust-bert var store whose encoder sits under `prefix` (e.g.
    /// `"bert"`, `"roberta"`, or `""` for a bare `BertModel`), for the model's config.json.
    /// The tensors are shared with the var store, except the concatenated query/key/value
    /// weights. `kernel` is resolved for the var store's device and this processor. `None`
    /// where the fused forward does not apply (see [`EncoderShape::from_config`]) or a tensor
    /// is missing.
    pub fn from_var_store(
        vs: &nn::VarStore,
        config: &serde_json::Value,
        prefix: &str,
        positions: Positions,
        kernel: MatmulKernel,
    ) -> Option<Self> {
        let kernel = kernel.resolve(vs.device(), MatmulKernel::cpu_vendor().as_deref());
        Self::from_variables(&vs.variables(), prefix, EncoderShape::from_config(config, positions)?, kernel)
    }

    /// The kernel the linear layers run on (resolved).
    pub fn kernel(&self) -> MatmulKernel {
        self.kernel
    }

    fn from_variables(
        variables: &HashMap<String, Tensor>,
        prefix: &str,
        shape: EncoderShape,
        kernel: MatmulKernel,
    ) -> Option<Self> {
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
            kernel,
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
            let qkv =
                layer.qkv.apply(&x, self.kernel)?.view([batch, length, 3, heads, head_dim]).permute([2, 0, 3, 1, 4]);
            let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
            let context =
                Tensor::f_scaled_dot_product_attention(&q, &k, &v, Some(&attention_mask), 0.0, false, None::<f64>)?
                    .transpose(1, 2)
                    .reshape([batch, length, hidden]);
            let attended = self.norm(&(layer.attention_out.apply(&context, self.kernel)? + &x), &layer.attention_norm);
            let intermediate = layer.intermediate.apply(&attended, self.kernel)?.gelu("none");
            x = self.norm(&(layer.output.apply(&intermediate, self.kernel)? + &attended), &layer.output_norm);
        }
        Ok(x)
    }
}
