//! Length-bucketed batches and their tensors. Examples are shuffled, sorted by length within
//! pools of about 100 batches, cut into batches of at most `batch_tokens` tokens (padding
//! included) and `batch_size` rows, and the batches shuffled again: padding stays under a few
//! per cent while the order stays random (training/train_ner.py draws its batches this way).

use tch::{Device, Kind, Tensor};

use super::examples::{Example, LabelScheme, Target};
use super::rng::SplitMix64;

/// Bucketed batches of `examples` (indices into it). `specials` tokens are added to each row.
pub fn bucketed(
    examples: &[Example],
    batch_tokens: usize,
    batch_size: usize,
    specials: usize,
    rng: &mut SplitMix64,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    rng.shuffle(&mut order);
    let pool_size = batch_tokens * 100;
    let mut batches = Vec::new();
    let mut pool = Vec::new();
    let mut pool_tokens = 0;
    for i in order {
        pool.push(i);
        pool_tokens += examples[i].ids.len();
        if pool_tokens >= pool_size {
            cut_pool(&mut pool, examples, batch_tokens, batch_size, specials, &mut batches);
            pool_tokens = 0;
        }
    }
    cut_pool(&mut pool, examples, batch_tokens, batch_size, specials, &mut batches);
    rng.shuffle(&mut batches);
    batches
}

fn cut_pool(
    pool: &mut Vec<usize>,
    examples: &[Example],
    batch_tokens: usize,
    batch_size: usize,
    specials: usize,
    batches: &mut Vec<Vec<usize>>,
) {
    pool.sort_by_key(|&i| examples[i].ids.len());
    let mut batch: Vec<usize> = Vec::new();
    let mut longest = 0;
    for &i in pool.iter() {
        let width = examples[i].ids.len() + specials;
        let longer = longest.max(width);
        if !batch.is_empty() && (longer * (batch.len() + 1) > batch_tokens || batch.len() >= batch_size) {
            batches.push(std::mem::take(&mut batch));
            longest = width;
        } else {
            longest = longer;
        }
        batch.push(i);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    pool.clear();
}

/// A batch as tensors.
#[derive(Debug)]
pub struct TrainBatch {
    /// `[rows, width]` token ids, special tokens included, padded.
    pub input_ids: Tensor,
    /// `[rows, width]` 1 for tokens, 0 for padding.
    pub attention_mask: Tensor,
    /// `[rows, width, labels]`: the labels each token may take; all false = not scored.
    pub allowed: Tensor,
    /// Tokens (special tokens included, padding excluded).
    pub tokens: usize,
}

/// How rows are framed: the special tokens around the content and the padding id.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// Token before the content.
    pub bos: Option<i64>,
    /// Token after the content.
    pub eos: Option<i64>,
    /// Padding id.
    pub pad: i64,
}

impl TrainBatch {
    /// The tensors of `rows` (examples) on `device`.
    pub fn new(rows: &[&Example], scheme: &LabelScheme, framing: Framing, device: Device) -> Self {
        let n_labels = 1 + 2 * scheme.types.len();
        let offset = usize::from(framing.bos.is_some());
        let specials = offset + usize::from(framing.eos.is_some());
        let width = rows.iter().map(|e| e.ids.len() + specials).max().unwrap_or(0);
        let mut ids = vec![framing.pad; rows.len() * width];
        let mut mask = vec![0i64; rows.len() * width];
        let mut allowed = vec![false; rows.len() * width * n_labels];
        let mut tokens = 0;
        for (r, e) in rows.iter().enumerate() {
            let row: Vec<i64> = framing.bos.into_iter().chain(e.ids.iter().copied()).chain(framing.eos).collect();
            ids[r * width..r * width + row.len()].copy_from_slice(&row);
            mask[r * width..r * width + row.len()].iter_mut().for_each(|m| *m = 1);
            tokens += row.len();
            for (k, target) in e.targets.iter().enumerate() {
                let base = (r * width + offset + k) * n_labels;
                match *target {
                    Target::Ignore => {}
                    Target::Label(l) => allowed[base + l as usize] = true,
                    Target::Partial(set) => {
                        for &l in &scheme.partial_sets[set as usize] {
                            allowed[base + l as usize] = true;
                        }
                    }
                }
            }
        }
        let shape = [rows.len() as i64, width as i64];
        TrainBatch {
            input_ids: Tensor::from_slice(&ids).view(shape).to(device),
            attention_mask: Tensor::from_slice(&mask).view(shape).to(device),
            allowed: Tensor::from_slice(&allowed).view([shape[0], shape[1], n_labels as i64]).to(device),
            tokens,
        }
    }

    /// The batch's tensors as named tensors (for a reference implementation to read).
    pub fn named(&self) -> Vec<(&'static str, Tensor)> {
        vec![
            ("input_ids", self.input_ids.shallow_clone()),
            ("attention_mask", self.attention_mask.shallow_clone()),
            ("allowed", self.allowed.to_kind(Kind::Uint8)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(n: usize) -> Example {
        Example { ids: vec![7; n], targets: vec![Target::Label(0); n] }
    }

    #[test]
    fn batches_cover_every_example_once_within_the_token_budget() {
        let examples: Vec<Example> = (0..500).map(|i| example(5 + (i * 37) % 120)).collect();
        let mut rng = SplitMix64::new(1, 1);
        let batches = bucketed(&examples, 1024, 64, 2, &mut rng);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..500).collect::<Vec<_>>());
        let mut padded = 0;
        let mut real = 0;
        for b in &batches {
            let width = b.iter().map(|&i| examples[i].ids.len() + 2).max().unwrap_or(0);
            assert!(width * b.len() <= 1024 && b.len() <= 64);
            padded += width * b.len();
            real += b.iter().map(|&i| examples[i].ids.len() + 2).sum::<usize>();
        }
        assert!((padded - real) as f64 / padded as f64 <= 0.05, "padding {padded} vs {real}");
    }

    #[test]
    fn tensors_frame_rows_and_mark_allowed_labels() {
        let mut scheme = LabelScheme::new(vec!["PER".into()]);
        scheme.partial_sets.push(vec![0, 1, 2]);
        let a = Example { ids: vec![10, 11], targets: vec![Target::Label(1), Target::Ignore] };
        let b = Example { ids: vec![12], targets: vec![Target::Partial(0)] };
        let framing = Framing { bos: Some(0), eos: Some(2), pad: 1 };
        let batch = TrainBatch::new(&[&a, &b], &scheme, framing, Device::Cpu);
        assert_eq!(Vec::<i64>::try_from(batch.input_ids.view([-1])).expect("ids"), [0, 10, 11, 2, 0, 12, 2, 1]);
        assert_eq!(Vec::<i64>::try_from(batch.attention_mask.view([-1])).expect("mask"), [1, 1, 1, 1, 1, 1, 1, 0]);
        let allowed = Vec::<u8>::try_from(batch.allowed.to_kind(Kind::Uint8).view([-1])).expect("allowed");
        assert_eq!(&allowed[3..6], [0, 1, 0], "row 0, first content token: B-PER");
        assert_eq!(&allowed[6..9], [0, 0, 0], "ignored");
        assert_eq!(&allowed[15..18], [1, 1, 1], "row 1, partial label");
        assert_eq!(batch.tokens, 7);
    }
}
