//! Int8 linear layers for [`Precision::Int8`](crate::model::Precision::Int8): per-channel int8
//! weights, activations quantized per token, products in integers.
//!
//! A layer `y = x · wᵀ + b` is computed as
//!
//! 1. each weight row (output channel) `o` scaled to `[-127, 127]` once, when the model loads:
//!    `q_w[o] = round(w[o] / s_w[o])`, `s_w[o] = max |w[o]| / 127` (`[-63, 63]` on processors
//!    whose int8 kernel would saturate with 8-bit weights: `weight_limit`);
//! 2. each activation row (one token) mapped onto all 256 int8 values at every call, from its
//!    own minimum (to −128) to its own maximum (to 127), zero exactly representable:
//!    `x[t] ≈ s_x[t] · (q_x[t] − z[t])` (`quantize_rows`);
//! 3. `q_x · q_wᵀ` in int8 with exact int32 sums: libtorch's `_int_mm` (oneDNN's s8s8s32
//!    product, VNNI's `vpdpbusd` on processors that have it);
//! 4. `y[t][o] = (acc[t][o] − z[t] · Σₖ q_w[o][k]) · s_x[t] · s_w[o] + b[o]` in fp32, written
//!    over the int32 sums in place (`dequantize_rows`).
//!
//! Each token's result depends on that token's activations alone: no range is shared with the
//! other tokens, windows or documents of a batch, and integer sums have no rounding order, so
//! the quantized products give the same numbers whatever the batch. (The encoder also attends
//! window by window in int8, so that nothing else depends on the batch either: see
//! `model::attention`.) Every linear layer runs in int8, the feed-forward down
//! projection included: with per-token ranges its GELU inputs, the longest-tailed ones, no
//! longer cost more than the others.
//!
//! Steps 2 and 4 are one pass each over the rows, in Rust, compiled for the processor's widest
//! vector instructions and split across libtorch's own OpenMP threads
//! ([`crate::runtime::parallel_parts`]): written as libtorch tensor operations they took six
//! passes over the activations and cost more than the products saved. Where a layer's output
//! only feeds row-wise steps, these join step 4's pass and the next layer's step 2:
//!
//! * the feed-forward up projection: its int32 sums through GELU to the down projection's
//!   int8 input (`Int8Linear::apply_gelu_quantized`);
//! * the two output projections of an encoder layer: the int32 sums, plus the residual
//!   stream, through the layer norm to the fp32 stream and the next product's int8 input
//!   (`Int8Linear::apply_residual_norm`; it replaced a libtorch addition and layer norm and a
//!   quantization pass, each over the whole activations). Accuracy against fp32: README,
//!   *Precision*.

use std::sync::{Mutex, OnceLock};

use tch::{Kind, Tensor};

use crate::model::simd::{exp_non_positive, rounded_integer};
use crate::runtime::parallel_parts;

/// The largest magnitude of a quantized weight where `_int_mm`'s products are exact over the
/// whole int8 range (symmetric int8; −128 is never used).
const INT8_MAX: f32 = 127.0;

/// The largest magnitude of a quantized weight where they are not: 7-bit weights.
const INT7_MAX: f32 = 63.0;

/// The largest magnitude of a quantized weight on this processor. oneDNN's int8 products
/// shift the activations by 128 to unsigned bytes; with VNNI (`vpdpbusd`) they add the
/// products in 32 bits, exact, but without it (AVX2 or AVX-512 alone: `vpmaddubsw`) they add
/// pairs of products in 16 bits, which saturate: 2 · 255 · 127 does not fit in an `i16`,
/// 2 · 255 · 63 does. So the weights take 7 bits where a probe of the worst case on the kernel
/// that runs is not exact (measured on an AVX2 AMD EPYC: errors of 17 % of the output's
/// magnitude with 8-bit weights, exact sums with 7-bit ones), and all 8 elsewhere. Probed once
/// per process.
pub(crate) fn weight_limit() -> f32 {
    static LIMIT: OnceLock<f32> = OnceLock::new();
    *LIMIT.get_or_init(|| if full_range_products_are_exact() { INT8_MAX } else { INT7_MAX })
}

/// Whether `_int_mm` sums the worst case of 16-bit pair sums exactly: rows of 127 and of −128
/// against columns of 127 and of −127.
fn full_range_products_are_exact() -> bool {
    const SIDE: i64 = 32;
    const DEPTH: i64 = 128;
    let row = |k: i64, high: i8, low: i8| if k % 2 == 0 { high } else { low };
    let a: Vec<i8> = (0..SIDE * DEPTH).map(|i| row(i / DEPTH, 127, -128)).collect();
    let b: Vec<i8> = (0..DEPTH * SIDE).map(|i| row(i % SIDE, 127, -127)).collect();
    let product = Tensor::f_from_slice(&a)
        .and_then(|a| a.f_view([SIDE, DEPTH]))
        .and_then(|a| {
            Tensor::f_from_slice(&b).and_then(|b| b.f_view([DEPTH, SIDE])).and_then(|b| a.f_internal_int_mm(&b))
        })
        .and_then(|sums| Vec::<i32>::try_from(&sums.f_contiguous()?.f_view([-1])?));
    let Ok(sums) = product else { return false };
    sums.len() == (SIDE * SIDE) as usize
        && sums.iter().enumerate().all(|(i, &sum)| {
            let (r, c) = (i as i64 / SIDE, i as i64 % SIDE);
            let expected = i32::from(row(r, 127, -128)) * i32::from(row(c, 127, -127)) * DEPTH as i32;
            sum == expected
        })
}

/// Below this many elements, row work runs on the calling thread alone.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// An int8 linear layer (see the module docs).
pub(crate) struct Int8Linear {
    /// `[in, out]` int8: the quantized weight, transposed for `_int_mm`.
    weight_t: Tensor,
    /// `[out]` per-channel weight scales `s_w`.
    scales: Vec<f32>,
    /// `[out]` sums of each quantized weight row.
    weight_sums: Vec<i32>,
    /// `[out]` fp32 bias.
    bias: Vec<f32>,
    /// Input features.
    inputs: usize,
}

impl Int8Linear {
    /// Quantizes an fp32 (or bf16) linear layer `weight` `[out, in]`, `bias` `[out]`.
    pub(crate) fn quantize(weight: &Tensor, bias: &Tensor) -> Result<Self, tch::TchError> {
        let weight = weight.f_to_kind(Kind::Float)?;
        let size = weight.size();
        let inputs = usize::try_from(size[1]).unwrap_or(0);
        let limit = f64::from(weight_limit());
        let scales = weight.f_abs()?.f_amax([1], false)?.f_clamp_min(1e-12)? / limit;
        let quantized = (&weight / scales.unsqueeze(1)).f_round()?.f_clamp(-limit, limit)?.f_to_kind(Kind::Int8)?;
        Ok(Int8Linear {
            weight_sums: Vec::<i32>::try_from(&quantized.f_sum_dim_intlist(&[1i64][..], false, Kind::Int)?)?,
            weight_t: quantized.f_transpose(0, 1)?.f_contiguous()?,
            scales: Vec::<f32>::try_from(&scales)?,
            bias: Vec::<f32>::try_from(&bias.f_to_kind(Kind::Float)?)?,
            inputs,
        })
    }

    /// `x · wᵀ + b` over the last dimension of `x` (`[…, in]`, fp32), quantizing each row
    /// (token) separately; the result is fp32 `[…, out]`.
    pub(crate) fn apply(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        self.apply_quantized(&QuantizedRows::quantize(x)?)
    }

    /// [`Int8Linear::apply`] on activations already quantized.
    pub(crate) fn apply_quantized(&self, input: &QuantizedRows) -> Result<Tensor, tch::TchError> {
        let (sums, size) = self.sums(input)?;
        if input.rows.is_empty() {
            return Tensor::f_zeros(&size, (Kind::Float, tch::Device::Cpu));
        }
        {
            // SAFETY: `sums` is a fresh contiguous int32 CPU tensor of rows·outputs elements
            // (checked by `sums`), owned here and used by nothing else while the slice lives.
            let values = unsafe { std::slice::from_raw_parts_mut(sums.data_ptr().cast::<i32>(), sums.numel()) };
            dequantize_rows(values, &input.rows, &self.columns());
        }
        sums.f_view_dtype(Kind::Float)?.f_reshape(&size)
    }

    /// `gelu(x · wᵀ + b)` (exact erf form), returned quantized per row for the next int8
    /// layer: one pass from the int32 sums to int8, the fp32 activations never written out
    /// (the feed-forward block's up projection, whose output only feeds the down projection).
    pub(crate) fn apply_gelu_quantized(&self, input: &QuantizedRows) -> Result<QuantizedRows, tch::TchError> {
        let (sums, size) = self.sums(input)?;
        let width = self.bias.len();
        let values = Tensor::f_empty([input.rows.len() as i64, width as i64], (Kind::Int8, tch::Device::Cpu))?;
        let mut rows = vec![RowQuantization::default(); input.rows.len()];
        if !rows.is_empty() {
            // SAFETY: `sums` is a contiguous int32 CPU tensor of rows·width elements (checked
            // by `sums`) and `values` a fresh contiguous int8 tensor of as many; distinct
            // allocations that outlive the slices and that nothing else uses meanwhile.
            let (sums, output) = unsafe {
                (
                    std::slice::from_raw_parts(sums.data_ptr().cast::<i32>().cast_const(), sums.numel()),
                    std::slice::from_raw_parts_mut(values.data_ptr().cast::<i8>(), sums.numel()),
                )
            };
            dequantize_gelu_quantize_rows(sums, &input.rows, &self.columns(), output, &mut rows);
        }
        Ok(QuantizedRows { values, rows, size })
    }

    /// `layer_norm(x · wᵀ + b + residual)`, in fp32 and quantized per row (for the next int8
    /// layer), in one pass from the int32 sums: the encoder's output projections, whose result
    /// is added to the residual stream and normalized (`residual` is fp32, of the output's
    /// size).
    pub(crate) fn apply_residual_norm(
        &self,
        input: &QuantizedRows,
        residual: &Tensor,
        norm: &RowNorm,
    ) -> Result<(Tensor, QuantizedRows), tch::TchError> {
        let (sums, size) = self.sums(input)?;
        let width = self.bias.len();
        let residual = residual.f_to_kind(Kind::Float)?.f_contiguous()?;
        if residual.size() != size || residual.device() != tch::Device::Cpu || norm.weight.len() != width {
            return Err(tch::TchError::Shape(format!(
                "residual {:?} and norm of {} for an int8 layer's output {size:?}",
                residual.size(),
                norm.weight.len()
            )));
        }
        let values = Tensor::f_empty([input.rows.len() as i64, width as i64], (Kind::Int8, tch::Device::Cpu))?;
        let mut rows = vec![RowQuantization::default(); input.rows.len()];
        if !rows.is_empty() {
            // SAFETY: `sums` is a contiguous int32 CPU tensor of rows·width elements (checked
            // by `sums`), `residual` a contiguous fp32 CPU tensor of as many (checked above),
            // `values` a fresh contiguous int8 tensor of as many; three distinct allocations
            // that outlive the slices and that nothing else uses meanwhile.
            let (sums, residual, output) = unsafe {
                (
                    std::slice::from_raw_parts_mut(sums.data_ptr().cast::<i32>(), sums.numel()),
                    std::slice::from_raw_parts(residual.data_ptr().cast::<f32>().cast_const(), sums.numel()),
                    std::slice::from_raw_parts_mut(values.data_ptr().cast::<i8>(), sums.numel()),
                )
            };
            dequantize_residual_norm_quantize_rows(
                sums,
                &input.rows,
                &self.columns(),
                residual,
                norm,
                output,
                &mut rows,
            );
        }
        Ok((sums.f_view_dtype(Kind::Float)?.f_reshape(&size)?, QuantizedRows { values, rows, size }))
    }

    /// The per-channel constants of [`dequantize_rows`].
    fn columns(&self) -> Columns<'_> {
        Columns { scales: &self.scales, weight_sums: &self.weight_sums, bias: &self.bias }
    }

    /// The int32 products `q_x · q_wᵀ` `[rows, out]` (contiguous, checked), and the size of
    /// the layer's output.
    fn sums(&self, input: &QuantizedRows) -> Result<(Tensor, Vec<i64>), tch::TchError> {
        let outputs = self.bias.len();
        let mut size = input.size.clone();
        if size.last().copied() != Some(self.inputs as i64) {
            return Err(tch::TchError::Shape(format!(
                "int8 linear layer over {} inputs applied to {:?}",
                self.inputs, input.size
            )));
        }
        if let Some(last) = size.last_mut() {
            *last = outputs as i64;
        }
        if input.rows.is_empty() {
            return Ok((Tensor::f_empty([0, outputs as i64], (Kind::Int, tch::Device::Cpu))?, size));
        }
        let sums = input.values.f_internal_int_mm(&self.weight_t)?;
        if sums.kind() != Kind::Int || !sums.is_contiguous() || sums.numel() != input.rows.len() * outputs {
            return Err(tch::TchError::Kind(format!("_int_mm returned {:?} {:?}", sums.kind(), sums.size())));
        }
        Ok((sums, size))
    }
}

/// Activations quantized per row (token), the input of an [`Int8Linear`].
pub(crate) struct QuantizedRows {
    /// `[rows, width]` int8.
    values: Tensor,
    /// Each row's scale and zero point.
    rows: Vec<RowQuantization>,
    /// The size of the fp32 activations (`[…, width]`).
    size: Vec<i64>,
}

impl QuantizedRows {
    /// Quantizes each row of `x` (`[…, width]`, CPU) to its own range ([`quantize_rows`]).
    pub(crate) fn quantize(x: &Tensor) -> Result<Self, tch::TchError> {
        if x.device() != tch::Device::Cpu {
            return Err(tch::TchError::Kind("int8 linear layers run on the CPU only".into()));
        }
        let size = x.size();
        let width = size.last().copied().unwrap_or(0).max(0) as usize;
        let x = x.f_to_kind(Kind::Float)?.f_contiguous()?;
        let count = x.numel().checked_div(width).unwrap_or(0);
        let values = Tensor::f_empty([count as i64, width as i64], (Kind::Int8, tch::Device::Cpu))?;
        let mut rows = vec![RowQuantization::default(); count];
        if count > 0 {
            // SAFETY: `x` is a contiguous fp32 CPU tensor of count·width elements and `values`
            // a fresh contiguous int8 tensor of as many; they are distinct allocations, both
            // outlive the slices, and nothing else uses them meanwhile.
            let (input, output) = unsafe {
                (
                    std::slice::from_raw_parts(x.data_ptr().cast::<f32>().cast_const(), count * width),
                    std::slice::from_raw_parts_mut(values.data_ptr().cast::<i8>(), count * width),
                )
            };
            quantize_rows(input, width, output, &mut rows);
        }
        Ok(QuantizedRows { values, rows, size })
    }
}

/// How many rows go into each part when `rows` rows of `elements` values in all are split
/// across libtorch's threads (all of them in one part for small inputs; at least one row).
fn rows_per_part(rows: usize, elements: usize) -> usize {
    let parts = match elements < PARALLEL_MIN_ELEMENTS {
        true => 1,
        false => usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1),
    };
    rows.div_ceil(parts).max(1)
}

/// Runs `work` on each of `parts` (row-aligned slices of the buffers a row pass reads and
/// writes), in parallel on libtorch's threads ([`parallel_parts`]).
fn run_parts<P: Send>(parts: impl Iterator<Item = P>, work: impl Fn(P) + Sync) {
    // each part is taken out of its slot by the one thread that runs it
    let slots: Vec<Mutex<Option<P>>> = parts.map(|part| Mutex::new(Some(part))).collect();
    parallel_parts(slots.len(), &|index| {
        if let Some(part) = slots[index].lock().ok().and_then(|mut slot| slot.take()) {
            work(part);
        }
    });
}

/// How one row of activations was quantized: `x ≈ scale · (q − zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct RowQuantization {
    /// The step between two quantized values.
    pub(crate) scale: f32,
    /// The int8 value that stands for 0.0.
    pub(crate) zero_point: i32,
}

/// Quantizes each row of `input` (`width` values per row) to int8 into `output`, over the
/// row's own range widened to include 0 (asymmetric: all 256 values are used, so a row of GELU
/// outputs, mostly positive, keeps twice the resolution a symmetric scale gives it), and
/// writes each row's [`RowQuantization`] to `rows` (scale 0 for an all-zero row).
pub(crate) fn quantize_rows(input: &[f32], width: usize, output: &mut [i8], rows: &mut [RowQuantization]) {
    let rows_per_part = rows_per_part(rows.len(), input.len());
    let parts = input
        .chunks(rows_per_part * width)
        .zip(output.chunks_mut(rows_per_part * width))
        .zip(rows.chunks_mut(rows_per_part));
    run_parts(parts, |((input, output), rows)| simd::quantize(input, width, output, rows));
}

/// [`dequantize_rows`], GELU and [`quantize_rows`] in one pass: the int32 `sums` of a layer
/// (`rows.len()` rows of one value per column) become GELU outputs quantized per row into
/// `output`, with their scales and zero points in `quantized`.
pub(crate) fn dequantize_gelu_quantize_rows(
    sums: &[i32],
    rows: &[RowQuantization],
    columns: &Columns<'_>,
    output: &mut [i8],
    quantized: &mut [RowQuantization],
) {
    let width = columns.scales.len();
    let rows_per_part = rows_per_part(rows.len(), sums.len());
    let parts = sums
        .chunks(rows_per_part * width)
        .zip(rows.chunks(rows_per_part))
        .zip(output.chunks_mut(rows_per_part * width))
        .zip(quantized.chunks_mut(rows_per_part));
    run_parts(parts, |(((sums, rows), output), quantized)| {
        simd::dequantize_gelu_quantize(sums, rows, columns, output, quantized)
    });
}

/// A layer norm's constants, for the fused pass of [`Int8Linear::apply_residual_norm`].
pub(crate) struct RowNorm {
    /// `γ`, one per column.
    weight: Vec<f32>,
    /// `β`, one per column.
    bias: Vec<f32>,
    /// Added to the variance.
    eps: f32,
}

impl RowNorm {
    /// A layer norm `(x − mean) / √(var + eps) · weight + bias` over the last dimension.
    pub(crate) fn new(weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Self, tch::TchError> {
        Ok(RowNorm {
            weight: Vec::<f32>::try_from(&weight.f_to_kind(Kind::Float)?)?,
            bias: Vec::<f32>::try_from(&bias.f_to_kind(Kind::Float)?)?,
            eps: eps as f32,
        })
    }
}

/// [`dequantize_rows`], the residual sum, the layer norm and [`quantize_rows`] in one pass:
/// the int32 `sums` of a layer (`rows.len()` rows of one value per column) become
/// `layer_norm(y + residual)`, written over them as f32 bit patterns and quantized per row into
/// `output`, with their scales and zero points in `quantized`.
pub(crate) fn dequantize_residual_norm_quantize_rows(
    sums: &mut [i32],
    rows: &[RowQuantization],
    columns: &Columns<'_>,
    residual: &[f32],
    norm: &RowNorm,
    output: &mut [i8],
    quantized: &mut [RowQuantization],
) {
    let width = columns.scales.len();
    let rows_per_part = rows_per_part(rows.len(), sums.len());
    let parts = sums
        .chunks_mut(rows_per_part * width)
        .zip(rows.chunks(rows_per_part))
        .zip(residual.chunks(rows_per_part * width))
        .zip(output.chunks_mut(rows_per_part * width))
        .zip(quantized.chunks_mut(rows_per_part));
    run_parts(parts, |((((sums, rows), residual), output), quantized)| {
        simd::dequantize_residual_norm_quantize(sums, rows, columns, residual, norm, output, quantized)
    });
}

/// One row of [`dequantize_residual_norm_quantize_rows`], through `scratch` (one row of fp32).
#[inline(always)]
fn dequantize_residual_norm_quantize_row(
    sums: &mut [i32],
    quantization: RowQuantization,
    columns: &Columns<'_>,
    residual: &[f32],
    norm: &RowNorm,
    scratch: &mut [f32],
    out: &mut [i8],
) -> RowQuantization {
    let cells = scratch.iter_mut().zip(&*sums).zip(columns.scales).zip(columns.weight_sums).zip(columns.bias);
    for (((((y, &v), &column_scale), &weight_sum), &b), &r) in cells.zip(residual) {
        *y = quantization.dequantize(v, column_scale, weight_sum, b) + r;
    }
    let count = scratch.len() as f32;
    let mean = lane_sum(scratch, |v| v) / count;
    let variance = lane_sum(scratch, |v| (v - mean) * (v - mean)) / count;
    let inverse = 1.0 / (variance + norm.eps).sqrt();
    for (((y, &gamma), &beta), v) in scratch.iter_mut().zip(&norm.weight).zip(&norm.bias).zip(sums.iter_mut()) {
        *y = (*y - mean) * inverse * gamma + beta;
        *v = y.to_bits() as i32;
    }
    quantize_row(scratch, out)
}

/// `Σ f(v)` over `values`, summed in [`SUM_LANES`] interleaved partial sums (so that it
/// vectorizes) and then across them.
#[inline(always)]
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; SUM_LANES];
    let mut chunks = values.chunks_exact(SUM_LANES);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    chunks.remainder().iter().fold(lanes.iter().sum::<f32>(), |total, &v| total + f(v))
}

/// Partial sums of [`lane_sum`]: one AVX-512 register.
const SUM_LANES: usize = 16;

/// The quantization of one row (see [`quantize_rows`]), written so that the compiler
/// vectorizes it: lane-wise minimum and maximum, rounding by [`rounded_integer`].
#[inline(always)]
fn quantize_row(row: &[f32], out: &mut [i8]) -> RowQuantization {
    // the minimum and maximum as integer comparisons of order-preserving keys (vectorizes;
    // f32::min/max do not, for their NaN rules)
    let (low, high) = row.iter().fold((0i32, 0i32), |(low, high), &v| {
        let key = sortable_key(v);
        (low.min(key), high.max(key))
    });
    let (min, max) = (from_sortable_key(low), from_sortable_key(high));
    let scale = (max - min) / 255.0;
    let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    // min maps to −128 and max to 127; 0 maps to an integer, so zeros stay exact
    let zero_point = rounded_integer(-128.0 - min * inverse).clamp(-128, 127);
    for (q, &v) in out.iter_mut().zip(row) {
        *q = (rounded_integer(v * inverse) + zero_point).clamp(-128, 127) as i8;
    }
    RowQuantization { scale, zero_point }
}

impl RowQuantization {
    /// Output column `o` of this row from its int32 sum `Σₖ q_x[k] · q_w[o][k]`:
    /// `(sum − zero_point · Σₖ q_w[o][k]) · scale · s_w[o] + bias[o]` (step 4 of the module
    /// docs), for the column's weight scale, weight sum and bias.
    #[inline(always)]
    fn dequantize(self, sum: i32, column_scale: f32, weight_sum: i32, bias: f32) -> f32 {
        let sum = sum.wrapping_sub(self.zero_point.wrapping_mul(weight_sum));
        sum as f32 * (self.scale * column_scale) + bias
    }
}

/// An `i32` whose order is the order of the floats (negative floats have their magnitude bits
/// flipped; NaNs sort beyond the infinities).
#[inline(always)]
fn sortable_key(v: f32) -> i32 {
    let bits = v.to_bits() as i32;
    bits ^ ((bits >> 31) & i32::MAX)
}

/// The float of a [`sortable_key`].
#[inline(always)]
fn from_sortable_key(key: i32) -> f32 {
    f32::from_bits((key ^ ((key >> 31) & i32::MAX)) as u32)
}

/// One row of [`dequantize_rows`].
#[inline(always)]
fn dequantize_row(row: &mut [i32], quantization: RowQuantization, columns: &Columns<'_>) {
    let cells = row.iter_mut().zip(columns.scales).zip(columns.weight_sums).zip(columns.bias);
    for (((v, &column_scale), &weight_sum), &b) in cells {
        *v = quantization.dequantize(*v, column_scale, weight_sum, b).to_bits() as i32;
    }
}

/// [`dequantize_row`], GELU and [`quantize_row`] of one row, through `scratch` (one row of
/// fp32).
#[inline(always)]
fn dequantize_gelu_quantize_row(
    sums: &[i32],
    quantization: RowQuantization,
    columns: &Columns<'_>,
    scratch: &mut [f32],
    out: &mut [i8],
) -> RowQuantization {
    let cells = scratch.iter_mut().zip(sums).zip(columns.scales).zip(columns.weight_sums).zip(columns.bias);
    for ((((y, &v), &column_scale), &weight_sum), &b) in cells {
        *y = gelu(quantization.dequantize(v, column_scale, weight_sum, b));
    }
    quantize_row(scratch, out)
}

/// GELU in its exact form, `x/2 · (1 + erf(x/√2))`, with erf within 1.5e-7 of the true value
/// ([`erf`]; libtorch's own vectorized GELU uses the same approximation).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf by Abramowitz and Stegun 7.1.26 (absolute error under 1.5e-7), branch-free so that
/// it vectorizes.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152_1, 1.061_405_4];
    let t = 1.0 / (1.0 + P * x.abs());
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let magnitude = 1.0 - poly * exp_non_positive(-x * x);
    f32::from_bits(magnitude.to_bits() | (x.to_bits() & 0x8000_0000))
}

/// The row loops, compiled for the widest vector instructions the processor has
/// ([`multiversioned!`](crate::model::simd::multiversioned)).
mod simd {
    use super::{
        dequantize_gelu_quantize_row, dequantize_residual_norm_quantize_row, dequantize_row, quantize_row, Columns,
        RowNorm, RowQuantization,
    };
    use crate::model::simd::multiversioned;

    multiversioned! {
        /// [`quantize_row`] over each row.
        fn quantize(input: &[f32], width: usize, output: &mut [i8], rows: &mut [RowQuantization]) {
            for ((row, out), quantization) in input.chunks_exact(width).zip(output.chunks_exact_mut(width)).zip(rows) {
                *quantization = quantize_row(row, out);
            }
        }
    }

    multiversioned! {
        /// [`dequantize_row`] over each row.
        fn dequantize(values: &mut [i32], rows: &[RowQuantization], columns: &Columns<'_>) {
            for (row, &quantization) in values.chunks_exact_mut(columns.scales.len()).zip(rows) {
                dequantize_row(row, quantization, columns);
            }
        }
    }

    multiversioned! {
        /// [`dequantize_gelu_quantize_row`] over each row.
        fn dequantize_gelu_quantize(
            sums: &[i32],
            rows: &[RowQuantization],
            columns: &Columns<'_>,
            output: &mut [i8],
            quantized: &mut [RowQuantization],
        ) {
            let width = columns.scales.len();
            let mut scratch = vec![0f32; width];
            let each = sums.chunks_exact(width).zip(rows).zip(output.chunks_exact_mut(width)).zip(quantized);
            for (((sums, &quantization), out), result) in each {
                *result = dequantize_gelu_quantize_row(sums, quantization, columns, &mut scratch, out);
            }
        }
    }

    multiversioned! {
        /// [`dequantize_residual_norm_quantize_row`] over each row.
        fn dequantize_residual_norm_quantize(
            sums: &mut [i32],
            rows: &[RowQuantization],
            columns: &Columns<'_>,
            residual: &[f32],
            norm: &RowNorm,
            output: &mut [i8],
            quantized: &mut [RowQuantization],
        ) {
            let width = columns.scales.len();
            let mut scratch = vec![0f32; width];
            let each = sums
                .chunks_exact_mut(width)
                .zip(rows)
                .zip(residual.chunks_exact(width))
                .zip(output.chunks_exact_mut(width))
                .zip(quantized);
            for ((((sums, &quantization), residual), out), result) in each {
                *result = dequantize_residual_norm_quantize_row(
                    sums,
                    quantization,
                    columns,
                    residual,
                    norm,
                    &mut scratch,
                    out,
                );
            }
        }
    }
}

/// A quantized layer's per-output-channel constants, for [`dequantize_rows`].
pub(crate) struct Columns<'a> {
    /// Weight scales `s_w`.
    pub(crate) scales: &'a [f32],
    /// Sums of each quantized weight row (`Σₖ q_w[o][k]`), which the activations' zero point
    /// multiplies.
    pub(crate) weight_sums: &'a [i32],
    /// fp32 bias.
    pub(crate) bias: &'a [f32],
}

/// Turns the int32 sums `values` of `q_x · q_wᵀ` (`rows.len()` rows of one value per column)
/// into fp32 `(sum − zero_point · Σq_w) · scale · s_w + bias`, written over them as f32 bit
/// patterns.
pub(crate) fn dequantize_rows(values: &mut [i32], rows: &[RowQuantization], columns: &Columns<'_>) {
    let width = columns.scales.len();
    let rows_per_part = rows_per_part(rows.len(), values.len());
    let parts = values.chunks_mut(rows_per_part * width).zip(rows.chunks(rows_per_part));
    run_parts(parts, |(values, rows)| simd::dequantize(values, rows, columns));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_quantized_each_to_its_own_range() {
        let input = [1.0f32, -0.5, 0.25, 0.0, 0.0, 0.0, 10.0, 20.0, -40.0];
        let mut output = [0i8; 9];
        let mut rows = [RowQuantization::default(); 3];
        quantize_rows(&input, 3, &mut output, &mut rows);
        // each row's minimum goes to −128 and its maximum to 127
        assert_eq!(output, [127, -128, -1, -128, -128, -128, 84, 127, -128]);
        assert_eq!(rows[0], RowQuantization { scale: 1.5 / 255.0, zero_point: -43 });
        assert_eq!(rows[1], RowQuantization { scale: 0.0, zero_point: -128 });
        assert_eq!(rows[2], RowQuantization { scale: 60.0 / 255.0, zero_point: 42 });
        for ((x, q), r) in input.chunks(3).zip(output.chunks(3)).zip(&rows) {
            for (x, q) in x.iter().zip(q) {
                let back = r.scale * (i32::from(*q) - r.zero_point) as f32;
                assert!((back - x).abs() <= r.scale / 2.0 + 1e-6, "{x} came back as {back}");
            }
        }
    }

    #[test]
    fn sortable_keys_order_as_the_floats_and_come_back() {
        let floats = [f32::NEG_INFINITY, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, f32::INFINITY];
        let keys: Vec<i32> = floats.iter().map(|&v| sortable_key(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for v in floats {
            assert_eq!(from_sortable_key(sortable_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn sums_become_scaled_floats_plus_bias() {
        // two rows, two columns; the second row's zero point 3 takes 3·Σq_w off each sum
        let mut values = [10i32, -20, 0, 5];
        let rows = [RowQuantization { scale: 0.5, zero_point: 0 }, RowQuantization { scale: 2.0, zero_point: 3 }];
        let columns = Columns { scales: &[1.0, 0.25], weight_sums: &[1, -2], bias: &[1.0, -1.0] };
        dequantize_rows(&mut values, &rows, &columns);
        let floats: Vec<f32> = values.iter().map(|v| f32::from_bits(*v as u32)).collect();
        assert_eq!(floats, [6.0, -3.5, 1.0 + 2.0 * (0.0 - 3.0), -1.0 + 0.5 * (5.0 + 6.0)]);
    }

    #[test]
    fn int_mm_sums_are_exact_within_the_weight_limit() {
        // full-range activations against weights at the limit chosen for this processor: the
        // int8 kernel's sums equal exact int32 sums (127 on VNNI, 63 where pairs saturate)
        let _guard = tch::no_grad_guard();
        tch::manual_seed(11);
        let limit = weight_limit() as i64;
        let opts = (Kind::Int, tch::Device::Cpu);
        let a = Tensor::randint_low(-128, 128, [64, 256], opts);
        let b = Tensor::randint_low(-limit, limit + 1, [256, 48], opts);
        let sums = a.to_kind(Kind::Int8).internal_int_mm(&b.to_kind(Kind::Int8));
        let exact = a.to_kind(Kind::Int64).matmul(&b.to_kind(Kind::Int64)).to_kind(Kind::Int);
        assert!(sums.equal(&exact), "int8 sums differ from exact sums with weights in [-{limit}, {limit}]");
        // and the corners: rows of 127 and −128 against columns of ±limit
        let corners = Tensor::from_slice(&[127i8, -128]).view([2, 1]).repeat([1, 256]);
        let w = Tensor::from_slice(&[limit as i8, -(limit as i8)]).view([1, 2]).repeat([256, 1]);
        let exact = corners.to_kind(Kind::Int64).matmul(&w.to_kind(Kind::Int64)).to_kind(Kind::Int);
        assert!(corners.internal_int_mm(&w).equal(&exact));
    }

    #[test]
    fn layer_matches_fp32_within_quantization_error_and_ignores_other_rows() {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(7);
        let weight = Tensor::randn([48, 32], (Kind::Float, tch::Device::Cpu));
        let bias = Tensor::randn([48], (Kind::Float, tch::Device::Cpu));
        let x = Tensor::randn([2, 5, 32], (Kind::Float, tch::Device::Cpu));
        let layer = Int8Linear::quantize(&weight, &bias).unwrap();
        let y = layer.apply(&x).unwrap();
        assert_eq!(y.size(), [2, 5, 48]);
        let exact = x.linear(&weight, Some(&bias));
        let error = (&y - &exact).abs().max().double_value(&[]);
        let scale = exact.abs().max().double_value(&[]);
        assert!(error > 0.0 && error < 0.03 * scale, "int8 error {error} against magnitude {scale}");
        // a token's output is the same alone and next to other tokens (exact integer sums)
        let alone = layer.apply(&x.get(1).narrow(0, 2, 1)).unwrap();
        assert!(alone.equal(&y.get(1).narrow(0, 2, 1)));
    }

    #[test]
    fn large_inputs_split_across_threads_give_the_same_numbers() {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(8);
        let weight = Tensor::randn([64, 512], (Kind::Float, tch::Device::Cpu));
        let bias = Tensor::zeros([64], (Kind::Float, tch::Device::Cpu));
        let x = Tensor::randn([300, 512], (Kind::Float, tch::Device::Cpu));
        let layer = Int8Linear::quantize(&weight, &bias).unwrap();
        let all = layer.apply(&x).unwrap();
        let first = layer.apply(&x.narrow(0, 0, 7)).unwrap();
        assert!(first.equal(&all.narrow(0, 0, 7)));
    }

    #[test]
    fn gelu_follows_libtorch() {
        let x = Tensor::linspace(-12.0, 12.0, 4801, (Kind::Float, tch::Device::Cpu));
        let expected = Vec::<f32>::try_from(&x.gelu("none")).unwrap();
        let worst = Vec::<f32>::try_from(&x)
            .unwrap()
            .iter()
            .zip(&expected)
            .map(|(&v, &e)| (gelu(v) - e).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "largest difference {worst}");
        assert_eq!(exp_non_positive(0.0), 1.0);
        assert!((exp_non_positive(-1.0) - (-1f32).exp()).abs() < 1e-7);
    }

    #[test]
    fn fused_gelu_quantizes_what_the_separate_steps_give() {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(9);
        let up = Int8Linear::quantize(
            &Tensor::randn([64, 32], (Kind::Float, tch::Device::Cpu)),
            &Tensor::randn([64], (Kind::Float, tch::Device::Cpu)),
        )
        .unwrap();
        let x = QuantizedRows::quantize(&Tensor::randn([3, 4, 32], (Kind::Float, tch::Device::Cpu))).unwrap();
        let fused = up.apply_gelu_quantized(&x).unwrap();
        assert_eq!(fused.size, [3, 4, 64]);
        let separate = up.apply_quantized(&x).unwrap().gelu("none");
        let back = Vec::<f32>::try_from(&separate.reshape([-1])).unwrap();
        let codes = Vec::<i8>::try_from(&fused.values.reshape([-1])).unwrap();
        for (row, (q, quantization)) in codes.chunks(64).zip(&fused.rows).enumerate() {
            for (column, &code) in q.iter().enumerate() {
                let value = quantization.scale * (i32::from(code) - quantization.zero_point) as f32;
                let exact = back[row * 64 + column];
                assert!((value - exact).abs() <= quantization.scale * 0.5 + 1e-5, "{value} vs {exact}");
            }
        }
    }

    #[test]
    fn fused_residual_and_layer_norm_give_what_the_separate_steps_give() {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(10);
        let randn = |size: &[i64]| Tensor::randn(size, (Kind::Float, tch::Device::Cpu));
        // 40 columns: two 16-lane chunks and a remainder
        let layer = Int8Linear::quantize(&randn(&[40, 32]), &randn(&[40])).unwrap();
        let x = QuantizedRows::quantize(&randn(&[3, 5, 32])).unwrap();
        let residual = randn(&[3, 5, 40]) * 3.0;
        let (gamma, beta) = (randn(&[40]), randn(&[40]));
        let norm = RowNorm::new(&gamma, &beta, 1e-12).unwrap();
        let (fused, rows) = layer.apply_residual_norm(&x, &residual, &norm).unwrap();
        let separate =
            (layer.apply_quantized(&x).unwrap() + &residual).layer_norm([40], Some(&gamma), Some(&beta), 1e-12, false);
        let difference = (&fused - &separate).abs().max().double_value(&[]);
        assert!(difference < 1e-5, "fused layer norm differs by {difference}");
        // and the quantized rows are those of the fp32 result
        let again = QuantizedRows::quantize(&fused).unwrap();
        assert!(again.values.equal(&rows.values) && again.rows == rows.rows);
        // a residual of another size is refused
        assert!(layer.apply_residual_norm(&x, &randn(&[3, 5, 39]), &norm).is_err());
    }

    #[test]
    fn empty_input_gives_an_empty_output_and_a_wrong_width_an_error() {
        let weight = Tensor::ones([4, 3], (Kind::Float, tch::Device::Cpu));
        let layer = Int8Linear::quantize(&weight, &Tensor::zeros([4], (Kind::Float, tch::Device::Cpu))).unwrap();
        assert_eq!(layer.apply(&Tensor::zeros([1, 0, 3], (Kind::Float, tch::Device::Cpu))).unwrap().size(), [1, 0, 4]);
        assert!(layer.apply(&Tensor::zeros([2, 5], (Kind::Float, tch::Device::Cpu))).is_err());
    }
}
