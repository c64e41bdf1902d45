//! `framegpt adapt` arguments.

use std::path::PathBuf;

use clap::Args;

use super::ModelArgs;

#[derive(Debug, Clone, Args)]
pub struct AdaptArgs {
    /// Normal footage of the camera: a folder (every video file under it, any depth) or a
    /// CSV `path,start_s,end_s` (a `label` column is allowed and ignored; empty times: the
    /// whole file; relative paths are relative to the CSV's folder).
    #[arg(long, value_name = "DIR|CSV")]
    pub data: PathBuf,
    /// The adapted model (same graph, new weights); the report goes to `<OUT>.report/`.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    // The model to adapt (default: the base model) and where it runs (for checks only:
    // training runs on the CPU).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Train nothing: keep the model's weights and only measure the camera's normal (the
    /// `anomaly` column). The ranking of anomalies comes from the normal, not from the
    /// training (docs/BENCHMARKS.md), so this gives the same `anomaly` in a fraction of the
    /// time; `surprise` stays the model's.
    #[arg(long, conflicts_with_all = ["unfreeze", "epochs", "steps", "lr", "weight_decay"])]
    pub normal_only: bool,
    /// Also train the last N temporal blocks of the frame path (0: only the prediction
    /// path: ctx_proj, the decoder blocks, head_ln, head, gate; embeddings, boundaries and
    /// labels stay exactly as they were).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub unfreeze: usize,
    /// Most passes over the training footage.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub epochs: usize,
    /// Stop after N optimizer steps (evaluating there) [default: no limit].
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Evaluate on the held-out footage every N steps (and at the end of every epoch).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub eval_every: usize,
    /// Stop after N evaluations without a lower held-out loss (the best weights are kept).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub patience: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 3e-4, value_name = "LR")]
    pub lr: f64,
    /// AdamW decoupled weight decay.
    #[arg(long, default_value_t = 0.0, value_name = "WD")]
    pub weight_decay: f64,
    /// Windows (of the model's T frames) per optimizer step.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub batch_size: usize,
    /// Distinct frames between the starts of consecutive training windows [default: half
    /// the model's context].
    #[arg(long, value_name = "N")]
    pub window_stride: Option<usize>,
    /// Fraction of the source files held out (split by file; with a single file, the
    /// last fraction of its frames).
    #[arg(long, default_value_t = 0.2, value_name = "F")]
    pub val_split: f64,
    /// Held-out windows per evaluation at most (spread evenly over the held-out footage).
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub val_windows: usize,
    /// Keep the windows (with the frozen part's output) in memory between epochs when
    /// they fit in this many MB; longer footage is decoded again every epoch, so memory
    /// stays bounded however long it is.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    pub memory_mb: usize,
    /// Seed of the split, the window order and nothing else (same seed, same file).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sample F frames per second of video time (default: every frame; use what you
    /// will pass to `analyze`).
    #[arg(long, value_name = "F")]
    pub fps: Option<f64>,
    /// At most N sampled frames per source file.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
}
