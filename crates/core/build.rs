//! Gives every binary, test and example of this crate an rpath to the project's libtorch
//! (`LIBTORCH/lib`, set in `.cargo/config.toml`), so they run with an empty LD_LIBRARY_PATH.
include!("../../scripts/rpath.rs");
