//! `framegpt finetune`: labelled clips → a classification head trained in Rust on the
//! frozen backbone's embeddings → one ONNX file (backbone + head as `logits`, labels in
//! its metadata) and a report folder next to it.
//!
//! [`run`] reads as its stages: settings → data → features → split → fit → evaluate and
//! report → export and self-check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use ndarray::{Array2, Array4};

use crate::cli::{FeaturesArg, FinetuneArgs, GlobalArgs, GroupByArg, HeadArg};
use crate::digest;
use crate::exit::{ExitCode, UsageError};
use crate::model::{contract, Device, Model, ModelContract, SessionOptions};
use crate::onnx_graph::{self, DenseLayer, HeadGraph};
use crate::sample::SampleSpec;
use crate::threads::ThreadBudget;
use crate::train::data::{split_by_source, DataError, Dataset, GroupBy};
use crate::train::features::{self, EmbeddingJob, Extracted};
use crate::train::head::{folded_logits, HeadKind, Standardizer};
use crate::train::metrics::{self, Confusion};
use crate::train::optim::{self, Split, TrainConfig, Trained};
use crate::train::rng::SplitMix64;
use crate::train::{self, Rows};
use crate::write;

/// Largest |ONNX Runtime logits − Rust logits| accepted by the export self-check.
const EXPORT_TOLERANCE: f32 = 1e-3;

/// Side of the raw-pixel baseline's frames.
const PIXELS_SIDE: u32 = 16;

/// `finetune`'s arguments, validated, in domain types.
#[derive(Debug, Clone)]
pub struct FinetuneSettings {
    pub data: PathBuf,
    pub test: Option<PathBuf>,
    pub output: PathBuf,
    /// None: the raw-pixel baseline (no backbone, no model written).
    pub backbone: Option<(PathBuf, Device)>,
    pub train: TrainConfig,
    pub val_split: f64,
    pub group_by: GroupBy,
    pub sample: SampleSpec,
    pub skip_frames: Option<usize>,
    pub temporal_lag: usize,
    pub cache_dir: PathBuf,
    pub threads: ThreadBudget,
    pub quiet: bool,
    pub verbose: bool,
    pub progress: bool,
}

impl FinetuneSettings {
    pub fn from_args(args: &FinetuneArgs, global: &GlobalArgs) -> Result<Self, UsageError> {
        validate(args)?;
        let backbone = match args.features {
            FeaturesArg::Embeddings => Some((args.model.model_path()?, args.model.device)),
            FeaturesArg::Pixels => None,
        };
        Ok(FinetuneSettings {
            data: args.data.clone(),
            test: args.test.clone(),
            output: args.output.clone(),
            backbone,
            train: TrainConfig {
                head: match args.head {
                    HeadArg::Softmax => HeadKind::Softmax,
                    HeadArg::Mlp => HeadKind::Mlp {
                        hidden: args.hidden,
                    },
                },
                epochs: args.epochs,
                patience: args.patience,
                batch_size: args.batch_size,
                learning_rate: args.lr,
                weight_decay: args.weight_decay,
                seed: args.seed,
            },
            val_split: args.val_split,
            group_by: match args.group_by {
                GroupByArg::File => GroupBy::File,
                GroupByArg::Name => GroupBy::Name,
            },
            sample: SampleSpec {
                target_fps: args.fps,
                max_frames: args.max_frames,
                ..SampleSpec::default()
            },
            skip_frames: args.skip_frames,
            temporal_lag: args.temporal_lag,
            cache_dir: args.cache.clone().unwrap_or_else(default_cache_dir),
            threads: ThreadBudget::new(global.total_threads(), args.jobs),
            quiet: global.quiet,
            verbose: global.verbose > 0,
            progress: global.progress(),
        })
    }

    fn say(&self, s: &str) {
        if !self.quiet {
            eprintln!("{s}");
        }
    }
}

fn validate(args: &FinetuneArgs) -> Result<(), UsageError> {
    if !(0.0..1.0).contains(&args.val_split) {
        return Err(UsageError::msg(format!(
            "--val-split must be in [0, 1), got {}",
            args.val_split
        )));
    }
    if args.epochs == 0 || args.batch_size == 0 || args.hidden == 0 {
        return Err(UsageError::msg(
            "--epochs, --batch-size and --hidden must be at least 1",
        ));
    }
    let lr_ok = args.lr.is_finite() && args.lr > 0.0;
    let wd_ok = args.weight_decay.is_finite() && args.weight_decay >= 0.0;
    if !(lr_ok && wd_ok) {
        return Err(UsageError::msg("--lr must be > 0 and --weight-decay >= 0"));
    }
    if let Some(f) = args.fps {
        if !(f.is_finite() && f > 0.0) {
            return Err(UsageError::msg(format!(
                "--fps must be a positive number, got {f}"
            )));
        }
    }
    if args.max_frames == Some(0) || args.jobs == Some(0) {
        return Err(UsageError::msg(
            "--max-frames and --jobs must be at least 1",
        ));
    }
    Ok(())
}

fn usage(e: impl Into<anyhow::Error>) -> anyhow::Error {
    UsageError(e.into()).into()
}

pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("framegpt").join("features")
}

/// `<out>.report/`
pub fn report_dir(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_os_string();
    s.push(".report");
    PathBuf::from(s)
}

/// The labelled clips: training set and optional test set.
struct Data {
    train: Dataset,
    test: Option<Dataset>,
    /// Clips left out because they had no usable frames.
    left_out: usize,
}

/// Frames of each side of the split, ready for the head.
struct SplitRows {
    train_clips: usize,
    val_clips: usize,
    train: Rows,
    val: Rows,
    test: Option<Rows>,
}

/// One evaluated set: its name, per-frame and per-clip confusion.
type Evaluation = (&'static str, Confusion, Confusion);

pub fn run(args: &FinetuneArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let settings = FinetuneSettings::from_args(args, global)?;
    let started = Instant::now();
    let mut data = load_data(&settings)?;
    settings.threads.init_rayon();
    let backbone = match &settings.backbone {
        Some((path, device)) => Some(load_backbone(path, *device, settings.threads)?),
        None => None,
    };
    let (extracted, skip_frames) = extract_features(&settings, backbone.as_ref(), &data)?;
    drop_unusable(&mut data, &extracted, skip_frames)?;
    let rows = split_rows(
        &settings,
        &data.train,
        data.test.as_ref(),
        &extracted,
        skip_frames,
    );
    if rows.train.y.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "no training frames: every training clip was left out (see the warnings above)"
        )));
    }
    let (standardizer, trained, train_s) = fit(&settings, &data.train, &rows);
    let (report, evals, summary) = evaluate_all(
        &settings,
        &data.train,
        &rows,
        &standardizer,
        &trained,
        train_s,
    );
    settings.say(report.trim_end());
    let report_path = report_dir(&settings.output);
    write_report(&report_path, &trained, &report, &evals, &summary)
        .with_context(|| format!("failed to write the report `{}`", report_path.display()))?;
    let Some(backbone) = backbone else {
        settings.say(&format!(
            "baseline features: no model written; report: `{}`",
            report_path.display()
        ));
        return Ok(ExitCode::Success);
    };
    let layers = trained.head.folded(&standardizer);
    let provenance = provenance(
        &settings,
        &backbone,
        &data,
        &rows,
        &trained,
        skip_frames,
        summary,
    );
    let output = &settings.output;
    export(
        &backbone,
        &layers,
        settings.temporal_lag,
        &data.train.labels,
        &provenance,
        output,
    )?;
    let diff = self_check(
        output,
        &layers,
        settings.temporal_lag,
        &backbone.contract,
        settings.threads,
    )?;
    settings.say(&format!(
        "wrote `{}` ({} labels; ONNX Runtime logits match the Rust head within {diff:.1e}); report: `{}`; {:.1} s in all",
        output.display(),
        data.train.labels.len(),
        report_path.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::Success)
}

/// The training and test sets, without classes too small to train and validate on.
fn load_data(settings: &FinetuneSettings) -> Result<Data> {
    let mut train = Dataset::load(&settings.data).map_err(usage)?;
    for (label, n) in train.drop_small_classes(2) {
        tracing::warn!(
            "class `{label}` has {n} clip (at least 2 are needed: one to train on, one to validate); it is left out"
        );
    }
    if train.labels.len() < 2 {
        return Err(usage(DataError::TooFewClasses(train.labels.len())));
    }
    let test = match &settings.test {
        Some(p) => Some(Dataset::load(p).map_err(usage)?),
        None => None,
    };
    Ok(Data {
        train,
        test,
        left_out: 0,
    })
}

/// Per-frame features of every source file (backbone embeddings, cached, or the raw-pixel
/// baseline), and the frames to skip at the start of each clip.
fn extract_features(
    settings: &FinetuneSettings,
    backbone: Option<&Backbone>,
    data: &Data,
) -> Result<(Extracted, usize)> {
    let mut sources: Vec<PathBuf> = data.train.clips.iter().map(|c| c.path.clone()).collect();
    if let Some(t) = &data.test {
        sources.extend(t.clips.iter().map(|c| c.path.clone()));
    }
    sources.sort();
    sources.dedup();
    let feature_started = Instant::now();
    let cancel = AtomicBool::new(false);
    let Some(b) = backbone else {
        let e = features::extract_pixels(&sources, &settings.sample, PIXELS_SIDE);
        settings.say(&format!(
            "features: raw {PIXELS_SIDE}x{PIXELS_SIDE} pixels of {} files (baseline, no model; {:.1} s)",
            e.decoded,
            feature_started.elapsed().as_secs_f64()
        ));
        return Ok((e, settings.skip_frames.unwrap_or(0)));
    };
    let model = Model::load(&b.path, b.session)?;
    let job = EmbeddingJob {
        model_path: &b.path,
        model_sha256: &b.sha256,
        cache_dir: &settings.cache_dir,
        sample: &settings.sample,
        window_stride: (b.contract.context_frames / 2).max(1),
        threads: settings.threads,
        progress: settings.progress,
    };
    let e = features::extract_embeddings(&sources, model, &job, &cancel)?;
    settings.say(&format!(
        "features: {} files from the cache, {} decoded ({:.1} s; cache `{}`)",
        e.cache_hits,
        e.decoded,
        feature_started.elapsed().as_secs_f64(),
        settings.cache_dir.display()
    ));
    let skip = settings
        .skip_frames
        .unwrap_or(b.contract.context_frames / 2);
    Ok((e, skip))
}

/// Leaves out clips without features (unreadable, or no frames in their range) before
/// splitting, so they take no place in the validation split; aligns the test set's labels.
fn drop_unusable(data: &mut Data, extracted: &Extracted, skip_frames: usize) -> Result<()> {
    let mut left_out = 0;
    let mut drop_from = |set: &mut Dataset| {
        let all: Vec<usize> = (0..set.clips.len()).collect();
        let (_, problems) = train::gather(set, &all, extracted, skip_frames, 0);
        let mut keep = vec![true; set.clips.len()];
        for (ci, why) in &problems {
            left_out += 1;
            keep[*ci] = false;
            tracing::warn!("clip `{}` left out: {why}", set.clips[*ci].origin);
        }
        set.retain_clips(&keep);
    };
    drop_from(&mut data.train);
    if let Some(t) = &mut data.test {
        drop_from(t);
    }
    data.left_out = left_out;
    for (label, n) in data.train.drop_small_classes(2) {
        tracing::warn!(
            "class `{label}` has {n} usable clip left (at least 2 are needed); it is left out"
        );
    }
    if data.train.labels.len() < 2 {
        return Err(usage(DataError::TooFewClasses(data.train.labels.len())));
    }
    if let Some(t) = &mut data.test {
        for c in t.align_to(&data.train.labels) {
            tracing::warn!(
                "test clip `{}`: label not in the training set; left out",
                c.origin
            );
        }
    }
    Ok(())
}

/// The split by source file, and the frames of each side.
fn split_rows(
    settings: &FinetuneSettings,
    dataset: &Dataset,
    test_set: Option<&Dataset>,
    extracted: &Extracted,
    skip_frames: usize,
) -> SplitRows {
    let seed = settings.train.seed;
    let (train_idx, val_idx) =
        split_by_source(&dataset.clips, settings.val_split, seed, settings.group_by);
    let counts = dataset.counts();
    let classes: Vec<String> = dataset
        .labels
        .iter()
        .zip(&counts)
        .map(|(l, n)| format!("{l} {n}"))
        .collect();
    settings.say(&format!(
        "data: {} clips in {} classes ({}); {} for training, {} for validation (split by source {}, seed {seed})",
        dataset.clips.len(),
        dataset.labels.len(),
        classes.join(", "),
        train_idx.len(),
        val_idx.len(),
        match settings.group_by {
            GroupBy::File => "file",
            GroupBy::Name => "file name",
        },
    ));
    if val_idx.is_empty() && settings.val_split > 0.0 {
        tracing::warn!("no class has 2 source files, so there is no validation split: training runs all epochs and keeps the last weights");
    }
    let lag = settings.temporal_lag;
    let gather =
        |set: &Dataset, idx: &[usize]| train::gather(set, idx, extracted, skip_frames, lag).0;
    SplitRows {
        train_clips: train_idx.len(),
        val_clips: val_idx.len(),
        train: gather(dataset, &train_idx),
        val: gather(dataset, &val_idx),
        test: test_set.map(|t| gather(t, &(0..t.clips.len()).collect::<Vec<_>>())),
    }
}

/// Standardizes the features and trains the head; returns the seconds training took.
fn fit(
    settings: &FinetuneSettings,
    dataset: &Dataset,
    rows: &SplitRows,
) -> (Standardizer, Trained, f64) {
    let standardizer = Standardizer::fit(rows.train.x.view());
    let xs_train = standardizer.apply(rows.train.x.view());
    let xs_val = standardizer.apply(rows.val.x.view());
    let train_split = Split {
        x: xs_train.view(),
        y: &rows.train.y,
    };
    let val_split = Split {
        x: xs_val.view(),
        y: &rows.val.y,
    };
    let has_val = !rows.val.y.is_empty();
    let (quiet, verbose) = (settings.quiet, settings.verbose);
    let train_started = Instant::now();
    let trained = optim::train(
        &settings.train,
        dataset.labels.len(),
        &train_split,
        has_val.then_some(&val_split),
        |m| {
            if verbose || (!quiet && (m.epoch == 1 || m.epoch % 25 == 0)) {
                eprintln!(
                    "epoch {:>4}  train loss {:.4}{}",
                    m.epoch,
                    m.train_loss,
                    match (m.val_loss, m.val_accuracy) {
                        (Some(l), Some(a)) =>
                            format!("  val loss {l:.4}  val accuracy {:.1} %", 100.0 * a),
                        _ => String::new(),
                    }
                )
            }
        },
    );
    (standardizer, trained, train_started.elapsed().as_secs_f64())
}

/// The report text, the confusion matrices and the summary of validation and test.
fn evaluate_all(
    settings: &FinetuneSettings,
    dataset: &Dataset,
    rows: &SplitRows,
    standardizer: &Standardizer,
    trained: &Trained,
    train_s: f64,
) -> (
    String,
    Vec<Evaluation>,
    serde_json::Map<String, serde_json::Value>,
) {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "head: {:?}; {} train frames ({} clips), {} validation frames; {} epochs in {:.2} s, kept epoch {}{}",
        settings.train.head,
        rows.train.y.len(),
        rows.train_clips,
        rows.val.y.len(),
        trained.history.len(),
        train_s,
        trained.best_epoch,
        if trained.stopped_early { " (early stop)" } else { "" }
    );
    let mut summary = serde_json::Map::new();
    let mut evals: Vec<Evaluation> = Vec::new();
    for (name, set) in [
        ("validation", Some(&rows.val)),
        ("test", rows.test.as_ref()),
    ] {
        let Some(set) = set.filter(|r| !r.y.is_empty()) else {
            continue;
        };
        let (frames, clips) = evaluate(&trained.head, standardizer, set, &dataset.labels);
        let _ = write!(report, "{}", frames.render(&format!("{name} (per frame)")));
        let _ = writeln!(
            report,
            "{name} (per clip, mean logits): accuracy {:.1} % ({} clips)",
            100.0 * clips.accuracy(),
            clips.total()
        );
        summary.insert(
            name.to_string(),
            serde_json::json!({
                "frame_accuracy": frames.accuracy(),
                "frame_balanced_accuracy": frames.balanced_accuracy(),
                "clip_accuracy": clips.accuracy(),
                "frames": frames.total(),
                "clips": clips.total(),
            }),
        );
        evals.push((name, frames, clips));
    }
    (report, evals, summary)
}

/// What the exported file records about how it was made.
fn provenance(
    settings: &FinetuneSettings,
    backbone: &Backbone,
    data: &Data,
    rows: &SplitRows,
    trained: &Trained,
    skip_frames: usize,
    summary: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let dataset = &data.train;
    let counts = dataset.counts();
    serde_json::json!({
        "backbone": backbone.provenance,
        "backbone_sha256": backbone.sha256,
        "finetune": {
            "tool": format!("framegpt {} finetune", env!("CARGO_PKG_VERSION")),
            "config": settings.train,
            "features": {
                "fps": settings.sample.target_fps,
                "max_frames": settings.sample.max_frames,
                "skip_frames": skip_frames,
                "temporal_lag": settings.temporal_lag,
                "standardization": "mean/std of the training frames, folded into the first layer",
            },
            "data": {
                "source": settings.data.display().to_string(),
                "clips_per_class": dataset.labels.iter().cloned().zip(counts.iter().copied()).collect::<BTreeMap<_, _>>(),
                "train_clips": rows.train_clips,
                "val_clips": rows.val_clips,
                "split_group_by": format!("{:?}", settings.group_by).to_lowercase(),
                "train_frames": rows.train.y.len(),
                "val_frames": rows.val.y.len(),
                "clips_left_out": data.left_out,
            },
            "epochs_run": trained.history.len(),
            "best_epoch": trained.best_epoch,
            "results": summary,
        }
    })
}

struct Backbone {
    path: PathBuf,
    bytes: Vec<u8>,
    sha256: String,
    contract: ModelContract,
    provenance: serde_json::Value,
    session: SessionOptions,
}

fn load_backbone(path: &Path, device: Device, threads: ThreadBudget) -> Result<Backbone> {
    let path = path.to_path_buf();
    let session = SessionOptions {
        device,
        threads: threads.ort,
    };
    let probe = Model::load(&path, session).map_err(usage)?;
    let contract = probe.contract().clone();
    drop(probe);
    if contract.labels.is_some() {
        return Err(usage(anyhow::anyhow!(
            "model `{}` already has a classification head\nhint: finetune from a backbone without one (e.g. the base model)",
            path.display()
        )));
    }
    let bytes = fs_err::read(&path).map_err(usage)?;
    let sha256 = digest::sha256_hex(&bytes);
    let provenance = contract
        .provenance
        .clone()
        .unwrap_or(serde_json::Value::Null);
    Ok(Backbone {
        path,
        bytes,
        sha256,
        contract,
        provenance,
        session,
    })
}

/// Frame-level and clip-level confusion matrices of the head on `rows`.
fn evaluate(
    head: &crate::train::head::Head,
    standardizer: &Standardizer,
    rows: &Rows,
    labels: &[String],
) -> (Confusion, Confusion) {
    let logits = head.logits(standardizer.apply(rows.x.view()).view());
    let frames = Confusion::new(labels, &rows.y, &optim::predictions(&logits));
    let (truth, pred) = train::clip_predictions(rows, &logits);
    (frames, Confusion::new(labels, &truth, &pred))
}

fn write_report(
    dir: &Path,
    trained: &Trained,
    text: &str,
    evals: &[(&str, Confusion, Confusion)],
    summary: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    fs_err::create_dir_all(dir)?;
    write::write_csv_atomic(
        &dir.join("metrics.csv"),
        &metrics::METRICS_HEADER,
        &metrics::metrics_records(&trained.history),
    )?;
    for (name, frames, _) in evals {
        let (header, rows) = frames.to_records();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        write::write_csv_atomic(&dir.join(format!("confusion_{name}.csv")), &header, &rows)?;
        write::write_csv_atomic(
            &dir.join(format!("per_class_{name}.csv")),
            &["label", "precision", "recall", "support"],
            &frames.per_class_records(),
        )?;
    }
    write::write_atomic(&dir.join("report.txt"), text.as_bytes())?;
    write::write_atomic(
        &dir.join("curve.svg"),
        metrics::curve_svg(&trained.history, trained.best_epoch).as_bytes(),
    )?;
    let summary = serde_json::json!({
        "best_epoch": trained.best_epoch,
        "epochs_run": trained.history.len(),
        "stopped_early": trained.stopped_early,
        "results": summary,
    });
    write::write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )
}

fn export(
    backbone: &Backbone,
    layers: &[DenseLayer],
    temporal_lag: usize,
    labels: &[String],
    provenance: &serde_json::Value,
    output: &Path,
) -> Result<()> {
    let head = HeadGraph {
        input: contract::OUTPUT_EMBEDDINGS.to_string(),
        output: contract::OUTPUT_LOGITS.to_string(),
        layers: layers.to_vec(),
        temporal_lag,
        frames: backbone.contract.context_frames,
        output_shape: vec![
            None,
            Some(backbone.contract.context_frames as i64),
            Some(labels.len() as i64),
        ],
    };
    let metadata = BTreeMap::from([
        (
            "framegpt.labels".to_string(),
            serde_json::to_string(labels)?,
        ),
        (
            "framegpt.provenance".to_string(),
            serde_json::to_string(provenance)?,
        ),
    ]);
    let bytes = onnx_graph::attach_head(&backbone.bytes, &head, &metadata)
        .with_context(|| format!("failed to attach the head to `{}`", backbone.path.display()))?;
    write::write_atomic(output, &bytes)
        .with_context(|| format!("failed to write `{}`", output.display()))
}

/// The Rust head on a batch of windows of embeddings [B, T, D], as the exported graph
/// computes it: logits [B·T, K] in (window, step) order.
pub fn window_logits(
    layers: &[DenseLayer],
    temporal_lag: usize,
    embeddings: &ndarray::Array3<f32>,
) -> Array2<f32> {
    let (b, t, _) = embeddings.dim();
    let steps: Vec<usize> = (0..t).collect();
    let mut parts = Vec::new();
    for w in 0..b {
        let e = embeddings.index_axis(ndarray::Axis(0), w).to_owned();
        let x = train::with_delta(&e, &steps, temporal_lag).mapv(|v| v as f32);
        parts.push(folded_logits(layers, x.view()));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(ndarray::Axis(0), &views).expect("same width")
}

/// Loads the exported file with ONNX Runtime, runs one window of seeded random patches,
/// and compares its `logits` with the Rust head on its `embeddings`; returns the largest
/// difference.
fn self_check(
    path: &Path,
    layers: &[DenseLayer],
    temporal_lag: usize,
    contract: &ModelContract,
    threads: ThreadBudget,
) -> Result<f32> {
    let mut model = Model::load(
        path,
        SessionOptions {
            device: Device::Cpu,
            threads: threads.ort,
        },
    )
    .with_context(|| format!("the exported model `{}` does not load", path.display()))?;
    let mut rng = SplitMix64::new(1);
    let patches = Array4::from_shape_fn(
        (
            1,
            contract.context_frames,
            contract.num_patches(),
            contract.patch_dim(),
        ),
        |_| (rng.next_f64() * 2.0 - 1.0) as f32,
    );
    let out = model.run(patches.view())?;
    let onnx_logits = out
        .logits
        .context("the exported model returned no logits")?;
    let rust = window_logits(layers, temporal_lag, &out.embeddings);
    let diff = onnx_logits
        .iter()
        .zip(rust.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    anyhow::ensure!(
        diff <= EXPORT_TOLERANCE,
        "self-check failed: ONNX Runtime's logits differ from the Rust head's by {diff}"
    );
    Ok(diff)
}
