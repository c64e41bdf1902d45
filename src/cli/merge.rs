//! `framegpt merge` arguments.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Output folders of `analyze` runs (typically OUT/shard-*-of-N).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Folder to write the merged outputs to.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}
