//! The fused forward (crate::model::encoder) computes the same function as rust-bert's
//! modules: logits of tiny BERT and XLM-R token classifiers and e5-small sentence embeddings
//! agree with `--engine rust-bert` on padded batches, seeds and adversarial texts included,
//! with the linear layers on either CPU kernel (MKL's sgemm and oneDNN).

mod common;

use postilla_core::embed::{SentenceEncoder, E5_QUERY_PREFIX};
use postilla_core::model::{DeviceChoice, Engine, MatmulKernel, Precision};
use postilla_core::ner::model::TokenClassifier;
use postilla_core::text::TextTokenizer;
use tch::{Device, Tensor};

/// Token rows of `texts` (the last one a copy of the first with a literal `<pad>` inside, for
/// XLM-R's position ids), padded.
fn batch(dir: &std::path::Path, pad: i64) -> (Tensor, Tensor) {
    let tokenizer = TextTokenizer::from_dir(dir).expect("tokenizer");
    let mut texts: Vec<String> = common::adversarial_texts();
    texts.extend(common::seeds().iter().map(|s| s.chars().take(300).collect::<String>()));
    texts.push(format!("{} <pad> {}", texts[0], texts[1]));
    let rows: Vec<Vec<i64>> = texts
        .iter()
        .map(|t| tokenizer.ids(t, true).expect("ids").into_iter().take(120).map(i64::from).collect())
        .collect();
    let batch = postilla_core::model::batch::PaddedBatch::new(&rows, pad, Device::Cpu);
    (batch.ids, batch.mask)
}

fn max_diff_on_tokens(a: &Tensor, b: &Tensor, mask: &Tensor) -> f64 {
    let valid = mask.eq(1).unsqueeze(-1);
    (a - b).abs().masked_select(&valid).max().double_value(&[])
}

const KERNELS: [MatmulKernel; 2] = [MatmulKernel::Blas, MatmulKernel::OneDnn];

fn classifier_agrees(name: &str, kernel: MatmulKernel) {
    let dir = common::tiny_models().join(name);
    let fused = TokenClassifier::load(&dir, Device::Cpu, Engine::Fused(kernel), Precision::Fp32).expect("load fused");
    let reference =
        TokenClassifier::load(&dir, Device::Cpu, Engine::RustBert, Precision::Fp32).expect("load rust-bert");
    assert!(fused.is_fused(), "{name}: the fused forward applies");
    assert_eq!(fused.matmul_kernel(), Some(kernel), "{name}: the kernel asked for runs");
    assert!(!reference.is_fused());
    let (ids, mask) = batch(&dir, fused.pad_token_id);
    assert_eq!(mask.min().int64_value(&[]), 0, "the batch has padding");
    let _guard = tch::no_grad_guard();
    let a = fused.logits(&ids, &mask).expect("fused logits");
    let b = reference.logits(&ids, &mask).expect("rust-bert logits");
    let diff = max_diff_on_tokens(&a, &b, &mask);
    let scale = b.abs().max().double_value(&[]);
    assert!(diff < 1e-5 * scale.max(1.0), "{name} on {kernel:?}: logits differ by {diff} (scale {scale})");
}

#[test]
fn bert_logits_equal_rust_berts() {
    for kernel in KERNELS {
        classifier_agrees("tiny-bert", kernel);
    }
}

#[test]
fn xlmr_logits_equal_rust_berts_with_a_literal_pad_token() {
    for kernel in KERNELS {
        classifier_agrees("tiny-xlmr", kernel);
    }
}

#[test]
fn e5_embeddings_equal_rust_berts() {
    let dir = common::e5_dir();
    let reference =
        SentenceEncoder::load_with(&dir, DeviceChoice::Cpu, Engine::RustBert, Precision::Fp32).expect("rust-bert");
    let mut texts = common::adversarial_texts();
    texts.extend(common::seeds());
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let b = reference.embed(&texts, E5_QUERY_PREFIX, 4).expect("reference embed");
    for kernel in KERNELS {
        let fused =
            SentenceEncoder::load_with(&dir, DeviceChoice::Cpu, Engine::Fused(kernel), Precision::Fp32).expect("fused");
        assert_eq!(fused.matmul_kernel(), Some(kernel));
        let a = fused.embed(&texts, E5_QUERY_PREFIX, 4).expect("fused embed");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let cos = postilla_core::embed::cosine(x, y);
            assert!(cos > 0.999_999, "{kernel:?}, text {i}: cosine {cos}");
            let diff = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-5, "{kernel:?}, text {i}: max difference {diff}");
        }
    }
}

#[test]
fn auto_resolves_to_onednn_on_amd_only() {
    let dir = common::tiny_models().join("tiny-bert");
    let auto = TokenClassifier::load(&dir, Device::Cpu, Engine::default(), Precision::Fp32).expect("load");
    let amd = MatmulKernel::cpu_vendor().as_deref() == Some("AuthenticAMD");
    let want = if amd { MatmulKernel::OneDnn } else { MatmulKernel::Blas };
    assert_eq!(auto.matmul_kernel(), Some(want), "vendor {:?}", MatmulKernel::cpu_vendor());
}

#[test]
fn an_empty_batch_gives_empty_logits_on_both_kernels() {
    let dir = common::tiny_models().join("tiny-bert");
    let _guard = tch::no_grad_guard();
    for kernel in KERNELS {
        let fused = TokenClassifier::load(&dir, Device::Cpu, Engine::Fused(kernel), Precision::Fp32).expect("load");
        let ids = Tensor::zeros([0, 8], (tch::Kind::Int64, Device::Cpu));
        let logits = fused.logits(&ids, &ids.ones_like()).expect("empty batch");
        assert_eq!(logits.size()[..2], [0, 8], "{kernel:?}");
    }
}
