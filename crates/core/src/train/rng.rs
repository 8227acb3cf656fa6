//! A small seeded random generator (SplitMix64) for shuffling and window lengths: the same
//! seed gives the same epochs on every machine, and an epoch's draws depend only on the seed
//! and the epoch number, so a resumed run draws what an uninterrupted one drew.

/// The annotator's SplitMix64 (Steele, Lea and Flood 2014) started on a stream of a seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(postilla_annotator::eval::bootstrap::SplitMix64);

impl SplitMix64 {
    /// A generator for `seed` and a stream number (e.g. the epoch).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut g =
            postilla_annotator::eval::bootstrap::SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        g.next_u64();
        SplitMix64(g)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        if high <= low {
            return low;
        }
        low + (self.next_u64() % (high - low + 1) as u64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |seed, stream| {
            let mut g = SplitMix64::new(seed, stream);
            (0..4).map(|_| g.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(13, 2), draw(13, 2));
        assert_ne!(draw(13, 2), draw(13, 3));
        assert_ne!(draw(13, 2), draw(14, 2));
        let mut g = SplitMix64::new(1, 0);
        let mut v: Vec<usize> = (0..50).collect();
        g.shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(v, sorted);
        assert!((0..1000).map(|_| g.range(64, 254)).all(|x| (64..=254).contains(&x)));
        assert!((0..1000).map(|_| g.next_f64()).all(|x| (0.0..1.0).contains(&x)));
    }
}
