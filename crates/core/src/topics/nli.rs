//! The NLI method: any Hugging Face sequence-classification NLI model as a zero-shot topic
//! classifier (premise = the document, hypothesis = the language's template filled with the
//! topic's label), correct whatever the model's label layout.
//!
//! * The entailment index is read from `id2label` (a label starting with "entail"); a model
//!   without one is refused. The contradiction index is the label starting with "contradict",
//!   else "not_entailment"/"non_entailment", else — for two-class models — the other class.
//! * Single-label: softmax over the topics' entailment logits. Multi-label: per topic, softmax
//!   over [contradiction, entailment], the entailment probability (Hugging Face's semantics).
//! * Only the premise is truncated (`only_first`); (chunk × topic) pairs are batched, sorted by
//!   length.
//! * Long documents are split at sentence boundaries into chunks that fit the model with the
//!   longest hypothesis; each topic's score is aggregated over chunks by `mean` (default) or
//!   `max` (single-label scores are renormalised to sum to 1 after `max`).

use std::path::Path;

use rust_bert::bert::{BertConfig, BertForSequenceClassification};
use rust_bert::deberta_v2::{DebertaV2Config, DebertaV2ForSequenceClassification};
use rust_bert::distilbert::{DistilBertConfig, DistilBertModelClassifier};
use rust_bert::roberta::RobertaForSequenceClassification;
use tch::{nn, Device, Kind};
use tokenizers::{EncodeInput, TruncationDirection, TruncationParams, TruncationStrategy};

use super::taxonomy::TopicTaxonomy;
use crate::error::ModelError;
use crate::model::arch::{parse_config, Architecture, ClassifierConfig};
use crate::model::batch::{pad_rows, PaddedBatch};
use crate::model::weights::load_weights;
use crate::model::{weights_file, DeviceChoice};

/// How chunk scores are combined per topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkAggregation {
    /// Mean over chunks.
    #[default]
    Mean,
    /// Maximum over chunks.
    Max,
}

impl std::str::FromStr for ChunkAggregation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mean" => Ok(ChunkAggregation::Mean),
            "max" => Ok(ChunkAggregation::Max),
            o => Err(format!("unknown aggregation {o:?} (mean or max)")),
        }
    }
}

/// Options of the NLI method.
#[derive(Debug, Clone, PartialEq)]
pub struct NliOptions {
    /// Independent per-topic probabilities instead of a distribution over topics.
    pub multi_label: bool,
    /// Multi-label: topics with probability >= this are kept.
    pub threshold: f64,
    /// Chunk aggregation.
    pub aggregate: ChunkAggregation,
    /// Pairs per forward pass.
    pub batch_size: usize,
    /// Tokens per pair (capped at the model's limit).
    pub max_length: usize,
    /// Device.
    pub device: DeviceChoice,
}

impl Default for NliOptions {
    fn default() -> Self {
        NliOptions {
            multi_label: false,
            threshold: 0.5,
            aggregate: ChunkAggregation::Mean,
            batch_size: 16,
            max_length: 512,
            device: DeviceChoice::Cpu,
        }
    }
}

// one value per loaded model: the size difference between variants costs nothing
#[allow(clippy::large_enum_variant)]
enum Network {
    Bert(BertForSequenceClassification),
    Roberta(RobertaForSequenceClassification),
    DistilBert(DistilBertModelClassifier),
    DebertaV2(DebertaV2ForSequenceClassification),
}

/// A loaded NLI model with its taxonomy.
pub struct NliTopicScorer {
    network: Network,
    _vs: nn::VarStore,
    device: Device,
    tokenizer: tokenizers::Tokenizer,
    taxonomy: TopicTaxonomy,
    entailment: usize,
    contradiction: Option<usize>,
    pad: i64,
    max_length: usize,
    options: NliOptions,
}

impl std::fmt::Debug for NliTopicScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NliTopicScorer").field("entailment", &self.entailment).field("options", &self.options).finish()
    }
}

/// Entailment and contradiction indices from `id2label` (see the module docs).
pub fn nli_indices(id2label: &std::collections::BTreeMap<i64, String>) -> Result<(usize, Option<usize>), String> {
    let find = |prefixes: &[&str]| {
        id2label
            .iter()
            .find(|(_, l)| prefixes.iter().any(|p| l.to_lowercase().starts_with(p)))
            .map(|(i, _)| *i as usize)
    };
    let entailment = find(&["entail"]).ok_or_else(|| {
        format!(
            "the model's labels {:?} name no entailment class: not an NLI model",
            id2label.values().collect::<Vec<_>>()
        )
    })?;
    let contradiction = find(&["contradict"])
        .or_else(|| find(&["not_entail", "not entail", "non_entail", "non-entail", "not-entail"]))
        .or_else(|| (id2label.len() == 2).then(|| 1 - entailment));
    Ok((entailment, contradiction))
}

impl NliTopicScorer {
    /// Loads a sequence-classification NLI model directory.
    pub fn load(dir: &Path, taxonomy: TopicTaxonomy, options: NliOptions) -> Result<Self, ModelError> {
        let device = options.device.to_tch().map_err(|m| ModelError::Config { path: dir.into(), message: m })?;
        let ClassifierConfig { config, architecture, id2label } = ClassifierConfig::read(dir)?;
        let (entailment, contradiction) =
            nli_indices(&id2label).map_err(|m| ModelError::Config { path: dir.join("config.json"), message: m })?;
        if options.multi_label && contradiction.is_none() {
            return Err(ModelError::Config {
                path: dir.join("config.json"),
                message: "multi-label scoring needs a contradiction (or not-entailment) class".into(),
            });
        }
        for lang in &taxonomy.languages {
            if !taxonomy.templates.contains_key(lang) {
                return Err(ModelError::Config {
                    path: dir.into(),
                    message: format!("the taxonomy has no NLI template for {lang:?} (templates.{lang})"),
                });
            }
        }
        let weights = weights_file(dir)?;
        let mut vs = nn::VarStore::new(device);
        let root = vs.root();
        let network = match architecture {
            Architecture::Bert => {
                Network::Bert(BertForSequenceClassification::new(&root, &parse_config::<BertConfig>(dir, &config)?)?)
            }
            Architecture::XlmRoberta => Network::Roberta(RobertaForSequenceClassification::new(
                &root,
                &parse_config::<BertConfig>(dir, &config)?,
            )?),
            Architecture::DistilBert => Network::DistilBert(DistilBertModelClassifier::new(
                &root,
                &parse_config::<DistilBertConfig>(dir, &config)?,
            )?),
            Architecture::DebertaV2 => Network::DebertaV2(DebertaV2ForSequenceClassification::new(
                &root,
                &parse_config::<DebertaV2Config>(dir, &config)?,
            )?),
        };
        load_weights(&mut vs, &weights, architecture)?;
        if device == Device::Cpu {
            vs.float();
        }
        let max_positions = config.get("max_position_embeddings").and_then(|v| v.as_u64()).unwrap_or(512) as usize;
        let max_length = options.max_length.min(architecture.usable_positions(max_positions));
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
        let pad = config.get("pad_token_id").and_then(|v| v.as_i64()).unwrap_or(0);
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

    /// The taxonomy.
    pub fn taxonomy(&self) -> &TopicTaxonomy {
        &self.taxonomy
    }

    /// The hypothesis for a topic in a language.
    pub fn hypothesis(&self, lang: &str, topic: usize) -> String {
        let template = &self.taxonomy.templates[lang];
        template.replacen("{}", &self.taxonomy.topics[topic].text[lang].label, 1)
    }

    fn tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(self.tokenizer.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?.len())
    }

    /// Splits a document at sentence boundaries into chunks of at most `budget` tokens (a
    /// single longer sentence is its own chunk and gets truncated).
    fn chunks(&self, text: &str, budget: usize) -> Result<Vec<String>, ModelError> {
        let sentences = split_sentences(text);
        let mut chunks: Vec<String> = Vec::new();
        let mut current = String::new();
        for s in sentences {
            let candidate = if current.is_empty() { s.to_owned() } else { format!("{current} {s}") };
            if !current.is_empty() && self.tokens(&candidate)? > budget {
                chunks.push(std::mem::replace(&mut current, s.to_owned()));
            } else {
                current = candidate;
            }
        }
        if !current.is_empty() || chunks.is_empty() {
            chunks.push(current);
        }
        Ok(chunks)
    }

    /// Topic scores per text (sorted by descending score; multi-label: only topics at or above
    /// the threshold), with `languages[i]` choosing the templates and labels for text `i`.
    pub fn score(&self, texts: &[&str], languages: &[&str]) -> Result<Vec<Vec<(String, f64)>>, ModelError> {
        let n_topics = self.taxonomy.topics.len();
        // pairs: (text, chunk, topic, premise, hypothesis)
        let mut pairs: Vec<(usize, usize, usize, String, String)> = Vec::new();
        let mut n_chunks = Vec::with_capacity(texts.len());
        for (i, (text, lang)) in texts.iter().zip(languages).enumerate() {
            let hypotheses: Vec<String> = (0..n_topics).map(|t| self.hypothesis(lang, t)).collect();
            let longest = hypotheses
                .iter()
                .map(|h| self.tokens(h))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .max()
                .unwrap_or(0);
            let budget = self.max_length.saturating_sub(longest + 4).max(8);
            let chunks = self.chunks(text, budget)?;
            n_chunks.push(chunks.len());
            for (c, chunk) in chunks.iter().enumerate() {
                for (t, h) in hypotheses.iter().enumerate() {
                    pairs.push((i, c, t, chunk.clone(), h.clone()));
                }
            }
        }
        let encodings = pairs
            .iter()
            .map(|(_, _, _, p, h)| {
                self.tokenizer
                    .encode(EncodeInput::Dual(p.as_str().into(), h.as_str().into()), true)
                    .map_err(|e| ModelError::Tokenizer(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(encodings[k].len()));
        let mut logits = vec![Vec::new(); pairs.len()];
        let _guard = tch::no_grad_guard();
        for batch in order.chunks(self.options.batch_size.max(1)) {
            let rows = self.forward(batch.iter().map(|&k| &encodings[k]))?;
            for (row, &k) in rows.into_iter().zip(batch) {
                logits[k] = row;
            }
        }
        // per text, chunk: entailment scores per topic
        let mut out = Vec::with_capacity(texts.len());
        let mut k = 0;
        for (i, &chunks) in n_chunks.iter().enumerate() {
            let mut per_topic = vec![Vec::with_capacity(chunks); n_topics];
            for _ in 0..chunks {
                let chunk_logits = &logits[k..k + n_topics];
                debug_assert!(pairs[k].0 == i);
                for (t, s) in self.chunk_scores(chunk_logits).into_iter().enumerate() {
                    per_topic[t].push(s);
                }
                k += n_topics;
            }
            let mut agg: Vec<f64> = per_topic
                .iter()
                .map(|v| match self.options.aggregate {
                    ChunkAggregation::Mean => v.iter().sum::<f64>() / v.len().max(1) as f64,
                    ChunkAggregation::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                })
                .collect();
            if !self.options.multi_label && self.options.aggregate == ChunkAggregation::Max {
                let sum: f64 = agg.iter().sum();
                agg.iter_mut().for_each(|x| *x /= sum);
            }
            let mut scored: Vec<(String, f64)> = self
                .taxonomy
                .topics
                .iter()
                .zip(agg)
                .filter(|(_, s)| !self.options.multi_label || *s >= self.options.threshold)
                .map(|(t, s)| (t.id.clone(), s))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            out.push(scored);
        }
        Ok(out)
    }

    /// Scores of one chunk's topics from their pair logits.
    fn chunk_scores(&self, logits: &[Vec<f32>]) -> Vec<f64> {
        if self.options.multi_label {
            let c = self.contradiction.unwrap_or(0);
            logits
                .iter()
                .map(|l| {
                    let (e, c) = (f64::from(l[self.entailment]), f64::from(l[c]));
                    let m = e.max(c);
                    (e - m).exp() / ((e - m).exp() + (c - m).exp())
                })
                .collect()
        } else {
            let e: Vec<f64> = logits.iter().map(|l| f64::from(l[self.entailment])).collect();
            let m = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = e.iter().map(|x| (x - m).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.into_iter().map(|x| x / sum).collect()
        }
    }

    fn forward<'a>(
        &self,
        encodings: impl Iterator<Item = &'a tokenizers::Encoding>,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let encodings: Vec<&tokenizers::Encoding> = encodings.collect();
        let rows: Vec<Vec<i64>> =
            encodings.iter().map(|e| e.get_ids().iter().map(|&x| i64::from(x)).collect()).collect();
        let type_rows: Vec<Vec<i64>> =
            encodings.iter().map(|e| e.get_type_ids().iter().map(|&x| i64::from(x)).collect()).collect();
        let PaddedBatch { ids, mask, .. } = PaddedBatch::new(&rows, self.pad, self.device);
        let types = pad_rows(&type_rows, 0, self.device);
        let logits = match &self.network {
            Network::Bert(m) => m.forward_t(Some(&ids), Some(&mask), Some(&types), None, None, false).logits,
            Network::Roberta(m) => m.forward_t(Some(&ids), Some(&mask), None, None, None, false).logits,
            Network::DistilBert(m) => m.forward_t(Some(&ids), Some(&mask), None, false)?.logits,
            Network::DebertaV2(m) => m.forward_t(Some(&ids), Some(&mask), Some(&types), None, None, false)?.logits,
        };
        let logits = logits.to_kind(Kind::Float).to(Device::Cpu).contiguous();
        let n = logits.size()[1] as usize;
        let flat: Vec<f32> = Vec::<f32>::try_from(logits.view([-1]))?;
        Ok(flat.chunks(n).map(<[f32]>::to_vec).collect())
    }
}

/// Sentence boundaries: after `.`, `!`, `?`, `…` (optionally followed by closing quotes or
/// brackets) and whitespace, and at line breaks.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let next_ws = chars.get(k + 1).is_none_or(|(_, n)| n.is_whitespace());
        let boundary = c == '\n'
            || (matches!(c, '.' | '!' | '?' | '…' | '”' | '"' | '»' | ')') && next_ws && {
                // the closing mark must follow a terminal punctuation mark
                matches!(c, '.' | '!' | '?' | '…') || k > 0 && matches!(chars[k - 1].1, '.' | '!' | '?' | '…')
            });
        if boundary {
            let end = i + c.len_utf8();
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(names: &[&str]) -> BTreeMap<i64, String> {
        names.iter().enumerate().map(|(i, n)| (i as i64, n.to_string())).collect()
    }

    #[test]
    fn label_layouts() {
        assert_eq!(nli_indices(&labels(&["entailment", "neutral", "contradiction"])), Ok((0, Some(2))));
        assert_eq!(nli_indices(&labels(&["CONTRADICTION", "NEUTRAL", "ENTAILMENT"])), Ok((2, Some(0))));
        assert_eq!(nli_indices(&labels(&["entailment", "not_entailment"])), Ok((0, Some(1))));
        assert!(nli_indices(&labels(&["POSITIVE", "NEGATIVE"])).unwrap_err().contains("no entailment"));
    }

    #[test]
    fn sentences() {
        assert_eq!(
            split_sentences("Xi ha parlato. “Bene!” disse Putin.\nNuova riga senza punto"),
            vec!["Xi ha parlato.", "“Bene!”", "disse Putin.", "Nuova riga senza punto"]
        );
        assert_eq!(split_sentences("3.5 milioni di euro"), vec!["3.5 milioni di euro"]);
    }
}
