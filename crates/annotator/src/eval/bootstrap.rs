//! Bootstrap confidence intervals and the paired bootstrap test, resampling documents.
//!
//! Resampling is seeded and deterministic (SplitMix64): the same seed gives the same intervals
//! on every machine. Intervals are the 2.5th and 97.5th percentiles of the resampled metric
//! (linear interpolation between order statistics, numpy's default). The paired test follows
//! Berg-Kirkpatrick et al. (2012): with observed difference δ = B − A, the p-value is the
//! share of resamples whose difference exceeds 2δ in δ's direction — how often B's advantage
//! would look this large by chance.

/// SplitMix64: a tiny, well-known, deterministic generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform index in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }
}

/// `samples` resamples of `n` document indices each.
pub fn resamples(n: usize, samples: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = SplitMix64::new(seed);
    (0..samples).map(|_| (0..n).map(|_| rng.below(n.max(1))).collect()).collect()
}

/// The `q`-quantile (0..=1) of `values` with linear interpolation.
///
/// ```
/// use postilla_annotator::eval::bootstrap::quantile;
/// assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
/// ```
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// 95 % interval of resampled values.
pub fn ci95(values: &[f64]) -> [f64; 2] {
    [quantile(values, 0.025), quantile(values, 0.975)]
}

/// Berg-Kirkpatrick paired bootstrap p-value for the observed difference `delta` given the
/// resampled differences.
pub fn paired_p_value(delta: f64, resampled: &[f64]) -> f64 {
    if resampled.is_empty() {
        return f64::NAN;
    }
    let exceed = if delta >= 0.0 {
        resampled.iter().filter(|&&d| d > 2.0 * delta).count()
    } else {
        resampled.iter().filter(|&&d| d < 2.0 * delta).count()
    };
    exceed as f64 / resampled.len() as f64
}
