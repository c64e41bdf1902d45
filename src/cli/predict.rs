//! `framegpt predict` arguments.

use std::path::PathBuf;

use clap::Args;

use super::ModelArgs;

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// The video.
    pub video: PathBuf,
    /// Time of the first frame of the window, in seconds.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub at: f64,
    /// The PNG to write.
    #[arg(short, long, value_name = "PNG")]
    pub output: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Pixels per model pixel in the image.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub zoom: u32,
}
