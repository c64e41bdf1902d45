//! `framegpt finetune` arguments.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::ModelArgs;

#[derive(Debug, Clone, Args)]
pub struct FinetuneArgs {
    /// Labelled clips: a folder per class (`DIR/<label>/*.mp4`) or a CSV
    /// `path,start_s,end_s,label` (empty times: the whole file; relative paths are
    /// relative to the CSV's folder).
    #[arg(long, value_name = "DIR|CSV")]
    pub data: PathBuf,
    /// The new model file (backbone + head); the report goes to `<OUT>.report/`.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    // The backbone (without a head) and where it runs.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Separate test set (same formats as --data), evaluated once with the final head.
    #[arg(long, value_name = "DIR|CSV")]
    pub test: Option<PathBuf>,
    /// The head to train (default mlp: measured better than softmax on camera motion and
    /// not worse on content, docs/BENCHMARKS.md).
    #[arg(long, value_enum, default_value_t = HeadArg::Mlp)]
    pub head: HeadArg,
    /// Hidden units of `--head mlp`.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub hidden: usize,
    /// Fraction of the source files held out for validation (split by file, never by frame).
    #[arg(long, default_value_t = 0.2, value_name = "F")]
    pub val_split: f64,
    /// What the validation split keeps together: the source file, or the file name (for
    /// sets where the same footage is rendered into several classes, e.g. `static/a.mp4`
    /// and `pan_left/a.mp4`).
    #[arg(long, value_enum, default_value_t = GroupByArg::File)]
    pub group_by: GroupByArg,
    /// Seed of the split, the initial weights and the batch order (same seed, same head).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Most epochs.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub epochs: usize,
    /// Stop after N epochs without a better validation loss (the best epoch is kept).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub patience: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 0.003, value_name = "LR")]
    pub lr: f64,
    /// AdamW decoupled weight decay.
    #[arg(long, default_value_t = 0.01, value_name = "WD")]
    pub weight_decay: f64,
    /// Frames per mini-batch.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub batch_size: usize,
    /// Skip the first N frames of every clip (their causal embeddings have seen little
    /// of the clip), but never more than half of a clip's frames, so a short clip keeps
    /// its last frames [default: half the model's context].
    #[arg(long, value_name = "N")]
    pub skip_frames: Option<usize>,
    /// Also feed the head the change of the embedding over N frames ([e_t, e_t − e_{t−N}],
    /// computed inside each window of the exported graph), so it can see motion; 0: off.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub temporal_lag: usize,
    /// What the head sees: the backbone's embeddings, the camera motion of each frame
    /// against the one before it (per-patch shifts from the input pixels at two scales,
    /// summarized as pan, zoom, roll and the shift per quadrant; computed inside the
    /// exported graph too), or both; `auto` trains all three (with --unfreeze: both and
    /// embeddings) and keeps the one with the best validation accuracy (both where there
    /// is no validation split).
    #[arg(long, value_enum, default_value_t = HeadInputsArg::Auto)]
    pub head_inputs: HeadInputsArg,
    /// Also train the last N temporal blocks of the backbone's frame path (0: only the
    /// head, on cached embeddings); needs a model exported with its parameter names.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub unfreeze: usize,
    /// AdamW learning rate of the unfrozen blocks [default: --lr / 10].
    #[arg(long, value_name = "LR")]
    pub backbone_lr: Option<f64>,
    /// Train without a class none of whose clips could be used (default: exit 2 naming it).
    #[arg(long)]
    pub allow_missing_classes: bool,
    /// Sample F frames per second of video time (default: every frame).
    #[arg(long, value_name = "F")]
    pub fps: Option<f64>,
    /// At most N sampled frames per source file.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
    /// Feature cache folder [default: ~/.cache/framegpt/features].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Hold the cached windows and the training inputs in memory up to this many MB;
    /// beyond it they are read from the cache and from a scratch file in the cache folder
    /// when used, so memory stays bounded however large the training set.
    #[arg(long, default_value_t = 1024, value_name = "MB")]
    pub memory_mb: usize,
    /// Files decoded at once.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Features: the backbone's embeddings, or (baseline, no model) 16x16 raw pixels of
    /// single frames; `pixels` writes the report but no model.
    #[arg(long, value_enum, default_value_t = FeaturesArg::Embeddings, hide = true)]
    pub features: FeaturesArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeadArg {
    /// Softmax regression on the embedding.
    Softmax,
    /// One hidden ReLU layer (--hidden units).
    Mlp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeadInputsArg {
    /// Each of the three, kept by validation accuracy.
    Auto,
    /// Embeddings and camera motion.
    Both,
    /// The embeddings only (the exported graph computes no motion).
    Embeddings,
    /// The camera motion only.
    Motion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupByArg {
    /// Clips of one source file stay on one side.
    File,
    /// Files with the same name (in any class folder) stay on one side.
    Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FeaturesArg {
    Embeddings,
    Pixels,
}
