//! Scoring: (chunk, topic) pairs, batched by length, and the chunk scores aggregated per topic.

use tch::{Device, Kind};
use tokenizers::EncodeInput;

use super::load::Network;
use super::sentences::split_sentences;
use super::{ChunkAggregation, NliTopicScorer};
use crate::error::ModelError;
use crate::model::batch::{pad_rows, PaddedBatch};
use crate::topics::error::TopicError;

impl NliTopicScorer {
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
    /// [`TopicError::UnknownLanguage`] when a language is not the taxonomy's.
    pub fn score(&self, texts: &[&str], languages: &[&str]) -> Result<Vec<Vec<(String, f64)>>, TopicError> {
        TopicError::check_languages(&self.taxonomy, languages)?;
        let n_topics = self.taxonomy.topics.len();
        // pairs: (text, chunk, topic, premise, hypothesis)
        let mut pairs: Vec<(usize, usize, usize, String, String)> = Vec::new();
        let mut n_chunks = Vec::with_capacity(texts.len());
        for (i, (text, lang)) in texts.iter().zip(languages).enumerate() {
            let hypotheses: Vec<String> = (0..n_topics).filter_map(|t| self.hypothesis(lang, t)).collect();
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
