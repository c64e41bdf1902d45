//! `framegpt analyze` arguments.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::ModelArgs;

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
    #[command(flatten)]
    pub model: ModelArgs,
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
    /// Formats of the per-video shot list, comma-separated (shots.csv is always written):
    /// e.g. `--scenes-format edl,otio,vtt`.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "framegpt")]
    pub scenes_format: Vec<ScenesFormatArg>,
    /// Also write `OUT/report.html`: surprise curves, shot boundaries, thumbnails, labels
    /// (the same as `framegpt report OUT` afterwards).
    #[arg(long)]
    pub report: bool,
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
pub enum ScenesFormatArg {
    /// shots.csv: video, shot, start_frame, end_frame, start_s, end_s, transition.
    Framegpt,
    /// Also write scenes.csv in PySceneDetect's scene-list format.
    Pyscenedetect,
    /// Also write scenes.edl: CMX3600, one event per shot, frame-exact timecodes.
    Edl,
    /// Also write scenes.otio: an OpenTimelineIO timeline, one clip per shot.
    Otio,
    /// Also write chapters.txt: FFmpeg ffmetadata chapters (`-map_metadata`).
    Chapters,
    /// Also write chapters.vtt: WebVTT chapters.
    Vtt,
}
