//! Device selection (`--device cpu|cuda`).

use std::str::FromStr;

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

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            other => Err(format!("unknown device {other:?} (expected cpu or cuda)")),
        }
    }
}
