//! Loading Hugging Face weights into rust-bert's var stores.
//!
//! A safetensors file is read tensor by tensor, each straight into the memory of the variable
//! rust-bert allocated for it (one `pread` per tensor, no intermediate copy when the dtypes
//! match), so loading never holds the weights twice: for multilingual-e5-small that is the
//! difference between ~470 MB and ~940 MB at peak. The header is checked against the file
//! size first, so a truncated or corrupt file is refused with a message naming it; a missing
//! tensor or a shape mismatch names the tensor. rust-bert `.ot` files go through
//! `Tensor::load_multi`.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;
use tch::{nn, Device, Kind, Tensor};

use crate::error::ModelError;
use crate::model::arch::Architecture;

/// Largest safetensors header accepted (the format's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// The tensors of a safetensors file: where their bytes start, and each tensor's entry.
struct SafetensorsIndex {
    data_start: u64,
    tensors: HashMap<String, TensorInfo>,
}

fn corrupt(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Config { path: path.into(), message: format!("not a valid safetensors file: {}", message.into()) }
}

/// The libtorch kind of a safetensors dtype (its element size is `Dtype::size`).
fn dtype_kind(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// The model has a variable the weights file lacks.
fn missing_tensor(path: &Path, name: &str, architecture: Architecture) -> ModelError {
    ModelError::Config {
        path: path.into(),
        message: format!("weights file has no tensor {name:?} (is this a {architecture:?} model of this kind?)"),
    }
}

/// A tensor of the file has another shape than the model's variable.
fn shape_mismatch(path: &Path, name: &str, found: &[i64], expected: &[i64]) -> ModelError {
    ModelError::Config {
        path: path.into(),
        message: format!("tensor {name:?} has shape {found:?}, the model expects {expected:?}"),
    }
}

impl SafetensorsIndex {
    /// Reads and checks the header: every tensor's byte range must match its dtype and shape
    /// and lie inside the file.
    fn read(file: &File, path: &Path) -> Result<Self, ModelError> {
        let len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
        let mut prefix = [0u8; 8];
        file.read_exact_at(&mut prefix, 0)
            .map_err(|_| corrupt(path, format!("{len} bytes is too short for a header")))?;
        let n = u64::from_le_bytes(prefix);
        if n > MAX_HEADER || 8 + n > len {
            return Err(corrupt(path, format!("header of {n} bytes in a file of {len} bytes (truncated?)")));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact_at(&mut header, 8).map_err(|e| ModelError::io(path, e))?;
        let metadata: Metadata = serde_json::from_slice(&header).map_err(|e| corrupt(path, format!("header: {e}")))?;
        let data_start = 8 + n;
        let data_len = len - data_start;
        let mut tensors = HashMap::new();
        for (name, info) in metadata.tensors() {
            let (start, end) = info.data_offsets;
            let expected = info.shape.iter().product::<usize>() * info.dtype.size();
            if end < start || end - start != expected {
                return Err(corrupt(
                    path,
                    format!("tensor {name:?}: {} bytes for shape {:?}", end.saturating_sub(start), info.shape),
                ));
            }
            if end as u64 > data_len {
                return Err(corrupt(
                    path,
                    format!("tensor {name:?} ends at byte {end} of {data_len} (file truncated)"),
                ));
            }
            tensors.insert(name, info.clone());
        }
        Ok(SafetensorsIndex { data_start, tensors })
    }

    /// Reads the file's tensor `info` into the variable `name`: the shapes must be equal; the
    /// bytes go straight into the variable's memory when dtype and layout allow, else through
    /// a buffer, converted as `kinds` says.
    fn copy_into(
        &self,
        (file, path): (&File, &Path),
        (name, info): (&str, &TensorInfo),
        var: &mut Tensor,
        kinds: KindRule,
    ) -> Result<(), ModelError> {
        let shape: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
        if shape != var.size() {
            return Err(shape_mismatch(path, name, &shape, &var.size()));
        }
        let kind = dtype_kind(info.dtype).ok_or_else(|| ModelError::Config {
            path: path.into(),
            message: format!("tensor {name:?} has dtype {:?}, which Postilla cannot load", info.dtype),
        })?;
        let offset = self.data_start + info.data_offsets.0 as u64;
        let bytes = info.data_offsets.1 - info.data_offsets.0;
        let direct = var.kind() == kind && var.device() == Device::Cpu && var.is_contiguous();
        if direct && var.numel() * info.dtype.size() == bytes {
            // SAFETY: `var` is a contiguous CPU tensor of `bytes` bytes (same shape and dtype as
            // the file's tensor, checked above) that nothing else reads while it is filled.
            let target = unsafe { std::slice::from_raw_parts_mut(var.data_ptr() as *mut u8, bytes) };
            return file.read_exact_at(target, offset).map_err(|e| ModelError::io(path, e));
        }
        let mut buffer = vec![0u8; bytes];
        file.read_exact_at(&mut buffer, offset).map_err(|e| ModelError::io(path, e))?;
        let source = Tensor::f_from_data_size(&buffer, &shape, kind)?;
        match kinds {
            KindRule::File => {
                var.set_data(&var.to_kind(kind));
                var.f_copy_(&source)?;
            }
            KindRule::Variable => var.f_copy_(&source.to_kind(var.kind()))?,
        }
        Ok(())
    }
}

/// Which dtype a variable ends with when the file stores its tensor in another one.
#[derive(Clone, Copy)]
enum KindRule {
    /// The file's (inference: a bf16 or fp16 checkpoint stays so until converted).
    File,
    /// The variable's own (training: the variables stay fp32).
    Variable,
}

/// Copies the file's tensors into the var store's variables (names as Hugging Face writes
/// them). Tensors of the file that the model does not use are ignored.
pub fn load_weights(vs: &mut nn::VarStore, path: &Path, architecture: Architecture) -> Result<(), ModelError> {
    if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        return load_ot(vs, path, architecture);
    }
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let index = SafetensorsIndex::read(&file, path)?;
    let _guard = tch::no_grad_guard();
    for (name, var) in vs.variables().iter_mut() {
        let info = index.tensors.get(name).ok_or_else(|| missing_tensor(path, name, architecture))?;
        index.copy_into((&file, path), (name, info), var, KindRule::File)?;
    }
    Ok(())
}

/// Copies the file's tensors into the var store's variables where the file has them, also
/// under the variable's name without its first component (`bert.encoder...` is read from
/// `encoder...`: an encoder saved without its task head, such as models/e5-small). Returns
/// the names of the variables the file does not have (left as they were); a shape mismatch
/// is an error. Variables for which `skip` is true are not read (a head to be replaced).
/// Safetensors files only.
pub fn load_weights_available(
    vs: &mut nn::VarStore,
    path: &Path,
    skip: impl Fn(&str) -> bool,
) -> Result<Vec<String>, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let index = SafetensorsIndex::read(&file, path)?;
    let _guard = tch::no_grad_guard();
    let mut missing = Vec::new();
    for (name, var) in vs.variables().iter_mut() {
        if skip(name) {
            continue;
        }
        let stripped = name.split_once('.').map(|(_, rest)| rest);
        let Some(info) = index.tensors.get(name).or_else(|| stripped.and_then(|s| index.tensors.get(s))) else {
            missing.push(name.clone());
            continue;
        };
        index.copy_into((&file, path), (name, info), var, KindRule::Variable)?;
    }
    missing.sort();
    Ok(missing)
}

/// rust-bert `.ot` weights (a libtorch archive), loaded whole.
fn load_ot(vs: &mut nn::VarStore, path: &Path, architecture: Architecture) -> Result<(), ModelError> {
    let named: HashMap<String, Tensor> = Tensor::load_multi(path)?.into_iter().collect();
    let _guard = tch::no_grad_guard();
    for (name, var) in vs.variables().iter_mut() {
        let source = named.get(name).ok_or_else(|| missing_tensor(path, name, architecture))?;
        if source.size() != var.size() {
            return Err(shape_mismatch(path, name, &source.size(), &var.size()));
        }
        var.set_data(&var.to_kind(source.kind()));
        var.f_copy_(source)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (nn::VarStore, Tensor) {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = (vs.root() / "layer").var("weight", &[2, 3], nn::Init::Const(0.0));
        (vs, w)
    }

    fn write(path: &Path, tensors: &[(&str, Tensor)]) {
        Tensor::write_safetensors(tensors, path).expect("write safetensors");
    }

    #[test]
    fn loads_f32_in_place_and_converts_other_dtypes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let values = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6.]).view([2, 3]);
        let path = dir.path().join("m.safetensors");
        write(
            &path,
            &[("layer.weight", values.shallow_clone()), ("unused", Tensor::zeros([1], (Kind::Float, Device::Cpu)))],
        );
        let (mut vs, w) = store();
        load_weights(&mut vs, &path, Architecture::Bert).expect("load");
        assert_eq!((&w - &values).abs().max().double_value(&[]), 0.0);

        let half = dir.path().join("h.safetensors");
        write(&half, &[("layer.weight", values.to_kind(Kind::Half))]);
        let (mut vs, _) = store();
        load_weights(&mut vs, &half, Architecture::Bert).expect("load f16");
        vs.float();
        let loaded = vs.variables()["layer.weight"].shallow_clone();
        assert_eq!((&loaded - &values).abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn truncated_files_missing_tensors_and_wrong_shapes_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.safetensors");
        write(&path, &[("layer.weight", Tensor::ones([2, 3], (Kind::Float, Device::Cpu)))]);
        let bytes = std::fs::read(&path).expect("read");
        for cut in [4, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).expect("write");
            let err = load_weights(&mut store().0, &path, Architecture::Bert).expect_err("truncated");
            assert!(err.to_string().contains("not a valid safetensors file"), "{err}");
        }
        write(&path, &[("other", Tensor::ones([2, 3], (Kind::Float, Device::Cpu)))]);
        let err = load_weights(&mut store().0, &path, Architecture::Bert).expect_err("missing");
        assert!(err.to_string().contains("no tensor \"layer.weight\""), "{err}");
        write(&path, &[("layer.weight", Tensor::ones([3, 2], (Kind::Float, Device::Cpu)))]);
        let err = load_weights(&mut store().0, &path, Architecture::Bert).expect_err("shape");
        assert!(err.to_string().contains("shape [3, 2]"), "{err}");
    }
}
