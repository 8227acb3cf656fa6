//! Reading an NLI model directory: the network (through the shared classifier loader), the
//! label layout, the tokenizer with premise-only truncation.

use std::path::Path;

use rust_bert::bert::{BertConfig, BertForSequenceClassification};
use rust_bert::deberta_v2::{DebertaV2Config, DebertaV2ForSequenceClassification};
use rust_bert::distilbert::{DistilBertConfig, DistilBertModelClassifier};
use rust_bert::roberta::RobertaForSequenceClassification;
use rust_bert::RustBertError;
use tch::nn;
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use super::{nli_indices, NliOptions, NliTopicScorer};
use crate::error::ModelError;
use crate::model::arch::ClassifierConfig;
use crate::model::classifier::{load_classifier, ClassifierFamily, LoadedClassifier};
use crate::topics::taxonomy::TopicTaxonomy;

// one value per loaded model: the size difference between variants costs nothing
#[allow(clippy::large_enum_variant)]
pub(super) enum Network {
    Bert(BertForSequenceClassification),
    Roberta(RobertaForSequenceClassification),
    DistilBert(DistilBertModelClassifier),
    DebertaV2(DebertaV2ForSequenceClassification),
}

impl ClassifierFamily for Network {
    fn bert(root: &nn::Path, config: &BertConfig) -> Result<Self, RustBertError> {
        Ok(Network::Bert(BertForSequenceClassification::new(root, config)?))
    }
    fn roberta(root: &nn::Path, config: &BertConfig) -> Result<Self, RustBertError> {
        Ok(Network::Roberta(RobertaForSequenceClassification::new(root, config)?))
    }
    fn distilbert(root: &nn::Path, config: &DistilBertConfig) -> Result<Self, RustBertError> {
        Ok(Network::DistilBert(DistilBertModelClassifier::new(root, config)?))
    }
    fn deberta_v2(root: &nn::Path, config: &DebertaV2Config) -> Result<Self, RustBertError> {
        Ok(Network::DebertaV2(DebertaV2ForSequenceClassification::new(root, config)?))
    }
}

impl NliTopicScorer {
    /// Loads a sequence-classification NLI model directory. Its label layout and the
    /// taxonomy's templates are checked before the weights are read.
    pub fn load(dir: &Path, taxonomy: TopicTaxonomy, options: NliOptions) -> Result<Self, ModelError> {
        let device = options.device.to_tch()?;
        let (entailment, contradiction) = check_layout(dir, &taxonomy, &options)?;
        let loaded = load_classifier::<Network>(dir, device)?;
        let (max_positions, pad) = (loaded.max_position_embeddings(), loaded.pad_token_id());
        let LoadedClassifier { network, vs, config } = loaded;
        let max_length = options.max_length.min(config.architecture.usable_positions(max_positions));
        let tokenizer = premise_truncating_tokenizer(dir, max_length)?;
        Ok(NliTopicScorer {
            network,
            _vs: vs,
            device,
            tokenizer,
            taxonomy,
            entailment,
            contradiction,
            pad,
            max_length,
            options,
        })
    }
}

/// The entailment and contradiction indices of the model in `dir`, checked against what the
/// options and taxonomy need (a contradiction class for multi-label, a template per language).
fn check_layout(
    dir: &Path,
    taxonomy: &TopicTaxonomy,
    options: &NliOptions,
) -> Result<(usize, Option<usize>), ModelError> {
    let config_path = dir.join("config.json");
    let ClassifierConfig { id2label, .. } = ClassifierConfig::read(dir)?;
    let (entailment, contradiction) = nli_indices(&id2label).ok_or_else(|| ModelError::Config {
        path: config_path.clone(),
        message: format!(
            "the model's labels {:?} name no entailment class: not an NLI model",
            id2label.values().collect::<Vec<_>>()
        ),
    })?;
    if options.multi_label && contradiction.is_none() {
        return Err(ModelError::Config {
            path: config_path,
            message: "multi-label scoring needs a contradiction (or not-entailment) class".into(),
        });
    }
    if let Some(lang) = taxonomy.languages.iter().find(|l| !taxonomy.templates.contains_key(*l)) {
        return Err(ModelError::Config {
            path: dir.into(),
            message: format!("the taxonomy has no NLI template for {lang:?} (templates.{lang})"),
        });
    }
    Ok((entailment, contradiction))
}

/// `dir/tokenizer.json`, truncating only the premise (the first sequence) to `max_length`.
fn premise_truncating_tokenizer(dir: &Path, max_length: usize) -> Result<tokenizers::Tokenizer, ModelError> {
    let path = dir.join("tokenizer.json");
    let mut tokenizer = tokenizers::Tokenizer::from_file(&path)
        .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            strategy: TruncationStrategy::OnlyFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}
