//! The model being trained: rust-bert's token-classification network (the one inference
//! loads, [`crate::ner::model`]) built from a base directory, and one optimisation step on
//! tch's autograd (forward in training mode, the partial-label loss, backward, clipping,
//! AdamW, schedule).

use std::collections::BTreeMap;
use std::path::Path;

use rust_bert::bert::{BertConfig, BertForTokenClassification};
use rust_bert::roberta::RobertaForTokenClassification;
use tch::{nn, Device, Kind, Tensor};

use super::batches::TrainBatch;
use super::error::TrainError;
use super::optim::{clip_coefficient, AdamW, LinearSchedule, ParamGroup};
use super::options::TrainPrecision;
use crate::build::hf_export::{write_pt_safetensors, F32Tensor};
use crate::model::arch::{parse_config, Architecture};
use crate::model::encoder::{linear_autocast_bf16, Dropout, FusedEncoder, Positions};
use crate::model::weights::load_weights_available;
use crate::model::Engine;
use crate::model::{read_config, weights_file};

/// How the model is set up and stepped.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerSettings {
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Layer-wise learning-rate decay d (1 = off): see [`parameter_groups`].
    pub layer_decay: f64,
    /// Gradient clipping norm.
    pub clip_norm: f64,
    /// The schedule over the whole run.
    pub schedule: LinearSchedule,
    /// Keep the word embeddings fixed.
    pub freeze_embeddings: bool,
    /// Dropout override (hidden, attention, classifier).
    pub dropout: Option<f64>,
    /// Seed of the head's initialisation.
    pub seed: u64,
    /// The forward: rust-bert's `forward_t`, or Postilla's fused forward for BERT and XLM-R
    /// (the same function with fused attention and GELU).
    pub engine: Engine,
    /// bf16 autocast (fused forward only; see [`FusedEncoder::for_training`]) or fp32.
    pub precision: TrainPrecision,
}

// one value per run: the size difference between variants costs nothing
#[allow(clippy::large_enum_variant)]
enum Network {
    Bert(BertForTokenClassification),
    Roberta(RobertaForTokenClassification),
}

/// A token classifier under training.
pub struct Trainer {
    network: Network,
    /// The fused forward over the same variables, with the dropout probabilities, when used.
    fused: Option<FusedTraining>,
    vs: nn::VarStore,
    /// Names of the trained parameters, sorted (the order of `params` and of the moments).
    names: Vec<String>,
    params: Vec<Tensor>,
    /// The optimiser and its moments.
    pub optimizer: AdamW,
    settings: TrainerSettings,
    config: serde_json::Value,
    /// Whether the classification head was initialised here (the base had none for these
    /// labels) rather than read from the base.
    pub head_initialised: bool,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("parameters", &self.names.len()).field("steps", &self.optimizer.steps).finish()
    }
}

/// The fused forward of a trainer and its dropout.
struct FusedTraining {
    encoder: FusedEncoder,
    dropout: Dropout,
    classifier_dropout: f64,
    /// The head's weight and bias (shared with the var store).
    classifier: (Tensor, Tensor),
}

impl FusedTraining {
    /// The fused forward for `architecture` over `vs`, when the settings and model allow it.
    fn new(vs: &nn::VarStore, config: &serde_json::Value, architecture: Architecture, bf16: bool) -> Option<Self> {
        let (prefix, positions) = match architecture {
            Architecture::Bert => ("bert", Positions::Absolute),
            _ => ("roberta", Positions::AfterPadding(config.get("pad_token_id").and_then(|v| v.as_i64()).unwrap_or(1))),
        };
        let encoder = FusedEncoder::for_training(vs, config, prefix, positions, bf16)?;
        let p = |key: &str| config.get(key).and_then(|v| v.as_f64());
        let hidden = p("hidden_dropout_prob").unwrap_or(0.1);
        let dropout = Dropout { hidden, attention: p("attention_probs_dropout_prob").unwrap_or(0.1) };
        let variables = vs.variables();
        let classifier =
            (variables.get("classifier.weight")?.shallow_clone(), variables.get("classifier.bias")?.shallow_clone());
        Some(FusedTraining {
            encoder,
            dropout,
            classifier_dropout: p("classifier_dropout").unwrap_or(hidden),
            classifier,
        })
    }
}

fn base_error(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Base { path: path.into(), message: message.into() }
}

/// config.json of the trained model: the base's, with the labels, the task architecture and
/// the dropout override.
fn trained_config(
    base: &Path,
    labels: &[String],
    dropout: Option<f64>,
) -> Result<(serde_json::Value, Architecture, bool), TrainError> {
    let mut config = read_config(base)?;
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let architecture = match Architecture::from_model_type(&model_type) {
        Some(a @ (Architecture::Bert | Architecture::XlmRoberta)) => a,
        _ => {
            return Err(base_error(
                base,
                format!("model_type {model_type:?}: postilla train trains bert and xlm-roberta models"),
            ))
        }
    };
    let id2label: BTreeMap<String, String> =
        labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone())).collect();
    let keeps_head =
        config.get("id2label").and_then(|v| serde_json::from_value::<BTreeMap<String, String>>(v.clone()).ok())
            == Some(id2label.clone());
    let obj = config.as_object_mut().ok_or_else(|| base_error(base, "config.json is not an object"))?;
    let task = if architecture == Architecture::Bert {
        "BertForTokenClassification"
    } else {
        "XLMRobertaForTokenClassification"
    };
    obj.insert("architectures".into(), serde_json::json!([task]));
    obj.insert("id2label".into(), serde_json::json!(id2label));
    let label2id: BTreeMap<&str, usize> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    obj.insert("label2id".into(), serde_json::json!(label2id));
    if let Some(p) = dropout {
        for key in ["hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"] {
            obj.insert(key.into(), serde_json::json!(p));
        }
    }
    Ok((config, architecture, keeps_head))
}

/// Refuses bf16 training where it cannot run: with rust-bert's forward (fp32 only), or on a CPU
/// without bf16 instructions (oneDNN would emulate bf16, several times slower than fp32).
/// [`Trainer::new`] checks it; so does [`crate::train::train_ner`] before it prepares the data.
pub fn check_precision(precision: TrainPrecision, engine: Engine, device: Device) -> Result<(), TrainError> {
    if precision != TrainPrecision::Bf16 {
        return Ok(());
    }
    if engine == Engine::RustBert {
        return Err(TrainError::Options(
            "--precision bf16 runs in the fused forward: add --engine fused (rust-bert's forward trains in fp32)"
                .into(),
        ));
    }
    crate::model::resolve_precision(crate::model::Precision::Bf16, device)
        .map(|_| ())
        .map_err(|e| TrainError::Options(e.to_string()))
}

/// Each trained parameter's [`ParamGroup`], as `training/train_ner.py`'s `parameter_groups`
/// forms them. With layer-wise learning-rate decay d < 1 (ELECTRA, BEiT) encoder layer l of
/// `layers` learns at d^(layers − l) of the run's rate, the embeddings (position, type, layer
/// norm) at d^(layers + 1), the classification head at the full rate; biases and layer norms
/// get no weight decay, the other weights `weight_decay`. d = 1 is one group: the full rate and
/// `weight_decay` for everything.
///
/// ```
/// use postilla_core::train::trainer::parameter_groups;
/// let names = ["bert.embeddings.LayerNorm.weight", "bert.encoder.layer.1.output.dense.weight", "classifier.bias"];
/// let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
/// let g = parameter_groups(&names, 2, 0.5, 0.01);
/// assert_eq!([g[0].lr_scale, g[1].lr_scale, g[2].lr_scale], [0.125, 0.5, 1.0]);
/// assert_eq!([g[0].weight_decay, g[1].weight_decay, g[2].weight_decay], [0.0, 0.01, 0.0]);
/// assert!(parameter_groups(&names, 2, 1.0, 0.01).iter().all(|g| g.lr_scale == 1.0 && g.weight_decay == 0.01));
/// ```
pub fn parameter_groups(names: &[String], layers: usize, layer_decay: f64, weight_decay: f64) -> Vec<ParamGroup> {
    if layer_decay >= 1.0 {
        return vec![ParamGroup { lr_scale: 1.0, weight_decay }; names.len()];
    }
    names
        .iter()
        .map(|name| {
            let depth = if let Some(rest) = name.split_once(".encoder.layer.").map(|(_, rest)| rest) {
                let layer = rest.split('.').next().and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
                layers.saturating_sub(layer)
            } else if name.contains(".embeddings.") {
                layers + 1
            } else {
                0
            };
            let decays = !(name.ends_with(".bias") || name.contains("LayerNorm"));
            ParamGroup {
                lr_scale: layer_decay.powi(depth as i32),
                weight_decay: if decays { weight_decay } else { 0.0 },
            }
        })
        .collect()
}

impl Trainer {
    /// Builds the network for `labels` (IOB2, `O` first) from the base directory: encoder
    /// weights from the base, the head from the base when it has exactly these labels, else
    /// initialised as transformers does (normal, σ = `initializer_range`; zero bias).
    pub fn new(base: &Path, labels: &[String], settings: TrainerSettings, device: Device) -> Result<Self, TrainError> {
        check_precision(settings.precision, settings.engine, device)?;
        let (config, architecture, keeps_head) = trained_config(base, labels, settings.dropout)?;
        let weights = weights_file(base)?;
        if weights.extension().and_then(|e| e.to_str()) != Some("safetensors") {
            return Err(base_error(base, "training reads model.safetensors weights"));
        }
        tch::manual_seed(settings.seed as i64);
        let mut vs = nn::VarStore::new(device);
        let network = match architecture {
            Architecture::Bert => Network::Bert(
                BertForTokenClassification::new(vs.root(), &parse_config::<BertConfig>(base, &config)?)
                    .map_err(crate::ModelError::from)?,
            ),
            _ => Network::Roberta(
                RobertaForTokenClassification::new(vs.root(), &parse_config::<BertConfig>(base, &config)?)
                    .map_err(crate::ModelError::from)?,
            ),
        };
        let missing = load_weights_available(&mut vs, &weights, |n| !keeps_head && n.starts_with("classifier."))?;
        if !missing.is_empty() {
            return Err(base_error(
                base,
                format!("the base weights lack {} (is it a {architecture:?} model?)", missing.join(", ")),
            ));
        }
        if !keeps_head {
            init_head(&vs, &config);
        }
        let mut names = Vec::new();
        let mut params = Vec::new();
        let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        for (name, var) in variables {
            let frozen = settings.freeze_embeddings && name.ends_with("embeddings.word_embeddings.weight");
            let _ = var.set_requires_grad(!frozen);
            if !frozen {
                names.push(name);
                params.push(var);
            }
        }
        let layers = config.get("num_hidden_layers").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        let optimizer =
            AdamW::grouped(&params, parameter_groups(&names, layers, settings.layer_decay, settings.weight_decay));
        let bf16 = settings.precision == TrainPrecision::Bf16;
        let fused = match settings.engine {
            Engine::Fused(_) => FusedTraining::new(&vs, &config, architecture, bf16),
            Engine::RustBert => None,
        };
        if bf16 && fused.is_none() {
            return Err(TrainError::Options(format!(
                "--precision bf16 runs in the fused forward (--engine fused), which does not cover this base \
                 (hidden_act {:?}); train in fp32",
                config.get("hidden_act").and_then(|v| v.as_str()).unwrap_or("?")
            )));
        }
        Ok(Trainer { network, fused, vs, names, params, optimizer, settings, config, head_initialised: !keeps_head })
    }

    /// Logits `[rows, width, labels]`; `train` switches dropout on.
    pub fn logits(&self, batch: &TrainBatch, train: bool) -> Result<Tensor, TrainError> {
        if let Some(f) = &self.fused {
            let dropout = train.then_some(f.dropout);
            let hidden = f.encoder.forward_t(&batch.input_ids, &batch.attention_mask, dropout)?;
            let hidden =
                if train && f.classifier_dropout > 0.0 { hidden.dropout(f.classifier_dropout, true) } else { hidden };
            let (weight, bias) = &f.classifier;
            if f.encoder.autocast_bf16() {
                return Ok(linear_autocast_bf16(&hidden, weight, bias)?);
            }
            return Ok(hidden.linear(weight, Some(bias)));
        }
        let (ids, mask) = (Some(&batch.input_ids), Some(&batch.attention_mask));
        Ok(match &self.network {
            Network::Bert(m) => m.forward_t(ids, mask, None, None, None, train).logits,
            Network::Roberta(m) => m.forward_t(ids, mask, None, None, None, train).logits,
        })
    }

    /// Whether the fused forward is in use.
    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// One optimisation step on `batch`; returns the loss before the update.
    pub fn step(&mut self, batch: &TrainBatch) -> Result<f64, TrainError> {
        let loss = partial_label_loss(&self.logits(batch, true)?, &batch.allowed);
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(TrainError::Diverged { step: self.optimizer.steps as usize + 1, loss: value });
        }
        loss.backward();
        let (_, grad_scale) = clip_coefficient(&self.params, self.settings.clip_norm);
        let lr = self.settings.lr * self.settings.schedule.factor(self.optimizer.steps as usize);
        self.optimizer.step(&self.params, lr, grad_scale);
        for p in &mut self.params {
            p.zero_grad();
        }
        Ok(value)
    }

    /// Copies of the trained parameters by name.
    pub fn trained_state(&self) -> Vec<(String, Tensor)> {
        self.names.iter().cloned().zip(self.params.iter().map(|p| p.detach().copy())).collect()
    }

    /// The optimiser's moments by name (`exp_avg.NAME`, `exp_avg_sq.NAME`).
    pub fn optimizer_state(&self) -> Vec<(String, Tensor)> {
        let moments = |prefix: &str, ts: &[Tensor]| -> Vec<(String, Tensor)> {
            self.names.iter().map(|n| format!("{prefix}.{n}")).zip(ts.iter().map(Tensor::copy)).collect()
        };
        let mut out = moments("exp_avg", &self.optimizer.exp_avg);
        out.extend(moments("exp_avg_sq", &self.optimizer.exp_avg_sq));
        out
    }

    /// Sets the trained parameters (and, when the tensors hold them, the optimiser's moments)
    /// from named tensors; every trained parameter must be there.
    pub fn load_state(&mut self, named: &BTreeMap<String, Tensor>, with_moments: bool) -> Result<(), String> {
        let _guard = tch::no_grad_guard();
        for (i, name) in self.names.iter().enumerate() {
            let value = named.get(name).ok_or_else(|| format!("no tensor {name}"))?;
            self.params[i].f_copy_(value).map_err(|e| e.to_string())?;
            if with_moments {
                for (prefix, target) in
                    [("exp_avg", &mut self.optimizer.exp_avg[i]), ("exp_avg_sq", &mut self.optimizer.exp_avg_sq[i])]
                {
                    let m =
                        named.get(&format!("{prefix}.{name}")).ok_or_else(|| format!("no tensor {prefix}.{name}"))?;
                    target.f_copy_(m).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Every variable of the network by name, sorted (what `model.safetensors` holds).
    pub fn all_variables(&self) -> Vec<(String, Tensor)> {
        let sorted: BTreeMap<String, Tensor> = self.vs.variables().into_iter().collect();
        sorted.into_iter().map(|(n, t)| (n, t.detach().to_device(Device::Cpu).contiguous())).collect()
    }

    /// Writes the network as a Hugging Face token-classification directory: config.json and
    /// model.safetensors (fp32); the tokenizer files are copied by the caller.
    pub fn save_model(&self, dir: &Path) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let config = serde_json::to_string_pretty(&self.config).map_err(|e| TrainError::Options(e.to_string()))?;
        std::fs::write(dir.join("config.json"), config + "\n")
            .map_err(|e| TrainError::io(dir.join("config.json"), e))?;
        write_safetensors(&self.all_variables(), &dir.join("model.safetensors"))
    }

    /// The trained parameters' names.
    pub fn trained_names(&self) -> &[String] {
        &self.names
    }
}

/// Writes the variables as an fp32 `model.safetensors` (transformers' `format: pt`).
fn write_safetensors(variables: &[(String, Tensor)], path: &Path) -> Result<(), TrainError> {
    let mut tensors = Vec::with_capacity(variables.len());
    for (name, t) in variables {
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let values = Vec::<f32>::try_from(t.to_kind(Kind::Float).view([-1]))?;
        tensors.push((name.clone(), F32Tensor::from_values(shape, &values)));
    }
    Ok(write_pt_safetensors(tensors.iter().map(|(k, v)| (k, v)), path)?)
}

/// transformers' initialisation of a new head: weight ~ N(0, initializer_range²), bias 0.
fn init_head(vs: &nn::VarStore, config: &serde_json::Value) {
    let std = config.get("initializer_range").and_then(|v| v.as_f64()).unwrap_or(0.02);
    let _guard = tch::no_grad_guard();
    for (name, mut var) in vs.variables() {
        if name == "classifier.weight" {
            let values = Tensor::randn(var.size(), (Kind::Float, var.device())) * std;
            var.copy_(&values.to_kind(var.kind()));
        } else if name == "classifier.bias" {
            let _ = var.zero_();
        }
    }
}

/// Cross-entropy where a token may allow several labels: `-log Σ_{l allowed} p(l)` averaged
/// over the scored tokens (one allowed label: ordinary cross-entropy; `O` or a missing type:
/// the partial label of training/train_ner.py). Tokens with no allowed label are not scored.
pub fn partial_label_loss(logits: &Tensor, allowed: &Tensor) -> Tensor {
    let logp = logits.to_kind(Kind::Float).log_softmax(-1, Kind::Float);
    let scored = allowed.any_dim(-1, false);
    // unscored tokens allow everything (a finite value and gradient), then count for nothing
    let effective = allowed.logical_or(&scored.logical_not().unsqueeze(-1));
    let per_token = logp.masked_fill(&effective.logical_not(), f64::NEG_INFINITY).logsumexp([-1], false);
    let total = (per_token * scored.to_kind(Kind::Float)).sum(Kind::Float);
    -total / scored.to_kind(Kind::Float).sum(Kind::Float).clamp_min(1.0)
}
