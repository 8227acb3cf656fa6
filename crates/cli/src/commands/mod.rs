//! One module per subcommand.

pub mod annotate;
pub mod eval;
pub mod export;
pub mod import;
pub mod merge;
pub mod models;
pub mod report;
pub mod topics;
pub mod train;
