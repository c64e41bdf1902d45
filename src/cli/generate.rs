//! `framegpt generate` arguments.

use std::path::PathBuf;

use clap::Args;

use super::ModelArgs;

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The video.
    pub video: PathBuf,
    /// Time of the first context frame, in seconds.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub at: f64,
    /// Frames to generate after the context.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub frames: u32,
    /// Output: .png (a strip: context row, generated row(s), real row), .gif or .mp4.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Standard deviation of the Gaussian noise added to each generated frame before it is
    /// fed back, in normalized pixel units (0: the deterministic rollout).
    #[arg(long, default_value_t = 0.0, value_name = "SIGMA")]
    pub noise: f32,
    /// Rollouts to generate (each with its own noise draw; identical without --noise).
    #[arg(long, default_value_t = 1, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=8))]
    pub candidates: u32,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pixels per model pixel in the output.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub zoom: u32,
    /// Frames per second of a .gif or .mp4 output.
    #[arg(long, default_value_t = 4.0, value_name = "F")]
    pub playback_fps: f64,
}
