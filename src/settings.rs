//! Arguments → one validated settings struct (ripgrep `LowArgs → HiArgs`). No stage
//! re-decides an `Option` after this.

use std::path::{Path, PathBuf};

use crate::cli::{AnalyzeArgs, EmbeddingsFormat, GlobalArgs, ScenesFormat};
use crate::model::Device;
use crate::sample::SampleSpec;
use crate::shard::{self, ShardSpec};

/// Name of the shipped base model.
pub const BASE_MODEL_FILE: &str = "framegpt-base.onnx";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error("no model given and the base model `{BASE_MODEL_FILE}` was not found; looked in:\n{}\nhint: pass --model PATH or set FRAMEGPT_MODEL", .0.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    NoModel(Vec<PathBuf>),
}

/// How the `--threads` budget is split so FFmpeg, ONNX Runtime and rayon do not
/// oversubscribe the cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadBudget {
    pub total: usize,
    /// Files decoded at once.
    pub decode_jobs: usize,
    /// FFmpeg threads per file being decoded.
    pub ffmpeg_per_file: usize,
    /// ONNX Runtime intra-op threads (spinning off, so idle threads give their core back).
    pub ort: usize,
}

impl ThreadBudget {
    pub fn new(total: usize, jobs: Option<usize>) -> Self {
        let total = total.max(1);
        let decode_jobs = jobs.unwrap_or(if total >= 2 { 2 } else { 1 }).max(1);
        ThreadBudget {
            total,
            decode_jobs,
            ffmpeg_per_file: (total / decode_jobs).max(1),
            ort: total,
        }
    }
}

pub fn total_threads(global: &GlobalArgs) -> usize {
    global
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

#[derive(Debug, Clone)]
pub struct AnalyzeSettings {
    pub inputs: Vec<String>,
    pub recursive: bool,
    pub output_dir: PathBuf,
    pub model_path: PathBuf,
    pub device: Device,
    pub sample: SampleSpec,
    /// Windows per inference call.
    pub batch_windows: usize,
    /// Frames between window starts (None: half the model's context).
    pub window_stride: Option<usize>,
    pub threads: ThreadBudget,
    pub embeddings: bool,
    pub scenes_format: ScenesFormat,
    pub progress: bool,
    pub force: bool,
    pub shard: Option<ShardSpec>,
}

impl AnalyzeSettings {
    pub fn from_args(args: &AnalyzeArgs, global: &GlobalArgs) -> Result<Self, SettingsError> {
        let invalid = |m: String| Err(SettingsError::Invalid(m));
        if let Some(f) = args.fps {
            if !(f.is_finite() && f > 0.0) {
                return invalid(format!("--fps must be a positive number, got {f}"));
            }
        }
        if args.every == Some(0) {
            return invalid("--every must be at least 1".into());
        }
        let start_s = args.start.unwrap_or(0.0);
        if !(start_s.is_finite() && start_s >= 0.0) {
            return invalid(format!("--start must be >= 0 seconds, got {start_s}"));
        }
        if let Some(end) = args.end {
            if !(end.is_finite() && end > start_s) {
                return invalid(format!("--end ({end}) must be after --start ({start_s})"));
            }
        }
        if args.batch == 0 {
            return invalid("--batch must be at least 1".into());
        }
        if args.jobs == Some(0) {
            return invalid("--jobs must be at least 1".into());
        }
        if args.window_stride == Some(0) {
            return invalid("--window-stride must be at least 1".into());
        }
        let device: Device = args.device.parse().map_err(SettingsError::Invalid)?;
        let model_path = match &args.model {
            Some(p) => p.clone(),
            None => default_model()?,
        };
        let progress = !global.quiet && !global.no_progress && global.verbose == 0;
        let shard = match &args.shard {
            Some(s) => Some(s.parse::<ShardSpec>().map_err(SettingsError::Invalid)?),
            None => shard::from_env(|k| std::env::var(k).ok()).map_err(SettingsError::Invalid)?,
        };
        Ok(AnalyzeSettings {
            inputs: args.inputs.clone(),
            recursive: args.recursive,
            output_dir: args.output.clone(),
            model_path,
            device,
            sample: SampleSpec {
                every: args.every.unwrap_or(1),
                target_fps: args.fps,
                max_frames: args.max_frames,
                start_s,
                end_s: args.end,
                keyframes_only: args.keyframes,
            },
            batch_windows: args.batch,
            window_stride: args.window_stride,
            threads: ThreadBudget::new(total_threads(global), args.jobs),
            embeddings: args.embeddings == EmbeddingsFormat::Npy,
            scenes_format: args.scenes_format,
            progress,
            force: args.force,
            shard: shard.filter(|s| s.count > 1),
        })
    }
}

/// Places the base model is looked for, in order.
pub fn default_model_candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            c.push(dir.join(BASE_MODEL_FILE));
            c.push(dir.join("../share/framegpt").join(BASE_MODEL_FILE));
        }
    }
    c.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(BASE_MODEL_FILE),
    );
    c
}

pub fn default_model() -> Result<PathBuf, SettingsError> {
    let candidates = default_model_candidates();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(SettingsError::NoModel(candidates))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_budget_splits_the_cores() {
        assert_eq!(
            ThreadBudget::new(2, None),
            ThreadBudget {
                total: 2,
                decode_jobs: 2,
                ffmpeg_per_file: 1,
                ort: 2
            }
        );
        assert_eq!(ThreadBudget::new(1, None).decode_jobs, 1);
        assert_eq!(ThreadBudget::new(16, Some(4)).ffmpeg_per_file, 4);
        assert_eq!(ThreadBudget::new(3, Some(8)).ffmpeg_per_file, 1);
    }
}
