//! Long documents: which tokens go into which model window, and which window each token's
//! prediction is taken from.
//!
//! Windows hold up to `capacity` content tokens (the model's usable length minus its special
//! tokens) and overlap by `stride` tokens. Each token's prediction comes from the window where
//! it has the most context, i.e. where `min(tokens before it, tokens after it)` within the
//! window is largest (the earlier window on ties). Entities are decoded once over the stitched
//! per-token predictions, so an entity crossing a window edge is neither split nor duplicated.

/// The windows of one document and the owner window of each token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPlan {
    /// Half-open content-token ranges, in order.
    pub windows: Vec<(usize, usize)>,
    /// For each content token, the index of the window its prediction is taken from.
    pub owner: Vec<usize>,
}

impl WindowPlan {
    /// Plans windows over `n_tokens` content tokens.
    ///
    /// `capacity` must be positive and `stride < capacity`.
    ///
    /// ```
    /// use postilla_core::ner::windows::WindowPlan;
    /// let plan = WindowPlan::new(10, 6, 2);
    /// assert_eq!(plan.windows, vec![(0, 6), (4, 10)]);
    /// // tokens 0..=4 are best seen in the first window, 5..=9 in the second
    /// assert_eq!(plan.owner, vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    /// ```
    pub fn new(n_tokens: usize, capacity: usize, stride: usize) -> Self {
        assert!(capacity > 0 && stride < capacity, "window capacity {capacity} must exceed stride {stride}");
        let mut windows = Vec::new();
        let step = capacity - stride;
        let mut start = 0;
        loop {
            let end = (start + capacity).min(n_tokens);
            windows.push((start, end));
            if end >= n_tokens {
                break;
            }
            start += step;
        }
        let mut owner = vec![0; n_tokens];
        let mut first = 0;
        for (t, slot) in owner.iter_mut().enumerate() {
            while windows[first].1 <= t {
                first += 1;
            }
            let mut best = (0usize, first);
            for (w, &(a, b)) in windows.iter().enumerate().skip(first) {
                if a > t {
                    break;
                }
                let context = (t - a).min(b - 1 - t);
                if w == first || context > best.0 {
                    best = (context, w);
                }
            }
            *slot = best.1;
        }
        WindowPlan { windows, owner }
    }
}

#[cfg(test)]
mod tests {
    use super::WindowPlan;

    #[test]
    fn short_documents_get_one_window() {
        assert_eq!(WindowPlan::new(0, 8, 2).windows, vec![(0, 0)]);
        assert_eq!(WindowPlan::new(8, 8, 2).windows, vec![(0, 8)]);
    }

    #[test]
    fn every_token_is_owned_by_a_window_containing_it() {
        for n in 0..60 {
            for capacity in 1..12 {
                for stride in 0..capacity {
                    let plan = WindowPlan::new(n, capacity, stride);
                    assert_eq!(plan.windows.last().map(|w| w.1), Some(n));
                    for (t, &w) in plan.owner.iter().enumerate() {
                        let (a, b) = plan.windows[w];
                        assert!(a <= t && t < b, "token {t} owned by window {w} = {a}..{b}");
                    }
                }
            }
        }
    }
}
