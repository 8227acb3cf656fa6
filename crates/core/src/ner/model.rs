//! The token-classification models Postilla runs: rust-bert's architectures on tch, loaded
//! from a Hugging Face directory (config.json with `model_type` and `id2label`,
//! `model.safetensors` or rust-bert `rust_model.ot`).

use std::collections::BTreeMap;
use std::path::Path;

use rust_bert::bert::{BertConfig, BertForTokenClassification};
use rust_bert::deberta_v2::{DebertaV2Config, DebertaV2ForTokenClassification};
use rust_bert::distilbert::{DistilBertConfig, DistilBertForTokenClassification};
use rust_bert::roberta::RobertaForTokenClassification;
use rust_bert::RustBertError;
use tch::{nn, Device, Tensor};

use crate::error::ModelError;
use crate::model::arch::Architecture;
use crate::model::classifier::{load_classifier, ClassifierFamily, LoadedClassifier};
use crate::model::encoder::{window_lengths, Engine, FusedEncoder, MatmulKernel, Positions};
use crate::model::precision::Precision;

// one value per loaded model: the size difference between variants costs nothing
#[allow(clippy::large_enum_variant)]
enum Network {
    Bert(BertForTokenClassification),
    Roberta(RobertaForTokenClassification),
    DistilBert(DistilBertForTokenClassification),
    DebertaV2(DebertaV2ForTokenClassification),
}

impl ClassifierFamily for Network {
    fn bert(root: &nn::Path, config: &BertConfig) -> Result<Self, RustBertError> {
        Ok(Network::Bert(BertForTokenClassification::new(root, config)?))
    }
    fn roberta(root: &nn::Path, config: &BertConfig) -> Result<Self, RustBertError> {
        Ok(Network::Roberta(RobertaForTokenClassification::new(root, config)?))
    }
    fn distilbert(root: &nn::Path, config: &DistilBertConfig) -> Result<Self, RustBertError> {
        Ok(Network::DistilBert(DistilBertForTokenClassification::new(root, config)?))
    }
    fn deberta_v2(root: &nn::Path, config: &DebertaV2Config) -> Result<Self, RustBertError> {
        Ok(Network::DebertaV2(DebertaV2ForTokenClassification::new(root, config)?))
    }
}

/// A loaded token classifier.
pub struct TokenClassifier {
    network: Network,
    /// The fused forward (BERT, XLM-R) with the classifier's weight and bias, when in use.
    fused: Option<(FusedEncoder, Tensor, Tensor)>,
    vs: nn::VarStore,
    /// Architecture.
    pub architecture: Architecture,
    /// `id2label` from config.json.
    pub id2label: BTreeMap<i64, String>,
    /// `max_position_embeddings` from config.json.
    pub max_position_embeddings: usize,
    /// `pad_token_id` from config.json (0 when absent).
    pub pad_token_id: i64,
}

impl TokenClassifier {
    /// Loads a model directory onto `device`; `engine` chooses the forward pass of BERT and
    /// XLM-R models (see [`crate::model::encoder`]), `precision` its precision
    /// ([`crate::model::resolve_precision`]: [`Precision::Auto`] resolved for this processor,
    /// a precision the processor cannot run refused; fp32 where only rust-bert's forward runs).
    /// An explicit precision other than fp32 needs the fused forward
    /// ([`ModelError::UnsupportedPrecision`] otherwise).
    pub fn load(dir: &Path, device: Device, engine: Engine, precision: Precision) -> Result<Self, ModelError> {
        let asked = precision;
        let precision = crate::model::resolve_precision(asked, device)?;
        let loaded = load_classifier::<Network>(dir, device)?;
        let (max_position_embeddings, pad_token_id) = (loaded.max_position_embeddings(), loaded.pad_token_id());
        let LoadedClassifier { network, vs, config } = loaded;
        let (architecture, id2label, config) = (config.architecture, config.id2label, config.config);
        let fused = match (engine, architecture) {
            (Engine::Fused(kernel), Architecture::Bert) => {
                fused_encoder(&vs, &config, "bert", Positions::Absolute, kernel, precision)?
            }
            (Engine::Fused(kernel), Architecture::XlmRoberta) => {
                fused_encoder(&vs, &config, "roberta", Positions::AfterPadding(pad_token_id), kernel, precision)?
            }
            _ => None,
        };
        crate::model::check_forward_precision(asked, precision, fused.is_some(), || {
            format!("{} runs {architecture:?} models through rust-bert's forward, which is fp32 only", dir.display())
        })?;
        Ok(TokenClassifier { network, fused, vs, architecture, id2label, max_position_embeddings, pad_token_id })
    }

    /// Whether the fused forward is in use.
    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// The kernel of the fused forward's linear layers (resolved), when it is in use.
    pub fn matmul_kernel(&self) -> Option<MatmulKernel> {
        self.fused.as_ref().map(|(encoder, _, _)| encoder.kernel())
    }

    /// The precision of the forward.
    pub fn precision(&self) -> Precision {
        self.fused.as_ref().map_or(Precision::Fp32, |(encoder, _, _)| encoder.precision())
    }

    /// Logits `[batch, length, classes]` for a (right-)padded batch.
    pub fn logits(&self, input_ids: &Tensor, mask: &Tensor) -> Result<Tensor, ModelError> {
        if let Some((encoder, weight, bias)) = &self.fused {
            let hidden = encoder.forward(input_ids, mask)?;
            return Ok(match encoder.precision() {
                Precision::Int8 => head_per_window(&hidden, mask, weight, bias)?,
                _ => hidden.linear(weight, Some(bias)),
            });
        }
        Ok(match &self.network {
            Network::Bert(m) => m.forward_t(Some(input_ids), Some(mask), None, None, None, false).logits,
            Network::Roberta(m) => m.forward_t(Some(input_ids), Some(mask), None, None, None, false).logits,
            Network::DistilBert(m) => m.forward_t(Some(input_ids), Some(mask), None, false)?.logits,
            Network::DebertaV2(m) => m.forward_t(Some(input_ids), Some(mask), None, None, None, false)?.logits,
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }
}

/// The classification head applied to each window's real tokens alone (zeros at padding), so
/// that each window's product has the same shape whatever the batch: the int8 encoder's output
/// for a window does not depend on its batch, and this keeps the logits so (a BLAS product over
/// the whole batch may take another code path for another row count).
fn head_per_window(hidden: &Tensor, mask: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor, ModelError> {
    let size = hidden.size();
    let logits = Tensor::f_zeros([size[0], size[1], weight.size()[0]], (hidden.kind(), hidden.device()))?;
    for (b, &n) in window_lengths(mask)?.iter().enumerate().filter(|(_, &n)| n > 0) {
        let rows = hidden.f_get(b as i64)?.f_narrow(0, 0, n)?.f_linear(weight, Some(bias))?;
        logits.f_get(b as i64)?.f_narrow(0, 0, n)?.f_copy_(&rows)?;
    }
    Ok(logits)
}

/// The fused encoder over a classifier's var store (encoder under `prefix`, head `classifier`).
fn fused_encoder(
    vs: &nn::VarStore,
    config: &serde_json::Value,
    prefix: &str,
    positions: Positions,
    kernel: MatmulKernel,
    precision: Precision,
) -> Result<Option<(FusedEncoder, Tensor, Tensor)>, ModelError> {
    let Some(encoder) = FusedEncoder::from_var_store(vs, config, prefix, positions, kernel, precision)? else {
        return Ok(None);
    };
    let variables = vs.variables();
    Ok(variables
        .get("classifier.weight")
        .zip(variables.get("classifier.bias"))
        .map(|(weight, bias)| (encoder, weight.shallow_clone(), bias.shallow_clone())))
}
