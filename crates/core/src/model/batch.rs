//! Padding token rows into the `[batch, length]` tensors a forward pass takes.

use tch::{Device, Tensor};

/// A padded batch: ids, attention mask (1 = token, 0 = padding) and the padded length.
#[derive(Debug)]
pub struct PaddedBatch {
    /// Token ids `[batch, length]`.
    pub ids: Tensor,
    /// Attention mask `[batch, length]`.
    pub mask: Tensor,
    /// The padded length (the longest row).
    pub len: usize,
}

/// Pads `rows` to the longest with `fill` into a `[rows, longest]` tensor on `device`.
pub fn pad_rows(rows: &[Vec<i64>], fill: i64, device: Device) -> Tensor {
    let len = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut flat = Vec::with_capacity(rows.len() * len);
    for r in rows {
        flat.extend_from_slice(r);
        flat.extend(std::iter::repeat_n(fill, len - r.len()));
    }
    Tensor::from_slice(&flat).view([rows.len() as i64, len as i64]).to(device)
}

impl PaddedBatch {
    /// Pads token id rows with `pad` and builds the matching attention mask.
    pub fn new(rows: &[Vec<i64>], pad: i64, device: Device) -> Self {
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let ones: Vec<Vec<i64>> = rows.iter().map(|r| vec![1; r.len()]).collect();
        PaddedBatch { ids: pad_rows(rows, pad, device), mask: pad_rows(&ones, 0, device), len }
    }
}
