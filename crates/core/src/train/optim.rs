//! The optimiser side of a step, with PyTorch's semantics so that a step here equals a step
//! of `torch.optim.AdamW` + `get_linear_schedule_with_warmup` + `clip_grad_norm_` (tested
//! against PyTorch in `crates/core/tests/train_parity.rs`): AdamW with its moments held as
//! plain tensors (so that a checkpoint can save and restore them exactly), the linear
//! warm-up/decay schedule, and global-norm gradient clipping.

use tch::{Kind, Tensor};

/// AdamW (Loshchilov and Hutter 2019) as `torch.optim.AdamW` computes it (single-tensor
/// path): decoupled weight decay, bias-corrected moments.
#[derive(Debug)]
pub struct AdamW {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Steps taken.
    pub steps: u64,
    /// First moments, one per parameter (zeros at the start).
    pub exp_avg: Vec<Tensor>,
    /// Second moments.
    pub exp_avg_sq: Vec<Tensor>,
}

impl AdamW {
    /// An optimiser for `params` with PyTorch's default betas and ε.
    pub fn new(params: &[Tensor], weight_decay: f64) -> Self {
        AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            steps: 0,
            exp_avg: params.iter().map(Tensor::zeros_like).collect(),
            exp_avg_sq: params.iter().map(Tensor::zeros_like).collect(),
        }
    }

    /// One update of `params` from their gradients at learning rate `lr`.
    pub fn step(&mut self, params: &[Tensor], lr: f64) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let bias_correction1 = 1.0 - self.beta1.powi(self.steps as i32);
        let bias_correction2_sqrt = (1.0 - self.beta2.powi(self.steps as i32)).sqrt();
        let step_size = lr / bias_correction1;
        for ((p, m), v) in params.iter().zip(&mut self.exp_avg).zip(&mut self.exp_avg_sq) {
            let grad = p.grad();
            if !grad.defined() {
                continue;
            }
            let mut p = p.shallow_clone();
            let _ = p.g_mul_scalar_(1.0 - lr * self.weight_decay);
            let _ = m.lerp_(&grad, 1.0 - self.beta1);
            let _ = v.g_mul_scalar_(self.beta2);
            let _ = v.g_add_(&(&grad * &grad * (1.0 - self.beta2)));
            let denom = (v.sqrt() / bias_correction2_sqrt) + self.eps;
            let _ = p.g_add_(&(&*m / denom * (-step_size)));
        }
    }
}

/// `get_linear_schedule_with_warmup`: the learning-rate factor rises linearly from 0 over
/// `warmup` steps, then falls linearly to 0 at `total`. Step `k` (0-based) uses `factor(k)`,
/// so the first step has factor 0 when there is a warm-up, as in transformers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSchedule {
    /// Warm-up steps.
    pub warmup: usize,
    /// Total steps.
    pub total: usize,
}

impl LinearSchedule {
    /// A schedule over `total` steps, warming up for `floor(share · total)` of them.
    pub fn new(total: usize, warmup_share: f64) -> Self {
        LinearSchedule { warmup: (warmup_share * total as f64) as usize, total }
    }

    /// The factor of step `k`.
    ///
    /// ```
    /// use postilla_core::train::optim::LinearSchedule;
    /// let s = LinearSchedule { warmup: 2, total: 10 };
    /// assert_eq!([s.factor(0), s.factor(1), s.factor(2), s.factor(6), s.factor(10)], [0.0, 0.5, 1.0, 0.5, 0.0]);
    /// ```
    pub fn factor(&self, k: usize) -> f64 {
        if k < self.warmup {
            return k as f64 / self.warmup.max(1) as f64;
        }
        (self.total.saturating_sub(k) as f64 / self.total.saturating_sub(self.warmup).max(1) as f64).max(0.0)
    }
}

/// `clip_grad_norm_`: scales all gradients so that their global L2 norm is at most
/// `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    let _guard = tch::no_grad_guard();
    let grads: Vec<Tensor> = params.iter().map(Tensor::grad).filter(Tensor::defined).collect();
    if grads.is_empty() {
        return 0.0;
    }
    let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
    let total = Tensor::stack(&norms, 0).norm();
    let coefficient = (max_norm / (&total + 1e-6)).clamp_max(1.0);
    for g in &grads {
        let mut g = g.shallow_clone();
        let _ = g.g_mul_(&coefficient);
    }
    total.to_kind(Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn adamw_first_step_moves_each_weight_by_lr_against_its_gradient_sign() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let loss = (&p * Tensor::from_slice(&[3.0f32, -0.5])).sum(Kind::Float);
        loss.backward();
        let mut adam = AdamW::new(std::slice::from_ref(&p), 0.0);
        adam.step(std::slice::from_ref(&p), 0.1);
        let v = Vec::<f32>::try_from(p.detach()).expect("values");
        // first Adam step: m̂ / (√v̂ + ε) = sign(g)
        assert!((v[0] - 0.9).abs() < 1e-6 && (v[1] - -1.9).abs() < 1e-6, "{v:?}");
    }

    #[test]
    fn clipping_scales_to_the_global_norm() {
        let p = Tensor::zeros([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let loss = (&p * Tensor::from_slice(&[3.0f32, 4.0])).sum(Kind::Float);
        loss.backward();
        let norm = clip_grad_norm(std::slice::from_ref(&p), 1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        let g = Vec::<f32>::try_from(p.grad()).expect("grad");
        assert!((g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5, "{g:?}");
    }
}
