//! One module per subcommand.

pub mod annotate;
pub mod models;
