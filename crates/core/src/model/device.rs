//! Device selection (`--device cpu|cuda`).

use std::str::FromStr;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CPU (the default).
    #[default]
    Cpu,
    /// The first CUDA device; an error at load time when none is available.
    Cuda,
}

impl DeviceChoice {
    /// The tch device, or an error message when CUDA was asked for but is unavailable.
    pub fn to_tch(self) -> Result<tch::Device, String> {
        match self {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
            DeviceChoice::Cuda => Err("--device cuda was asked for but no CUDA device is available (this libtorch build is CPU-only unless installed otherwise)".into()),
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
