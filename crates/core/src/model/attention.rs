//! Attention window by window for the int8 forward, on the CPU: each window of a right-padded
//! batch attends over its own real tokens only.
//!
//! Why window by window: in int8 the encoder's output for a window must not depend on the
//! batch it came in (see [`crate::model::int8`]); attention over a padded batch sums over the
//! batch's length, whose blocking moves the last bits with the other windows' lengths. Why
//! not libtorch's `scaled_dot_product_attention` per window (what the encoder still uses on
//! processors without AVX-512): profiling `just bench` in int8 put 29 % of the time in it, on
//! small matrix products with an inner size of 32 (the head size), a separate mask pass, a
//! zero-filled output and a copy per window. Here each (window, head) pair is one task:
//!
//! 1. the keys are packed in blocks of [`KEYS`], transposed, and the values side by side;
//! 2. for each block of [`ROWS`] queries (transposed, scaled by `1/√d`), the scores of
//!    [`KEYS`] keys at a time are accumulated in AVX-512 registers, one register per key
//!    holding the block's [`ROWS`] rows, so that the softmax then runs lane-wise: each
//!    row's maximum, `e^(s − max)` ([`crate::model::simd::exp_non_positive`]'s polynomial) and
//!    sum are vector operations over the keys;
//! 3. the probabilities times the values, [`LANES`] columns of all [`ROWS`] rows in registers,
//!    divided by each row's sum, go to the window's rows of the context `[batch, length,
//!    hidden]` (head `h` in columns `h·d..(h+1)·d`); padding rows are zero.
//!
//! The products run near the processor's fused multiply-add peak. The kernels are written
//! with `std::arch` intrinsics: the compiler, left to vectorize such register-blocked loops,
//! vectorized them across the wrong dimension, with gathers. The tasks run on libtorch's OpenMP
//! threads ([`parallel_parts`]). The result agrees with `scaled_dot_product_attention` to
//! float rounding (tested below); the sums run in another order, so the last bits differ.

use tch::{Kind, Tensor};

use crate::runtime::parallel_parts;

/// Query rows attended together: one AVX-512 register holds a value for each of them.
const ROWS: usize = 16;

/// Keys whose scores are accumulated together, one register each.
const KEYS: usize = 16;

/// Output columns accumulated together, one register per row; a head's size must be a
/// multiple of it.
const LANES: usize = 16;

/// Whether [`attend_windows`] runs here for a head size: on processors with AVX-512
/// (foundation), for head sizes that are a multiple of [`LANES`] (32 and 64 in the
/// BERT-family models Postilla ships and tests). Elsewhere the encoder attends window by
/// window with libtorch's kernel.
pub(crate) fn available(head_dim: i64) -> bool {
    head_dim > 0 && head_dim % LANES as i64 == 0 && kernels::supported()
}

/// The attention context `[batch, length, heads·head_dim]` (fp32) of each window of `qkv`, the
/// query, key and value projections side by side (`[batch, length, 3·heads·head_dim]`, fp32,
/// CPU), over its first `lengths[b]` tokens; zero at padding positions.
pub(crate) fn attend_windows(qkv: &Tensor, lengths: &[i64], heads: i64) -> Result<Tensor, tch::TchError> {
    let size = qkv.size();
    let (batch, length, width) = match size[..] {
        [batch, length, width] => (batch, length, width),
        _ => return Err(tch::TchError::Shape(format!("attention over qkv of size {size:?}"))),
    };
    let hidden = width / 3;
    if qkv.device() != tch::Device::Cpu
        || qkv.kind() != Kind::Float
        || width % 3 != 0
        || heads <= 0
        || hidden % heads != 0
        || !available(hidden / heads)
        || lengths.len() != batch as usize
        || lengths.iter().any(|&n| n < 0 || n > length)
    {
        return Err(tch::TchError::Shape(format!(
            "attention over qkv {:?} {size:?} with {heads} heads and window lengths {lengths:?}",
            qkv.kind()
        )));
    }
    let qkv = qkv.f_contiguous()?;
    let context = Tensor::f_empty([batch, length, hidden], (Kind::Float, tch::Device::Cpu))?;
    let shape = Shape {
        length: length as usize,
        hidden: hidden as usize,
        heads: heads as usize,
        head_dim: (hidden / heads) as usize,
    };
    if context.numel() == 0 {
        return Ok(context);
    }
    // SAFETY: `qkv` is a contiguous fp32 CPU tensor of batch·length·3·hidden elements, read
    // only; `context` a fresh contiguous fp32 tensor of batch·length·hidden elements that
    // nothing else uses while the tasks write it (see `Output`).
    let (input, output) = unsafe {
        (
            std::slice::from_raw_parts(qkv.data_ptr().cast::<f32>().cast_const(), qkv.numel()),
            Output { start: context.data_ptr().cast::<f32>(), len: context.numel() },
        )
    };
    let tasks = lengths.len() * shape.heads;
    parallel_parts(tasks, &|task| {
        let (window, head) = (task / shape.heads, task % shape.heads);
        let rows = window * shape.length..(window + 1) * shape.length;
        let qkv = &input[rows.start * 3 * shape.hidden..rows.end * 3 * shape.hidden];
        attend_head(qkv, lengths[window] as usize, head, &shape, &output, rows.start);
    });
    Ok(context)
}

/// The sizes of one batch's attention.
struct Shape {
    /// Rows per window (the batch's padded length).
    length: usize,
    /// Hidden size (`heads · head_dim`).
    hidden: usize,
    /// Attention heads.
    heads: usize,
    /// Size of one head.
    head_dim: usize,
}

/// The context tensor's memory, written by the tasks of [`attend_windows`]: each (window,
/// head) task writes only its window's rows in its head's columns, so no two tasks write the
/// same element and no task reads it.
struct Output {
    start: *mut f32,
    len: usize,
}

// SAFETY: the tasks write disjoint elements (see `Output`), within `len`.
unsafe impl Sync for Output {}

impl Output {
    /// Writes `values` (a multiple of [`LANES`] long) at element `offset`.
    fn write(&self, offset: usize, values: &[f32]) {
        assert!(offset + values.len() <= self.len, "attention output out of bounds");
        for (i, lanes) in values.chunks_exact(LANES).enumerate() {
            if let Some(&lanes) = lanes.first_chunk::<LANES>() {
                // SAFETY: in bounds (checked); the element range belongs to the calling task
                // alone; unaligned writes of a plain array.
                unsafe { self.start.add(offset + i * LANES).cast::<[f32; LANES]>().write_unaligned(lanes) }
            }
        }
    }
}

/// `target.copy_from_slice(source)` for lengths that are a multiple of [`LANES`], as inline
/// moves of [`LANES`] floats (a library call per head-sized row costs more than the copy).
fn copy_lanes(target: &mut [f32], source: &[f32]) {
    for (target, source) in target.chunks_exact_mut(LANES).zip(source.chunks_exact(LANES)) {
        if let (Some(target), Some(source)) = (target.first_chunk_mut::<LANES>(), source.first_chunk::<LANES>()) {
            *target = *source;
        }
    }
}

/// One head of one window: `qkv` holds the window's `length` rows of `3·hidden` values, of
/// which the first `n` are real tokens; the context goes to `output` from row `first_row` on.
fn attend_head(qkv: &[f32], n: usize, head: usize, shape: &Shape, output: &Output, first_row: usize) {
    let d = shape.head_dim;
    let zeros = vec![0f32; d];
    for row in n..shape.length {
        output.write((first_row + row) * shape.hidden + head * d, &zeros);
    }
    if n == 0 {
        return;
    }
    SCRATCH.with_borrow_mut(|scratch| {
        let stride = 3 * shape.hidden;
        let padded = n.next_multiple_of(KEYS);
        let sizes = [padded * d, n * d, ROWS * d, padded * ROWS, ROWS * d];
        scratch.resize(sizes.iter().sum(), 0.0);
        let (keys, rest) = scratch.split_at_mut(sizes[0]);
        let (values, rest) = rest.split_at_mut(sizes[1]);
        let (queries, rest) = rest.split_at_mut(sizes[2]);
        let (scores, context) = rest.split_at_mut(sizes[3]);
        pack_keys(qkv, n, stride, shape.hidden + head * d, d, keys);
        // the values side by side, [n, d] (read once per block of queries)
        for (j, value) in values.chunks_exact_mut(d).enumerate() {
            copy_lanes(value, &qkv[j * stride + 2 * shape.hidden + head * d..][..d]);
        }
        let scale = 1.0 / (d as f32).sqrt();
        let mut sums = [0f32; ROWS];
        for block in (0..n).step_by(ROWS) {
            let rows = ROWS.min(n - block);
            // the block's queries transposed and scaled: queries[c][r]
            queries.fill(0.0);
            for r in 0..rows {
                let query = &qkv[(block + r) * stride + head * d..][..d];
                for (c, &v) in query.iter().enumerate() {
                    queries[c * ROWS + r] = v * scale;
                }
            }
            kernels::scores(queries, keys, d, scores);
            kernels::softmax(&mut scores[..n * ROWS], &mut sums);
            kernels::weighted_values(&scores[..n * ROWS], values, d, d, context);
            for r in 0..rows {
                let inverse = 1.0 / sums[r];
                let row = &mut context[r * d..(r + 1) * d];
                row.iter_mut().for_each(|v| *v *= inverse);
                output.write((first_row + block + r) * shape.hidden + head * d, row);
            }
        }
    });
}

thread_local! {
    /// Each thread's working memory for [`attend_head`], kept between calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The first `n` keys (`d` values at `qkv[j · stride + offset..]`) in blocks of [`KEYS`]
/// transposed: `keys[block][c][k]` is value `c` of key `block · KEYS + k`, zero past `n`.
fn pack_keys(qkv: &[f32], n: usize, stride: usize, offset: usize, d: usize, keys: &mut [f32]) {
    keys.fill(0.0);
    for j in 0..n {
        let key = &qkv[j * stride + offset..][..d];
        let block = &mut keys[(j / KEYS) * d * KEYS..][..d * KEYS];
        for (c, &v) in key.iter().enumerate() {
            block[c * KEYS + j % KEYS] = v;
        }
    }
}

/// The three loops of a block of query rows, in AVX-512 instructions (the compiler
/// vectorizes such register-blocked loops across the wrong dimension, with gathers).
mod kernels {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    use super::{KEYS, LANES, ROWS};

    /// Whether this processor runs the kernels (AVX-512 foundation; the probe is cached).
    pub(super) fn supported() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        return false;
    }

    /// `scores[j][r] = queries[r] · key_j` for the [`ROWS`] rows of `queries` (transposed,
    /// `[d, ROWS]`) and every key of `keys` (packed by [`super::pack_keys`], `[blocks, d,
    /// KEYS]`); `scores` is `[keys, ROWS]`.
    pub(super) fn scores(queries: &[f32], keys: &[f32], d: usize, scores: &mut [f32]) {
        assert!(supported() && queries.len() >= d * ROWS && keys.len().is_multiple_of(d * KEYS));
        assert!(scores.len() >= keys.len() / d * ROWS);
        // SAFETY: AVX-512F is present and the lengths were checked above.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            scores_avx512(queries, keys, d, scores)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn scores_avx512(queries: &[f32], keys: &[f32], d: usize, scores: &mut [f32]) {
        for (block, keys) in keys.chunks_exact(d * KEYS).enumerate() {
            let mut sums = [_mm512_setzero_ps(); KEYS];
            for c in 0..d {
                // SAFETY: `queries` holds d·ROWS values (checked by `scores`).
                let q = unsafe { _mm512_loadu_ps(queries.as_ptr().add(c * ROWS)) };
                let k = &keys[c * KEYS..(c + 1) * KEYS];
                for (sum, &k) in sums.iter_mut().zip(k) {
                    *sum = _mm512_fmadd_ps(_mm512_set1_ps(k), q, *sum);
                }
            }
            let out = &mut scores[block * KEYS * ROWS..(block + 1) * KEYS * ROWS];
            for (out, sum) in out.chunks_exact_mut(ROWS).zip(sums) {
                // SAFETY: `out` holds ROWS values.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), sum) };
            }
        }
    }

    /// Softmax over the keys of each of the [`ROWS`] rows of `scores` (`[keys, ROWS]`): each
    /// score becomes `e^(s − max)` of its row; `sums[r]` gets row `r`'s sum.
    pub(super) fn softmax(scores: &mut [f32], sums: &mut [f32; ROWS]) {
        assert!(supported() && scores.len().is_multiple_of(ROWS));
        // SAFETY: AVX-512F is present and `scores` holds whole rows of keys (checked).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            softmax_avx512(scores, sums)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn softmax_avx512(scores: &mut [f32], sums: &mut [f32; ROWS]) {
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        for key in scores.chunks_exact(ROWS) {
            // SAFETY: `key` holds ROWS values.
            max = _mm512_max_ps(max, unsafe { _mm512_loadu_ps(key.as_ptr()) });
        }
        let mut total = _mm512_setzero_ps();
        for key in scores.chunks_exact_mut(ROWS) {
            // SAFETY: `key` holds ROWS values.
            let e = exp_non_positive(_mm512_sub_ps(unsafe { _mm512_loadu_ps(key.as_ptr()) }, max));
            // SAFETY: as above.
            unsafe { _mm512_storeu_ps(key.as_mut_ptr(), e) };
            total = _mm512_add_ps(total, e);
        }
        // SAFETY: `sums` holds ROWS values.
        unsafe { _mm512_storeu_ps(sums.as_mut_ptr(), total) };
    }

    /// `e^v` for `v ≤ 0`, lane by lane: [`crate::model::simd::exp_non_positive`]'s
    /// polynomial (Cephes' expf) with fused multiply-adds, `2^n` by `vscalefps`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn exp_non_positive(v: __m512) -> __m512 {
        let v = _mm512_max_ps(v, _mm512_set1_ps(-87.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            v,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), v);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0));
        _mm512_scalef_ps(e, n)
    }

    /// `context[r] = Σ_j probabilities[j][r] · value_j` over the keys of `probabilities`
    /// (`[keys, ROWS]`); value `j` is the `d` values at `values[j · stride..]`; `context` is
    /// `[ROWS, d]` (`d` a multiple of [`LANES`]).
    pub(super) fn weighted_values(probabilities: &[f32], values: &[f32], stride: usize, d: usize, context: &mut [f32]) {
        let keys = probabilities.len() / ROWS;
        assert!(supported() && d.is_multiple_of(LANES) && context.len() >= ROWS * d);
        assert!(keys == 0 || values.len() >= (keys - 1) * stride + d);
        // SAFETY: AVX-512F is present and the lengths were checked above.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            weighted_values_avx512(probabilities, values, stride, d, context)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn weighted_values_avx512(probabilities: &[f32], values: &[f32], stride: usize, d: usize, context: &mut [f32]) {
        for first in (0..d).step_by(LANES) {
            let mut sums = [_mm512_setzero_ps(); ROWS];
            for (j, p) in probabilities.chunks_exact(ROWS).enumerate() {
                // SAFETY: value j's columns first..first + LANES lie within `values` (checked
                // by `weighted_values`: d values from j·stride on).
                let v = unsafe { _mm512_loadu_ps(values.as_ptr().add(j * stride + first)) };
                for (sum, &p) in sums.iter_mut().zip(p) {
                    *sum = _mm512_fmadd_ps(_mm512_set1_ps(p), v, *sum);
                }
            }
            for (r, sum) in sums.into_iter().enumerate() {
                // SAFETY: row r's columns first..first + LANES lie within `context` (ROWS·d).
                unsafe { _mm512_storeu_ps(context.as_mut_ptr().add(r * d + first), sum) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libtorch's attention over each window's real tokens, for comparison.
    fn reference(qkv: &Tensor, lengths: &[i64], heads: i64) -> Tensor {
        let size = qkv.size();
        let (batch, length, hidden) = (size[0], size[1], size[2] / 3);
        let parts = qkv.view([batch, length, 3, heads, hidden / heads]).permute([2, 0, 3, 1, 4]);
        let context = Tensor::zeros([batch, length, hidden], (Kind::Float, tch::Device::Cpu));
        for (b, &n) in lengths.iter().enumerate().filter(|(_, &n)| n > 0) {
            let window = |t: Tensor| t.narrow(0, b as i64, 1).narrow(2, 0, n);
            let mask = Tensor::ones([1, 1, 1, n], (Kind::Bool, tch::Device::Cpu));
            let attended = Tensor::scaled_dot_product_attention(
                &window(parts.get(0)),
                &window(parts.get(1)),
                &window(parts.get(2)),
                Some(&mask),
                0.0,
                false,
                None::<f64>,
            );
            context.get(b as i64).narrow(0, 0, n).copy_(&attended.transpose(1, 2).reshape([n, hidden]));
        }
        context
    }

    #[test]
    fn agrees_with_libtorch_window_by_window_and_zeroes_padding() {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(11);
        if !kernels::supported() {
            let qkv = Tensor::zeros([1, 4, 3 * 64], (Kind::Float, tch::Device::Cpu));
            assert!(attend_windows(&qkv, &[4], 2).is_err(), "no AVX-512 here: the caller must use libtorch's kernel");
            return;
        }
        for (heads, head_dim, lengths) in [(12, 32, vec![77, 256, 0, 1, 40]), (2, 64, vec![9, 33]), (3, 16, vec![5])] {
            let length = *lengths.iter().max().unwrap_or(&1);
            let hidden = heads * head_dim;
            let qkv = Tensor::randn([lengths.len() as i64, length, 3 * hidden], (Kind::Float, tch::Device::Cpu)) * 2.0;
            let ours = attend_windows(&qkv, &lengths, heads).unwrap();
            let expected = reference(&qkv, &lengths, heads);
            let difference = (&ours - &expected).abs().max().double_value(&[]);
            let magnitude = expected.abs().max().double_value(&[]);
            assert!(difference < 4e-6 * magnitude, "{heads} heads of {head_dim}, lengths {lengths:?}: {difference}");
            // a window's context depends on its own tokens only
            let alone = attend_windows(&qkv.narrow(0, 0, 1).narrow(1, 0, lengths[0]), &lengths[..1], heads).unwrap();
            assert!(alone.equal(&ours.narrow(0, 0, 1).narrow(1, 0, lengths[0])));
        }
    }

    #[test]
    fn refuses_shapes_it_does_not_cover() {
        let qkv = Tensor::zeros([1, 4, 3 * 24], (Kind::Float, tch::Device::Cpu));
        assert!(!available(24));
        assert!(attend_windows(&qkv, &[4], 1).is_err());
        assert!(attend_windows(&qkv.narrow(2, 0, 48), &[4], 2).is_err());
        assert!(attend_windows(&Tensor::zeros([1, 4, 96], (Kind::Float, tch::Device::Cpu)), &[5], 2).is_err());
    }
}
