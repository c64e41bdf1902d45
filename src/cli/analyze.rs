//! `framegpt analyze` arguments.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Give up on a file after this long (seconds, or with a unit: 90s, 30m, 2h; `none`: no
    /// bound): it gets an error row, its outputs are discarded, the batch goes on. The
    /// default (6h) is far above what the longest footage takes on a small machine.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_file_timeout)]
    pub file_timeout: FileTimeout,
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

/// `--file-timeout`: a positive duration, or no bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileTimeout(pub Option<Duration>);

/// `90`, `90s`, `1.5m`, `2h`, or `none`/`off`; zero, negative and unknown units are refused.
pub fn parse_file_timeout(text: &str) -> Result<FileTimeout, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("off") {
        return Ok(FileTimeout(None));
    }
    let (number, unit_s) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        _ => (t, 1.0),
    };
    let seconds = number
        .parse::<f64>()
        .ok()
        .map(|v| v * unit_s)
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1e9)
        .ok_or_else(|| {
            format!(
                "`{text}` is not a duration: give seconds (`600`), `90s`, `30m`, `2h`, or `none`"
            )
        })?;
    Ok(FileTimeout(Some(Duration::from_secs_f64(seconds))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_timeout_parses_units_and_none() {
        let secs = |t: &str| parse_file_timeout(t).map(|f| f.0.map(|d| d.as_secs_f64()));
        assert_eq!(secs("600"), Ok(Some(600.0)));
        assert_eq!(secs("0.5"), Ok(Some(0.5)));
        assert_eq!(secs("90s"), Ok(Some(90.0)));
        assert_eq!(secs("1.5m"), Ok(Some(90.0)));
        assert_eq!(secs("6h"), Ok(Some(21600.0)));
        assert_eq!(secs("none"), Ok(None));
        assert_eq!(secs("OFF"), Ok(None));
        for bad in ["0", "-1", "", "s", "1d", "nan", "inf", "1e300"] {
            assert!(secs(bad).is_err(), "{bad} accepted");
        }
    }
}
