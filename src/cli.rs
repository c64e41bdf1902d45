//! The command line (clap derive). Parsed once into [`crate::settings`], then trusted.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "framegpt",
    version,
    about = "Video analysis with a generative pretrained Transformer: surprise, shot boundaries, embeddings, labels",
    after_help = "Examples:\n  framegpt analyze talk.mp4 -o out/\n  framegpt analyze ~/footage/ -r -o out/ --fps 5\n  framegpt inspect models/framegpt-base.onnx"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print only errors (no progress, no summary).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// When to use colors on stderr (NO_COLOR is respected).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// Total CPU threads, shared by FFmpeg, ONNX Runtime and rayon [default: all cores].
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Never show progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colors when stderr is a terminal and NO_COLOR is unset.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyze videos: per-frame surprise, shots and embeddings to CSV.
    Analyze(AnalyzeArgs),
    /// Show a model's contract, labels, provenance and this machine's execution providers.
    Inspect(InspectArgs),
    /// Join the outputs of sharded runs into what a single run would have written.
    Merge(crate::commands::merge::MergeArgs),
    /// Render the model's next-frame predictions and per-patch surprise for one window as a PNG.
    Predict(crate::commands::predict::PredictArgs),
    /// Train a classification head on labelled clips and write backbone + head as one ONNX file.
    Finetune(crate::commands::finetune::FinetuneArgs),
    /// Measure one pipeline stage alone (decode or infer), for scripts/bench.sh.
    #[command(hide = true)]
    Bench(crate::commands::bench::BenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// Video files, directories or glob patterns (quote globs: 'cams/*.mkv').
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Output folder: clips.csv, plus frames.csv and shots.csv per video in a tree that
    /// mirrors the inputs.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Descend into subdirectories of directory inputs.
    #[arg(short, long)]
    pub recursive: bool,
    /// Model file (ONNX, framegpt contract v1) [default: the shipped base model].
    #[arg(long, value_name = "PATH", env = "FRAMEGPT_MODEL")]
    pub model: Option<PathBuf>,
    /// Where inference runs: cpu, cuda, cuda:N, or auto (CUDA if it loads, else CPU with a warning).
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
    /// Analyze F frames per second of video time (the first frame at or after each tick).
    #[arg(long, value_name = "F", conflicts_with = "every")]
    pub fps: Option<f64>,
    /// Analyze every N-th decoded frame.
    #[arg(long, value_name = "N")]
    pub every: Option<u64>,
    /// Decode and analyze key frames only (fast skim; frame numbers come from timestamps).
    #[arg(long, conflicts_with_all = ["fps", "every"])]
    pub keyframes: bool,
    /// Stop after N analyzed frames per video.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
    /// Start at this time in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub start: Option<f64>,
    /// End at this time in seconds (exclusive).
    #[arg(long, value_name = "SECONDS")]
    pub end: Option<f64>,
    /// Write per-frame embeddings (`embeddings.npy` per video, rows aligned with frames.csv).
    #[arg(long, value_enum, default_value_t = EmbeddingsFormat::None)]
    pub embeddings: EmbeddingsFormat,
    /// Format of the per-video shot list.
    #[arg(long, value_enum, default_value_t = ScenesFormat::Framegpt)]
    pub scenes_format: ScenesFormat,
    /// Files decoded at once.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Windows per inference call.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub batch: usize,
    /// Frames between window starts (default: half the model's context).
    #[arg(long, value_name = "N")]
    pub window_stride: Option<usize>,
    /// Redo every input, even those whose outputs are complete and match.
    #[arg(long)]
    pub force: bool,
    /// Take slice I of N of the sorted inputs (0-based) and write to OUT/shard-I-of-N/;
    /// default from SLURM_ARRAY_TASK_ID/_COUNT or JOB_COMPLETION_INDEX + FRAMEGPT_SHARD_COUNT.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmbeddingsFormat {
    /// No embeddings file.
    None,
    /// NumPy `.npy`, float32 [frames, D].
    Npy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenesFormat {
    /// shots.csv: video, shot, start_frame, end_frame, start_s, end_s, transition.
    Framegpt,
    /// Also write scenes.csv in PySceneDetect's scene-list format.
    Pyscenedetect,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Model file [default: the shipped base model].
    #[arg(value_name = "MODEL")]
    pub model: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
