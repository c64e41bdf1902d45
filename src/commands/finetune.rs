//! `framegpt finetune`: labelled clips → a classification head trained in Rust on the
//! frozen backbone's embeddings → one ONNX file (backbone + head as `logits`, labels in
//! its metadata) and a report folder next to it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use ndarray::{Array2, Array4};
use sha2::{Digest, Sha256};

use crate::cli::GlobalArgs;
use crate::commands::analyze::UsageError;
use crate::exit::ExitCode;
use crate::model::{contract, Device, Model, ModelContract, SessionOptions};
use crate::onnx_graph::{self, DenseLayer, HeadGraph};
use crate::sample::SampleSpec;
use crate::settings::{self, ThreadBudget};
use crate::train::data::{split_by_source, Dataset, GroupBy};
use crate::train::features::{self, EmbeddingJob};
use crate::train::head::{folded_logits, HeadKind, Standardizer};
use crate::train::metrics::{self, Confusion};
use crate::train::optim::{self, Split, TrainConfig};
use crate::train::rng::SplitMix64;
use crate::train::{self, Rows};
use crate::write;

/// Largest |ONNX Runtime logits − Rust logits| accepted by the export self-check.
const EXPORT_TOLERANCE: f32 = 1e-3;

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
    /// Backbone model (ONNX, framegpt contract v1, without a head) [default: the shipped base model].
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Separate test set (same formats as --data), evaluated once with the final head.
    #[arg(long, value_name = "DIR|CSV")]
    pub test: Option<PathBuf>,
    /// The head to train.
    #[arg(long, value_enum, default_value_t = HeadArg::Softmax)]
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
    /// of the clip) [default: half the model's context].
    #[arg(long, value_name = "N")]
    pub skip_frames: Option<usize>,
    /// Also feed the head the change of the embedding over N frames ([e_t, e_t − e_{t−N}],
    /// computed inside each window of the exported graph), so it can see motion; 0: off.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub temporal_lag: usize,
    /// Sample F frames per second of video time (default: every frame).
    #[arg(long, value_name = "F")]
    pub fps: Option<f64>,
    /// At most N sampled frames per source file.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
    /// Feature cache folder [default: ~/.cache/framegpt/features].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Where the backbone runs: cpu, cuda, cuda:N, or auto.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
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

/// Side of the raw-pixel baseline's frames.
const PIXELS_SIDE: u32 = 16;

fn usage(e: impl Into<anyhow::Error>) -> anyhow::Error {
    UsageError(e.into()).into()
}

fn validate(args: &FinetuneArgs) -> Result<()> {
    let bad = |m: String| Err(usage(anyhow::anyhow!(m)));
    if !(0.0..1.0).contains(&args.val_split) {
        return bad(format!(
            "--val-split must be in [0, 1), got {}",
            args.val_split
        ));
    }
    if args.epochs == 0 || args.batch_size == 0 || args.hidden == 0 {
        return bad("--epochs, --batch-size and --hidden must be at least 1".into());
    }
    let lr_ok = args.lr.is_finite() && args.lr > 0.0;
    let wd_ok = args.weight_decay.is_finite() && args.weight_decay >= 0.0;
    if !(lr_ok && wd_ok) {
        return bad("--lr must be > 0 and --weight-decay >= 0".into());
    }
    if let Some(f) = args.fps {
        if !(f.is_finite() && f > 0.0) {
            return bad(format!("--fps must be a positive number, got {f}"));
        }
    }
    if args.max_frames == Some(0) || args.jobs == Some(0) {
        return bad("--max-frames and --jobs must be at least 1".into());
    }
    Ok(())
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

pub fn run(args: &FinetuneArgs, global: &GlobalArgs) -> Result<ExitCode> {
    validate(args)?;
    let started = Instant::now();
    let quiet = global.quiet;
    let say = |s: &str| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    let mut dataset = Dataset::load(&args.data).map_err(usage)?;
    for (label, n) in dataset.drop_small_classes(2) {
        tracing::warn!(
            "class `{label}` has {n} clip (at least 2 are needed: one to train on, one to validate); it is left out"
        );
    }
    if dataset.labels.len() < 2 {
        return Err(usage(crate::train::data::DataError::TooFewClasses(
            dataset.labels.len(),
        )));
    }
    let mut test_set = match &args.test {
        Some(p) => Some(Dataset::load(p).map_err(usage)?),
        None => None,
    };

    let threads = ThreadBudget::new(settings::total_threads(global), args.jobs);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.total)
        .build_global();
    let sample = SampleSpec {
        target_fps: args.fps,
        max_frames: args.max_frames,
        ..SampleSpec::default()
    };
    let mut sources: Vec<PathBuf> = dataset.clips.iter().map(|c| c.path.clone()).collect();
    if let Some(t) = &test_set {
        sources.extend(t.clips.iter().map(|c| c.path.clone()));
    }
    sources.sort();
    sources.dedup();

    let feature_started = Instant::now();
    let backbone = match args.features {
        FeaturesArg::Embeddings => Some(load_backbone(args, threads)?),
        FeaturesArg::Pixels => None,
    };
    let cancel = AtomicBool::new(false);
    let (extracted, skip_frames) = match &backbone {
        Some(b) => {
            let cache_dir = args.cache.clone().unwrap_or_else(default_cache_dir);
            let model = Model::load(&b.path, b.session)?;
            let progress = !quiet && !global.no_progress && global.verbose == 0;
            let job = EmbeddingJob {
                model_path: &b.path,
                model_sha256: &b.sha256,
                cache_dir: &cache_dir,
                sample: &sample,
                window_stride: (b.contract.context_frames / 2).max(1),
                threads,
                progress,
            };
            let e = features::extract_embeddings(&sources, model, &job, &cancel)?;
            say(&format!(
                "features: {} files from the cache, {} decoded ({:.1} s; cache `{}`)",
                e.cache_hits,
                e.decoded,
                feature_started.elapsed().as_secs_f64(),
                cache_dir.display()
            ));
            (e, args.skip_frames.unwrap_or(b.contract.context_frames / 2))
        }
        None => {
            let e = features::extract_pixels(&sources, &sample, PIXELS_SIDE);
            say(&format!(
                "features: raw {PIXELS_SIDE}x{PIXELS_SIDE} pixels of {} files (baseline, no model; {:.1} s)",
                e.decoded,
                feature_started.elapsed().as_secs_f64()
            ));
            (e, args.skip_frames.unwrap_or(0))
        }
    };
    // Leave out clips without features (unreadable, or no frames in their range) before
    // splitting, so they take no place in the validation split.
    let mut unreadable = 0;
    let mut drop_unusable = |set: &mut Dataset| {
        let all: Vec<usize> = (0..set.clips.len()).collect();
        let (_, problems) = train::gather(set, &all, &extracted, skip_frames, 0);
        let mut keep = vec![true; set.clips.len()];
        for (ci, why) in &problems {
            unreadable += 1;
            keep[*ci] = false;
            tracing::warn!("clip `{}` left out: {why}", set.clips[*ci].origin);
        }
        set.retain_clips(&keep);
    };
    drop_unusable(&mut dataset);
    if let Some(t) = &mut test_set {
        drop_unusable(t);
    }
    for (label, n) in dataset.drop_small_classes(2) {
        tracing::warn!(
            "class `{label}` has {n} usable clip left (at least 2 are needed); it is left out"
        );
    }
    if dataset.labels.len() < 2 {
        return Err(usage(crate::train::data::DataError::TooFewClasses(
            dataset.labels.len(),
        )));
    }
    if let Some(t) = &mut test_set {
        for c in t.align_to(&dataset.labels) {
            tracing::warn!(
                "test clip `{}`: label not in the training set; left out",
                c.origin
            );
        }
    }
    let (train_idx, val_idx) = split_by_source(
        &dataset.clips,
        args.val_split,
        args.seed,
        match args.group_by {
            GroupByArg::File => GroupBy::File,
            GroupByArg::Name => GroupBy::Name,
        },
    );
    let counts = dataset.counts();
    say(&format!(
        "data: {} clips in {} classes ({}); {} for training, {} for validation (split by source {}, seed {})",
        dataset.clips.len(),
        dataset.labels.len(),
        dataset
            .labels
            .iter()
            .zip(&counts)
            .map(|(l, n)| format!("{l} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        train_idx.len(),
        val_idx.len(),
        match args.group_by {
            GroupByArg::File => "file",
            GroupByArg::Name => "file name",
        },
        args.seed
    ));
    if val_idx.is_empty() && args.val_split > 0.0 {
        tracing::warn!("no class has 2 source files, so there is no validation split: training runs all epochs and keeps the last weights");
    }
    let (train_rows, _) = train::gather(
        &dataset,
        &train_idx,
        &extracted,
        skip_frames,
        args.temporal_lag,
    );
    let (val_rows, _) = train::gather(
        &dataset,
        &val_idx,
        &extracted,
        skip_frames,
        args.temporal_lag,
    );
    let test_rows = test_set.as_ref().map(|t| {
        let all: Vec<usize> = (0..t.clips.len()).collect();
        train::gather(t, &all, &extracted, skip_frames, args.temporal_lag).0
    });
    if train_rows.y.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "no training frames: every training clip was left out (see the warnings above)"
        )));
    }

    let standardizer = Standardizer::fit(train_rows.x.view());
    let xs_train = standardizer.apply(train_rows.x.view());
    let xs_val = standardizer.apply(val_rows.x.view());
    let config = TrainConfig {
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
    };
    let train_split = Split {
        x: xs_train.view(),
        y: &train_rows.y,
    };
    let val_split = Split {
        x: xs_val.view(),
        y: &val_rows.y,
    };
    let has_val = !val_rows.y.is_empty();
    let train_started = Instant::now();
    let trained = optim::train(
        &config,
        dataset.labels.len(),
        &train_split,
        has_val.then_some(&val_split),
        |m| {
            if global.verbose > 0 || (!quiet && (m.epoch == 1 || m.epoch % 25 == 0)) {
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
    let train_s = train_started.elapsed().as_secs_f64();

    // Evaluation.
    let mut report = String::new();
    let _ = writeln!(
        report,
        "head: {:?}; {} train frames ({} clips), {} validation frames; {} epochs in {:.2} s, kept epoch {}{}",
        config.head,
        train_rows.y.len(),
        train_idx.len(),
        val_rows.y.len(),
        trained.history.len(),
        train_s,
        trained.best_epoch,
        if trained.stopped_early { " (early stop)" } else { "" }
    );
    let mut summary = serde_json::Map::new();
    let mut evals: Vec<(&str, Confusion, Confusion)> = Vec::new();
    for (name, rows) in [
        ("validation", Some(&val_rows)),
        ("test", test_rows.as_ref()),
    ] {
        let Some(rows) = rows.filter(|r| !r.y.is_empty()) else {
            continue;
        };
        let (frames, clips) = evaluate(&trained.head, &standardizer, rows, &dataset.labels);
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
    say(report.trim_end());

    let report_path = report_dir(&args.output);
    write_report(&report_path, &trained, &report, &evals, &summary)
        .with_context(|| format!("failed to write the report `{}`", report_path.display()))?;

    let Some(backbone) = backbone else {
        say(&format!(
            "baseline features: no model written; report: `{}`",
            report_path.display()
        ));
        return Ok(ExitCode::Success);
    };
    let layers = trained.head.folded(&standardizer);
    let provenance = serde_json::json!({
        "backbone": backbone.provenance,
        "backbone_sha256": backbone.sha256,
        "finetune": {
            "tool": format!("framegpt {} finetune", env!("CARGO_PKG_VERSION")),
            "config": config,
            "features": {
                "fps": args.fps,
                "max_frames": args.max_frames,
                "skip_frames": skip_frames,
                "temporal_lag": args.temporal_lag,
                "standardization": "mean/std of the training frames, folded into the first layer",
            },
            "data": {
                "source": args.data.display().to_string(),
                "clips_per_class": dataset.labels.iter().cloned().zip(counts.iter().copied()).collect::<BTreeMap<_, _>>(),
                "train_clips": train_idx.len(),
                "val_clips": val_idx.len(),
                "split_group_by": format!("{:?}", args.group_by).to_lowercase(),
                "train_frames": train_rows.y.len(),
                "val_frames": val_rows.y.len(),
                "clips_left_out": unreadable,
            },
            "epochs_run": trained.history.len(),
            "best_epoch": trained.best_epoch,
            "results": summary,
        }
    });
    export(
        &backbone,
        &layers,
        args.temporal_lag,
        &dataset.labels,
        &provenance,
        &args.output,
    )?;
    let diff = self_check(
        &args.output,
        &layers,
        args.temporal_lag,
        &backbone.contract,
        threads,
    )?;
    say(&format!(
        "wrote `{}` ({} labels; ONNX Runtime logits match the Rust head within {diff:.1e}); report: `{}`; {:.1} s in all",
        args.output.display(),
        dataset.labels.len(),
        report_path.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::Success)
}

struct Backbone {
    path: PathBuf,
    bytes: Vec<u8>,
    sha256: String,
    contract: ModelContract,
    provenance: serde_json::Value,
    session: SessionOptions,
}

fn load_backbone(args: &FinetuneArgs, threads: ThreadBudget) -> Result<Backbone> {
    let path = match &args.model {
        Some(p) => p.clone(),
        None => settings::default_model().map_err(usage)?,
    };
    let device: Device = args
        .device
        .parse()
        .map_err(|e: String| usage(anyhow::anyhow!(e)))?;
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
    let sha256 = features::hex(&Sha256::digest(&bytes));
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
    trained: &optim::Trained,
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
    write_atomic(&dir.join("report.txt"), text.as_bytes())?;
    write_atomic(
        &dir.join("curve.svg"),
        metrics::curve_svg(&trained.history, trained.best_epoch).as_bytes(),
    )?;
    let summary = serde_json::json!({
        "best_epoch": trained.best_epoch,
        "epochs_run": trained.history.len(),
        "stopped_early": trained.stopped_early,
        "results": summary,
    });
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut f = write::AtomicFile::create(path)?;
    f.file().write_all(bytes)?;
    f.commit()
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
    write_atomic(output, &bytes).with_context(|| format!("failed to write `{}`", output.display()))
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
