//! `framegpt report` arguments.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// An output folder of `framegpt analyze` (the one holding clips.csv).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}
