//! Loops compiled for the processor's widest vector instructions, and the branch-free math
//! they share (the int8 row passes of [`crate::model::int8`]; [`crate::model::attention`]
//! follows the same exponential in AVX-512 instructions).
//!
//! The loops are plain Rust that the compiler vectorizes; [`multiversioned!`] compiles one
//! body three times (AVX-512, AVX2 with FMA, portable) and picks the widest the processor has
//! at run time, so one binary runs everywhere and uses 512-bit registers where they exist.

/// 1.5·2²³: for |v| < 2²², `v + ROUND_MAGIC` has no bits below 1, so the addition rounds `v`
/// to the nearest integer (ties to even), which the sum's low mantissa bits then hold.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Defines `pub(crate) fn $name($args)` running `$body` compiled three times: for AVX-512,
/// for AVX2 with FMA, and portably; each call takes the widest the processor has. The body
/// is the same code in each: only the instructions the compiler may use differ, and without
/// fast-math flags they compute the same bits.
macro_rules! multiversioned {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn portable($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            fn avx512($($arg: $ty),*) {
                portable($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) {
                portable($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            match $crate::model::simd::widest_vectors() {
                // SAFETY: the processor has the features each function is compiled for.
                $crate::model::simd::Vectors::Avx512 => return unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                $crate::model::simd::Vectors::Avx2 => return unsafe { avx2($($arg),*) },
                $crate::model::simd::Vectors::Portable => {}
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use multiversioned;

/// The vector instruction sets [`multiversioned!`] compiles for.
#[cfg(target_arch = "x86_64")]
pub(crate) enum Vectors {
    /// AVX-512 (foundation, byte/word and vector-length extensions).
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// Baseline x86-64 (SSE2).
    Portable,
}

/// The widest of [`Vectors`] this processor has (the standard library caches the probe).
#[cfg(target_arch = "x86_64")]
pub(crate) fn widest_vectors() -> Vectors {
    use std::arch::is_x86_feature_detected as has;
    if has!("avx512f") && has!("avx512bw") && has!("avx512vl") {
        Vectors::Avx512
    } else if has!("avx2") && has!("fma") {
        Vectors::Avx2
    } else {
        Vectors::Portable
    }
}

/// `v` rounded to the nearest integer, ties to even, for |v| < 2²²: adding 1.5·2²³ leaves
/// the integer in the low bits of the sum's mantissa (vectorizes, unlike a float-to-integer
/// conversion, which Rust makes saturating and NaN-checked). Anything else (NaN, infinities,
/// huge values) gives some integer, which the caller clamps.
#[inline(always)]
pub(crate) fn rounded_integer(v: f32) -> i32 {
    ((v + ROUND_MAGIC).to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32)
}

/// `e^v` for `v ≤ 0` (below −87 it returns e^−87 ≈ 1.6e-38, not 0), branch-free: `v = n·ln 2 + r`
/// with a degree-6 polynomial for `e^r` (Cephes' expf) and `2^n` from the exponent bits.
#[inline(always)]
pub(crate) fn exp_non_positive(v: f32) -> f32 {
    let v = if v < -87.0 { -87.0 } else { v };
    let n = rounded_integer(v * std::f32::consts::LOG2_E);
    let nf = n as f32;
    let r = v - nf * 0.693_359_4 + nf * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_follows_the_standard_library() {
        assert_eq!(exp_non_positive(0.0), 1.0);
        for i in 0..=8700 {
            let v = -(i as f32) / 100.0;
            let (ours, exact) = (exp_non_positive(v), v.exp());
            assert!((ours - exact).abs() <= 2.0 * f32::EPSILON * exact, "e^{v}: {ours} vs {exact}");
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!([0.5, 1.5, 2.5, -0.5, -1.5, 3.49].map(rounded_integer), [0, 2, 2, 0, -2, 3]);
    }
}
