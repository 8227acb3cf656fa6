//! The numeric precision of the fused encoder's forward pass ([`crate::model::encoder`]).
//!
//! * [`Precision::Fp32`]: every weight and activation in fp32 (the reference).
//! * [`Precision::Bf16`]: weights and activations in bfloat16; libtorch's CPU layer norm,
//!   softmax (inside `scaled_dot_product_attention`) and oneDNN's bf16 matrix products
//!   accumulate in fp32. The word, position and token-type embeddings stay fp32 (a lookup
//!   costs nothing) and the encoder's output returns to fp32 for the classifier. Fast only on
//!   processors with bf16 instructions (AVX512-BF16 or AMX-BF16); elsewhere oneDNN emulates
//!   it, several times slower than fp32, so [`Precision::check_supported`] refuses it there.
//! * [`Precision::Int8`]: dynamic quantization of every linear layer of the encoder
//!   ([`crate::model::int8`]): weights quantized once per output channel (symmetric, 8-bit),
//!   activations quantized per token from that token's own range (asymmetric, 8-bit), products
//!   in int8 with exact int32 sums (libtorch's `_int_mm`, oneDNN), GELU fused between the
//!   feed-forward projections, and attention (and the NER head) computed window by window over
//!   its real tokens.
//!   A window's output is then bit-for-bit the same whatever batch it comes in, so resumed and
//!   sharded runs reproduce a single run. Embeddings, layer norm, attention and the classifier
//!   head stay fp32. CPU only (x86 with AVX2).
//! * [`Precision::Auto`] (the NER default): the fastest precision whose dev F1 was measured
//!   within 0.2 points of fp32 on KIND WN dev and CoNLL-2003 German dev for this kind of
//!   processor (README, "Precision"): int8 on processors with VNNI instructions (`avx512_vnni`
//!   or `avx_vnni`, which oneDNN's int8 products run on: on an Intel Xeon 2.1x fp32's speed,
//!   dev F1 −0.03 / ±0.00 with the shipped model), fp32 everywhere else (without VNNI int8's
//!   speed was not measured; bf16, within the rule, ran slower than fp32 on the Intel Xeon
//!   and slower than int8 on an AMD Zen 4; nothing was measured on GPUs).
//!   [`Precision::resolve`] turns it into one of the three; a model or forward that runs fp32
//!   only gets fp32. fp32 stays the reference every model card figure is measured in, and
//!   [`Precision::default`] (the topic encoder's default) is fp32.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// The precision of the fused forward (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// fp32 weights and activations.
    #[default]
    Fp32,
    /// bfloat16 weights and activations, fp32 accumulation.
    Bf16,
    /// int8 linear layers (per-channel weights, per-token activations), fp32 elsewhere.
    Int8,
    /// The fastest measured precision for this processor (see the module docs), resolved
    /// when a model is loaded ([`Precision::resolve`]).
    Auto,
}

impl Precision {
    /// The precision that runs for this choice on `device` with a processor whose
    /// `/proc/cpuinfo` `flags` line is `cpu_flags`: [`Precision::Auto`] becomes int8 on CPUs
    /// with VNNI instructions (`avx512_vnni` or `avx_vnni`: int8 measured fastest and within
    /// the rule) and fp32 elsewhere (GPUs included); the others stay as they are.
    ///
    /// ```
    /// use postilla_core::model::Precision;
    /// use tch::Device;
    /// let zen4 = "avx2 avx512f avx512_vnni avx512_bf16";
    /// assert_eq!(Precision::Auto.resolve(Device::Cpu, zen4), Precision::Int8);
    /// assert_eq!(Precision::Auto.resolve(Device::Cpu, "avx2 fma avx_vnni"), Precision::Int8);
    /// assert_eq!(Precision::Auto.resolve(Device::Cpu, "avx2 fma"), Precision::Fp32);
    /// assert_eq!(Precision::Auto.resolve(Device::Cuda(0), zen4), Precision::Fp32);
    /// assert_eq!(Precision::Bf16.resolve(Device::Cpu, "avx2"), Precision::Bf16);
    /// ```
    pub fn resolve(self, device: tch::Device, cpu_flags: &str) -> Precision {
        let has = |flag: &str| cpu_flags.split_whitespace().any(|f| f == flag);
        match (self, device) {
            (Precision::Auto, tch::Device::Cpu) if has("avx2") && (has("avx512_vnni") || has("avx_vnni")) => {
                Precision::Int8
            }
            (Precision::Auto, _) => Precision::Fp32,
            (precision, _) => precision,
        }
    }

    /// Whether this precision runs (natively, so that it is worth running) on `device` with a
    /// processor whose `/proc/cpuinfo` `flags` line is `cpu_flags`; `Err` says why not.
    ///
    /// ```
    /// use postilla_core::model::Precision;
    /// use tch::Device;
    /// assert!(Precision::Fp32.check_supported(Device::Cpu, "avx2").is_ok());
    /// assert!(Precision::Int8.check_supported(Device::Cpu, "avx2 fma").is_ok());
    /// assert!(Precision::Bf16.check_supported(Device::Cpu, "avx2 avx512f avx512_bf16").is_ok());
    /// assert!(Precision::Bf16.check_supported(Device::Cpu, "avx2 avx512f").is_err());
    /// assert!(Precision::Int8.check_supported(Device::Cuda(0), "").is_err());
    /// ```
    pub fn check_supported(self, device: tch::Device, cpu_flags: &str) -> Result<(), ModelError> {
        self.why_unsupported(device, cpu_flags)
            .map_or(Ok(()), |reason| Err(ModelError::UnsupportedPrecision { precision: self.as_str().into(), reason }))
    }

    /// Why this precision cannot run on `device` with `cpu_flags`; `None` when it can.
    fn why_unsupported(self, device: tch::Device, cpu_flags: &str) -> Option<String> {
        let has = |flag: &str| cpu_flags.split_whitespace().any(|f| f == flag);
        let reason: Result<(), String> = match (self, device) {
            (Precision::Fp32 | Precision::Auto, _) => Ok(()),
            (Precision::Bf16, tch::Device::Cpu) if has("avx512_bf16") || has("amx_bf16") => Ok(()),
            (Precision::Bf16, tch::Device::Cpu) => {
                Err("this processor has no bf16 instructions (avx512_bf16 or amx_bf16 in /proc/cpuinfo); \
                 oneDNN would emulate bf16 several times slower than fp32: use --precision fp32 or int8"
                    .into())
            }
            (Precision::Bf16, _) => Ok(()),
            (Precision::Int8, tch::Device::Cpu) if has("avx2") => Ok(()),
            (Precision::Int8, tch::Device::Cpu) => {
                Err("int8 runs on oneDNN's integer kernels, which need a processor with AVX2 (avx2 in /proc/cpuinfo)"
                    .into())
            }
            (Precision::Int8, _) => Err("int8 runs on the CPU only: use --precision bf16 on a GPU".into()),
        };
        reason.err()
    }

    /// The `flags` line of this machine's `/proc/cpuinfo` (empty where there is none).
    pub fn cpu_flags() -> String {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                let line = info.lines().find(|l| l.starts_with("flags"))?;
                Some(line.split(':').nth(1)?.trim().to_owned())
            })
            .unwrap_or_default()
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::names::named_values!(Precision, "precision", [Auto => "auto", Fp32 => "fp32", Bf16 => "bf16", Int8 => "int8"]);
