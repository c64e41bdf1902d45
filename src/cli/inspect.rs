//! `framegpt inspect` arguments.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Model file [default: the shipped base model].
    #[arg(value_name = "MODEL")]
    pub model: Option<PathBuf>,
}
