//! The optimiser side of a step, with PyTorch's semantics so that a step here equals a step
//! of `torch.optim.AdamW` + `get_linear_schedule_with_warmup` + `clip_grad_norm_` (tested
//! against PyTorch in `crates/core/tests/train_parity.rs`): AdamW with its moments held as
//! plain tensors (so that a checkpoint can save and restore them exactly), updated on the CPU
//! in one pass over each parameter, gradient and moment (PyTorch's arithmetic, without its
//! intermediate tensors); the linear warm-up/decay schedule; global-norm gradient clipping,
//! whose coefficient the AdamW pass applies.

use tch::{Kind, Tensor};

/// What sets one parameter's update apart from the others' (a parameter group of
/// `torch.optim.AdamW`): its share of the scheduled learning rate and its weight decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamGroup {
    /// The parameter's learning rate over the run's (layer-wise decay: d^depth).
    pub lr_scale: f64,
    /// The parameter's decoupled weight decay.
    pub weight_decay: f64,
}

/// AdamW (Loshchilov and Hutter 2019) as `torch.optim.AdamW` computes it (single-tensor
/// path): decoupled weight decay, bias-corrected moments, one [`ParamGroup`] per parameter.
#[derive(Debug)]
pub struct AdamW {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Each parameter's learning-rate scale and weight decay (the order of the parameters).
    pub groups: Vec<ParamGroup>,
    /// Steps taken.
    pub steps: u64,
    /// First moments, one per parameter (zeros at the start).
    pub exp_avg: Vec<Tensor>,
    /// Second moments.
    pub exp_avg_sq: Vec<Tensor>,
}

impl AdamW {
    /// An optimiser for `params` with PyTorch's default betas and ε, one learning rate and one
    /// weight decay for all (a single parameter group).
    pub fn new(params: &[Tensor], weight_decay: f64) -> Self {
        Self::grouped(params, vec![ParamGroup { lr_scale: 1.0, weight_decay }; params.len()])
    }

    /// An optimiser for `params` whose `groups` (one per parameter, in order) scale the
    /// learning rate and set the weight decay, as `torch.optim.AdamW` over parameter groups
    /// whose learning rates a schedule scales by one factor.
    pub fn grouped(params: &[Tensor], groups: Vec<ParamGroup>) -> Self {
        assert_eq!(params.len(), groups.len(), "one parameter group per parameter");
        AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            groups,
            steps: 0,
            exp_avg: params.iter().map(Tensor::zeros_like).collect(),
            exp_avg_sq: params.iter().map(Tensor::zeros_like).collect(),
        }
    }

    /// One update of `params` from their gradients at learning rate `lr` (each parameter at
    /// `lr` times its group's scale), the gradients taken times `grad_scale` (the clipping
    /// coefficient of [`clip_coefficient`]: PyTorch's `clip_grad_norm_` multiplies the
    /// gradients by it in place before the step; here the gradients are left as they are and
    /// the product is formed inside the update).
    ///
    /// On the CPU (contiguous fp32 tensors, the case of every training run there) the update
    /// runs as one pass over each parameter, its gradient and its two moments, split across
    /// libtorch's thread count: PyTorch's loop of tensor operations reads and writes each of
    /// them several times (about 20 passes of the parameters' size per step against 7), which
    /// made a step of e5-small about 10 % slower than PyTorch's. The arithmetic is PyTorch's,
    /// operation by operation in fp32 (`update_elements`); elsewhere (CUDA) the same
    /// operations run as tensor operations.
    pub fn step(&mut self, params: &[Tensor], lr: f64, grad_scale: f32) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let c = self.step_constants(lr, grad_scale);
        let grads: Vec<Tensor> = params.iter().map(Tensor::grad).collect();
        if !fused_cpu_update(params, &grads, &self.exp_avg, &self.exp_avg_sq, &c) {
            self.tensor_update(params, &grads, &c);
        }
    }

    /// The step's scalars for every parameter, in order.
    fn step_constants(&self, lr: f64, grad_scale: f32) -> Vec<StepConstants> {
        self.groups.iter().map(|g| self.constants(lr, g, grad_scale)).collect()
    }

    /// The step's scalars for a parameter of `group`, in fp32 as PyTorch's kernels use them
    /// (the group's learning rate is PyTorch's: its initial rate `lr_scale`, times the
    /// schedule's factor, `lr` being the run's rate times that factor).
    fn constants(&self, lr: f64, group: &ParamGroup, grad_scale: f32) -> StepConstants {
        let lr = lr * group.lr_scale;
        let bias_correction1 = 1.0 - self.beta1.powi(self.steps as i32);
        let bias_correction2_sqrt = (1.0 - self.beta2.powi(self.steps as i32)).sqrt();
        StepConstants {
            grad_scale,
            decay: (1.0 - lr * group.weight_decay) as f32,
            lerp_weight: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            bias_correction2_sqrt: bias_correction2_sqrt as f32,
            eps: self.eps as f32,
            neg_step_size: (-(lr / bias_correction1)) as f32,
        }
    }

    /// The update as tensor operations (`torch.optim.adamw._single_tensor_adamw`'s), for
    /// tensors [`fused_cpu_update`] does not take.
    fn tensor_update(&mut self, params: &[Tensor], grads: &[Tensor], constants: &[StepConstants]) {
        let moments = self.exp_avg.iter_mut().zip(&mut self.exp_avg_sq);
        for (((p, grad), (m, v)), c) in params.iter().zip(grads).zip(moments).zip(constants) {
            if !grad.defined() {
                continue;
            }
            let grad = if c.grad_scale == 1.0 { grad.shallow_clone() } else { grad * f64::from(c.grad_scale) };
            let mut p = p.shallow_clone();
            let _ = p.g_mul_scalar_(f64::from(c.decay));
            let _ = m.lerp_(&grad, f64::from(c.lerp_weight));
            let _ = v.g_mul_scalar_(f64::from(c.beta2));
            let _ = v.addcmul_(&(&grad * f64::from(c.one_minus_beta2)), &grad);
            let mut denom = v.sqrt();
            let _ = denom.g_div_scalar_(f64::from(c.bias_correction2_sqrt));
            let _ = denom.g_add_scalar_(f64::from(c.eps));
            let _ = p.addcdiv_(&(&*m * f64::from(c.neg_step_size)), &denom);
        }
    }
}

/// The scalars of one AdamW step (see [`AdamW::step`]).
#[derive(Debug, Clone, Copy)]
struct StepConstants {
    /// The clipping coefficient the gradients are multiplied by.
    grad_scale: f32,
    /// `1 − lr · weight_decay`.
    decay: f32,
    /// `1 − β₁`, the weight of `lerp`.
    lerp_weight: f32,
    /// β₂.
    beta2: f32,
    /// `1 − β₂`.
    one_minus_beta2: f32,
    /// `√(1 − β₂ᵗ)`.
    bias_correction2_sqrt: f32,
    /// ε.
    eps: f32,
    /// `−lr / (1 − β₁ᵗ)`.
    neg_step_size: f32,
}

/// Elements per unit of work of [`fused_cpu_update`].
const CHUNK: usize = 1 << 15;

/// One parameter's tensors as slices: the parameter, its gradient, its two moments.
type Slices<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

/// AdamW over CPU tensors in one pass per element ([`update_elements`]), split in chunks across
/// libtorch's thread count, each parameter with its own constants (`constants`, in the order
/// of `params`). Returns false, touching nothing, unless every parameter with a gradient, the
/// gradient and both moments are contiguous fp32 CPU tensors of one size, and no two of them
/// share memory.
fn fused_cpu_update(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avg: &[Tensor],
    exp_avg_sq: &[Tensor],
    constants: &[StepConstants],
) -> bool {
    let mut used = Vec::new();
    for ((((p, g), m), v), c) in params.iter().zip(grads).zip(exp_avg).zip(exp_avg_sq).zip(constants) {
        if !g.defined() || p.numel() == 0 {
            continue;
        }
        let tensors = [p, g, m, v];
        if !tensors.iter().all(|t| {
            t.device() == tch::Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() && t.numel() == p.numel()
        }) {
            return false;
        }
        used.push((tensors, c));
    }
    let mut ranges: Vec<(usize, usize)> = used
        .iter()
        .flat_map(|(tensors, _)| tensors.iter())
        .map(|t| (t.data_ptr() as usize, t.data_ptr() as usize + 4 * t.numel()))
        .collect();
    ranges.sort_unstable();
    if ranges.windows(2).any(|w| w[1].0 < w[0].1) {
        return false;
    }
    let mut jobs: Vec<(Slices<'_>, &StepConstants)> = Vec::new();
    for ([p, g, m, v], c) in &used {
        // SAFETY: each tensor is a contiguous fp32 CPU tensor of `numel` elements (checked
        // above), so its data pointer addresses `numel` initialised f32s; no two of the tensors
        // overlap (checked above), so the mutable slices alias nothing; the tensors outlive the
        // slices (borrowed from `used` for this function), and nothing else touches them
        // meanwhile (libtorch runs no work on them outside this call; the gradient is read only).
        let (p, g, m, v) = unsafe {
            (
                std::slice::from_raw_parts_mut(p.data_ptr().cast::<f32>(), p.numel()),
                std::slice::from_raw_parts(g.data_ptr().cast::<f32>().cast_const(), g.numel()),
                std::slice::from_raw_parts_mut(m.data_ptr().cast::<f32>(), m.numel()),
                std::slice::from_raw_parts_mut(v.data_ptr().cast::<f32>(), v.numel()),
            )
        };
        jobs.extend(
            p.chunks_mut(CHUNK)
                .zip(g.chunks(CHUNK))
                .zip(m.chunks_mut(CHUNK))
                .zip(v.chunks_mut(CHUNK))
                .map(|(((p, g), m), v)| ((p, g, m, v), *c)),
        );
    }
    let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1);
    let per_thread = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for group in jobs.chunks_mut(per_thread) {
            scope.spawn(move || {
                for ((p, g, m, v), c) in group.iter_mut() {
                    update_elements(p, g, m, v, c);
                }
            });
        }
    });
    true
}

/// AdamW on slices, element by element in the order of PyTorch's operations
/// (`_single_tensor_adamw` after `clip_grad_norm_`): `g ← g·scale`; `p ← p·(1 − lr·wd)`;
/// `m ← lerp(m, g, 1 − β₁)`; `v ← v·β₂ + ((1 − β₂)·g)·g`; `p ← p + (−step·m) / (√v / √(1 − β₂ᵗ) + ε)`.
fn update_elements(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &StepConstants) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g * c.grad_scale;
        // ATen's lerp: `self + w·(end − self)` for |w| < 0.5, `end − (end − self)·(1 − w)` else
        *m = if c.lerp_weight.abs() < 0.5 {
            *m + c.lerp_weight * (g - *m)
        } else {
            g - (g - *m) * (1.0 - c.lerp_weight)
        };
        *v = *v * c.beta2 + c.one_minus_beta2 * g * g;
        let denom = v.sqrt() / c.bias_correction2_sqrt + c.eps;
        *p = *p * c.decay + c.neg_step_size * *m / denom;
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

/// `clip_grad_norm_`'s global L2 norm of the gradients and its coefficient
/// `min(max_norm / (norm + 1e-6), 1)` (computed in fp32, as PyTorch does), without scaling the
/// gradients: [`AdamW::step`] takes the coefficient. Returns `(norm, coefficient)`.
pub fn clip_coefficient(params: &[Tensor], max_norm: f64) -> (f64, f32) {
    let _guard = tch::no_grad_guard();
    let grads: Vec<Tensor> = params.iter().map(Tensor::grad).filter(Tensor::defined).collect();
    if grads.is_empty() {
        return (0.0, 1.0);
    }
    let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
    let total = Tensor::stack(&norms, 0).norm();
    let coefficient = (max_norm / (&total + 1e-6)).clamp_max(1.0);
    (total.to_kind(Kind::Double).double_value(&[]), coefficient.double_value(&[]) as f32)
}

/// `clip_grad_norm_`: scales all gradients so that their global L2 norm is at most
/// `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    let (norm, coefficient) = clip_coefficient(params, max_norm);
    let _guard = tch::no_grad_guard();
    for g in params.iter().map(Tensor::grad).filter(Tensor::defined) {
        let mut g = g.shallow_clone();
        let _ = g.g_mul_scalar_(f64::from(coefficient));
    }
    norm
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
        adam.step(std::slice::from_ref(&p), 0.1, 1.0);
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

    /// Parameters with gradients `grads` (set through a backward pass).
    fn with_gradients(values: &[Tensor], grads: &[Tensor]) -> Vec<Tensor> {
        let params: Vec<Tensor> = values.iter().map(|v| v.copy().set_requires_grad(true)).collect();
        let loss =
            params.iter().zip(grads).map(|(p, g)| (p * g).sum(Kind::Float)).fold(Tensor::from(0f32), |a, b| a + b);
        loss.backward();
        params
    }

    #[test]
    fn the_one_pass_cpu_update_equals_the_tensor_operations() {
        tch::manual_seed(3);
        let values: Vec<Tensor> =
            [70_001i64, 5, 40_000].iter().map(|&n| Tensor::randn([n], (Kind::Float, Device::Cpu))).collect();
        let initial: Vec<Tensor> = values.iter().map(Tensor::copy).collect();
        let (mut fused, mut ops): (Vec<Tensor>, Vec<Tensor>) = (values.iter().map(Tensor::copy).collect(), values);
        // three parameter groups: the run's rate with weight decay, a decayed rate without
        let groups = vec![
            ParamGroup { lr_scale: 1.0, weight_decay: 0.01 },
            ParamGroup { lr_scale: 0.5, weight_decay: 0.0 },
            ParamGroup { lr_scale: 0.81, weight_decay: 0.01 },
        ];
        let mut one_pass = AdamW::grouped(&fused, groups.clone());
        let mut tensor_ops = AdamW::grouped(&ops, groups);
        for step in 0..3 {
            let grads: Vec<Tensor> = fused.iter().map(Tensor::randn_like).collect();
            let (a, b) = (with_gradients(&fused, &grads), with_gradients(&ops, &grads));
            let scale = [1.0f32, 0.37, 0.9][step];
            let (ga, gb): (Vec<Tensor>, Vec<Tensor>) =
                (a.iter().map(Tensor::grad).collect(), b.iter().map(Tensor::grad).collect());
            one_pass.steps += 1;
            tensor_ops.steps += 1;
            let c = one_pass.step_constants(1e-3, scale);
            let _guard = tch::no_grad_guard();
            assert!(
                fused_cpu_update(&a, &ga, &one_pass.exp_avg, &one_pass.exp_avg_sq, &c),
                "the CPU path was not taken"
            );
            tensor_ops.tensor_update(&b, &gb, &tensor_ops.step_constants(1e-3, scale));
            fused = a.iter().map(|t| t.detach().copy()).collect();
            ops = b.iter().map(|t| t.detach().copy()).collect();
        }
        for (((x, y), (mx, my)), (vx, vy)) in fused
            .iter()
            .zip(&ops)
            .zip(one_pass.exp_avg.iter().zip(&tensor_ops.exp_avg))
            .zip(one_pass.exp_avg_sq.iter().zip(&tensor_ops.exp_avg_sq))
        {
            for (u, w, what) in [(x, y, "weights"), (mx, my, "first moments"), (vx, vy, "second moments")] {
                let gap = (u - w).abs().max().double_value(&[]);
                assert!(gap <= 1e-6, "{what} differ by {gap}");
            }
        }
        let moved = (&fused[0] - &initial[0]).abs().mean(Kind::Float).double_value(&[]);
        assert!(moved > 1e-4, "three steps left a weight where it was");
    }

    #[test]
    fn tensors_sharing_memory_or_not_contiguous_take_the_tensor_operations() {
        let base = Tensor::randn([64], (Kind::Float, Device::Cpu));
        let grads = [Tensor::ones([32], (Kind::Float, Device::Cpu)), Tensor::ones([32], (Kind::Float, Device::Cpu))];
        let shared = [base.narrow(0, 0, 32), base.narrow(0, 16, 32)];
        let moments: Vec<Tensor> = shared.iter().map(Tensor::zeros_like).collect();
        let adam = AdamW::new(&shared, 0.0);
        let c = adam.step_constants(1e-3, 1.0);
        assert!(!fused_cpu_update(&shared, &grads, &moments, &adam.exp_avg_sq, &c), "overlapping tensors were fused");
        let strided = [Tensor::randn([8, 8], (Kind::Float, Device::Cpu)).transpose(0, 1)];
        let grads = [Tensor::ones([8, 8], (Kind::Float, Device::Cpu))];
        let adam = AdamW::new(&strided, 0.0);
        let c = adam.step_constants(1e-3, 1.0);
        assert!(!fused_cpu_update(&strided, &grads, &adam.exp_avg, &adam.exp_avg_sq, &c), "a strided tensor was fused");
    }

    #[test]
    fn a_parameter_group_steps_as_a_lone_optimiser_at_its_scaled_rate() {
        tch::manual_seed(5);
        let values: Vec<Tensor> = (0..2).map(|_| Tensor::randn([1000], (Kind::Float, Device::Cpu))).collect();
        let groups =
            vec![ParamGroup { lr_scale: 1.0, weight_decay: 0.01 }, ParamGroup { lr_scale: 0.3, weight_decay: 0.0 }];
        let mut grouped: Vec<Tensor> = values.iter().map(Tensor::copy).collect();
        let mut alone: Vec<Tensor> = values.iter().map(Tensor::copy).collect();
        let mut together = AdamW::grouped(&grouped, groups);
        let mut first = AdamW::new(&alone[..1], 0.01);
        let mut second = AdamW::new(&alone[1..], 0.0);
        for _ in 0..3 {
            let grads: Vec<Tensor> = values.iter().map(Tensor::randn_like).collect();
            let (a, b) = (with_gradients(&grouped, &grads), with_gradients(&alone, &grads));
            together.step(&a, 2e-3, 1.0);
            first.step(&b[..1], 2e-3, 1.0);
            second.step(&b[1..], 2e-3 * 0.3, 1.0);
            grouped = a.iter().map(|t| t.detach().copy()).collect();
            alone = b.iter().map(|t| t.detach().copy()).collect();
        }
        for (x, y) in grouped.iter().zip(&alone) {
            let gap = (x - y).abs().max().double_value(&[]);
            assert!(gap <= 1e-7, "grouped and lone updates differ by {gap}");
        }
        let moved: Vec<f64> =
            grouped.iter().zip(&values).map(|(x, v)| (x - v).abs().mean(Kind::Float).double_value(&[])).collect();
        assert!(moved[1] < 0.5 * moved[0], "the group at 0.3 of the rate moved as far as the other: {moved:?}");
    }
}
