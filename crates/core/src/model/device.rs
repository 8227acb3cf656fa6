//! Device selection (`--device cpu|cuda`).

use crate::error::ModelError;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CPU (the default).
    #[default]
    Cpu,
    /// The first CUDA device; an error at load time when none is available.
    Cuda,
}

impl DeviceChoice {
    /// The tch device, or [`ModelError::NoCuda`] when CUDA was asked for but is unavailable.
    pub fn to_tch(self) -> Result<tch::Device, ModelError> {
        match self {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            DeviceChoice::Cuda => Err(ModelError::NoCuda),
        }
    }
}

crate::names::named_values!(DeviceChoice, "device", [Cpu => "cpu", Cuda => "cuda"]);
