//! `framegpt bench` arguments (hidden; for `scripts/bench.sh`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::ModelArgs;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The video to measure on.
    pub video: PathBuf,
    #[arg(long, value_enum)]
    pub stage: Stage,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Frames to run through the model (infer stage) [default: the video's frame count].
    #[arg(long)]
    pub frames: Option<u64>,
    /// Frames decoded up front for the infer stage.
    #[arg(long, default_value_t = 256)]
    pub cache_frames: u64,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
}

/// The stage measured alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// Decode + sample + resize + patchify (everything before the model).
    Decode,
    /// Windows through the model + surprise, on frames decoded beforehand.
    Infer,
}
