//! `framegpt finetune`: labelled clips → a classification head trained in Rust (candle)
//! on the backbone's embeddings, optionally with the backbone's last temporal blocks
//! (`--unfreeze N`) → one ONNX file (backbone with the trained weights + head as `logits`,
//! labels in its metadata) and a report folder next to it.
//!
//! [`run`] reads as its stages: settings → data → features → split → fit → evaluate and
//! report → export and self-check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::{FeaturesArg, FinetuneArgs, GlobalArgs, GroupByArg, HeadArg, HeadInputsArg};
use crate::digest;
use crate::exit::{ExitCode, UsageError};
use crate::model::{contract, Device, Model, ModelContract, SessionOptions};
use crate::onnx_graph::{self, DenseLayer, HeadGraph};
use crate::sample::SampleSpec;
use crate::threads::ThreadBudget;
use crate::train::backbone::{self, Backbone as RustBackbone};
use crate::train::data::{split_by_source, DataError, Dataset, GroupBy};
use crate::train::features;
use crate::train::head::{predictions, HeadKind};
use crate::train::metrics::{self, Confusion};
use crate::train::motion::MotionSpec;
use crate::train::optim::{self, Classifier, HeadInputs, Split, TrainConfig, Trained};
use crate::train::windows::{self, Extracted, Extractor, SourceWindows, WindowJob};
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
    /// The head inputs to train on, in order of preference (`fit` keeps one).
    pub head_inputs: Vec<HeadInputs>,
    pub allow_missing_classes: bool,
    pub cache_dir: PathBuf,
    /// Budget of what is held in memory (cached windows, then a split's inputs).
    pub memory_bytes: usize,
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
                backbone_learning_rate: args.backbone_lr.unwrap_or(args.lr * 0.1),
                unfreeze: args.unfreeze,
                temporal_lag: args.temporal_lag,
                motion_features: args.features == FeaturesArg::Embeddings
                    && args.head_inputs != HeadInputsArg::Embeddings,
                head_inputs: HeadInputs::Both,
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
            head_inputs: match (args.features, args.head_inputs) {
                (FeaturesArg::Pixels, _) | (_, HeadInputsArg::Embeddings) => {
                    vec![HeadInputs::Embeddings]
                }
                (_, HeadInputsArg::Both) => vec![HeadInputs::Both],
                (_, HeadInputsArg::Motion) => vec![HeadInputs::Motion],
                (_, HeadInputsArg::Auto) if args.unfreeze > 0 => {
                    // Motion alone leaves the unfrozen blocks nothing to learn.
                    vec![HeadInputs::Both, HeadInputs::Embeddings]
                }
                (_, HeadInputsArg::Auto) => {
                    vec![HeadInputs::Both, HeadInputs::Embeddings, HeadInputs::Motion]
                }
            },
            allow_missing_classes: args.allow_missing_classes,
            cache_dir: args.cache.clone().unwrap_or_else(default_cache_dir),
            memory_bytes: args.memory_mb.saturating_mul(1 << 20),
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
    let lr_ok = |l: f64| l.is_finite() && l > 0.0;
    let wd_ok = args.weight_decay.is_finite() && args.weight_decay >= 0.0;
    if !(lr_ok(args.lr) && args.backbone_lr.is_none_or(lr_ok) && wd_ok) {
        return Err(UsageError::msg(
            "--lr and --backbone-lr must be > 0 and --weight-decay >= 0",
        ));
    }
    if args.unfreeze > 0 && args.features == FeaturesArg::Pixels {
        return Err(UsageError::msg(
            "--unfreeze needs a backbone (not --features pixels)",
        ));
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

/// Frames of each side of the split, and their inputs for the trainable model.
struct SplitRows {
    train_clips: usize,
    val_clips: usize,
    train: Rows,
    val: Rows,
    test: Option<Rows>,
    inputs: SplitInputs,
}

struct SplitInputs {
    train: Split,
    val: Split,
    test: Option<Split>,
}

impl FinetuneSettings {
    /// Turns the camera-motion features off, with a warning, for a backbone whose
    /// patches they cannot be computed on.
    fn check_motion(&mut self, b: &Backbone) {
        if self.train.motion_features && MotionSpec::new(&b.contract).is_none() {
            tracing::warn!(
                "`{}` has patches of {} px: the camera-motion features need an even patch side of at least 4; training without them",
                b.path.display(),
                b.contract.patch_size
            );
            self.train.motion_features = false;
            self.head_inputs = vec![HeadInputs::Embeddings];
        }
    }
}

/// One evaluated set: its name, per-frame and per-clip confusion.
type Evaluation = (&'static str, Confusion, Confusion);

pub fn run(args: &FinetuneArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let mut settings = FinetuneSettings::from_args(args, global)?;
    let started = Instant::now();
    let mut data = load_data(&settings)?;
    settings.threads.init_rayon();
    let backbone = match &settings.backbone {
        Some((path, device)) => Some(load_backbone(path, *device, settings.threads)?),
        None => None,
    };
    if let Some(b) = &backbone {
        settings.check_motion(b);
    }
    let rust = match (&backbone, settings.train.unfreeze) {
        (Some(b), n) if n > 0 => Some(rust_backbone(b, n)?),
        _ => None,
    };
    let (extracted, skip_frames, t) =
        extract_features(&settings, backbone.as_ref(), rust.as_ref(), &data)?;
    drop_unusable(&settings, &mut data, &extracted, skip_frames)?;
    let rows = split_rows(
        &settings,
        &data.train,
        data.test.as_ref(),
        &extracted,
        skip_frames,
        rust.is_some(),
    )?;
    if rows.train.y.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "no training frames: every training clip was left out (see the warnings above)"
        )));
    }
    let (trained, chosen, candidates, train_s) =
        fit(&settings, &data.train, &rows, rust.as_ref(), t)?;
    settings.train.head_inputs = chosen;
    let (report, evals, summary) = evaluate_all(
        &settings,
        &data.train,
        &rows,
        &trained,
        (&candidates, train_s),
    )?;
    settings.say(report.trim_end());
    let report_path = report_dir(&settings.output);
    let Some(backbone) = backbone else {
        write_report(&report_path, &trained, &report, &evals, &summary, None)
            .with_context(|| format!("failed to write the report `{}`", report_path.display()))?;
        settings.say(&format!(
            "baseline features: no model written; report: `{}`",
            report_path.display()
        ));
        return Ok(ExitCode::Success);
    };
    let c = &trained.classifier;
    let (layers, motion) = exported_layers(&settings, c)?;
    let block_weights = c.block_weights()?;
    let provenance = provenance(
        &settings,
        &backbone,
        &data,
        &rows,
        &trained,
        skip_frames,
        &block_weights,
        summary.clone(),
    );
    let output = &settings.output;
    export(
        &backbone,
        &layers,
        &block_weights,
        (settings.temporal_lag, motion),
        &data.train.labels,
        &provenance,
        output,
    )?;
    let (check_source, diff) = check_export(&settings, &backbone, &rows, &extracted, c)?;
    write_report(
        &report_path,
        &trained,
        &report,
        &evals,
        &summary,
        Some(diff),
    )
    .with_context(|| format!("failed to write the report `{}`", report_path.display()))?;
    settings.say(&format!(
        "wrote `{}` ({} labels; on the frames of `{}` its ONNX Runtime logits match the trained model within {diff:.1e}); report: `{}`; {:.1} s in all",
        output.display(),
        data.train.labels.len(),
        check_source.display(),
        report_path.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::Success)
}

/// The exported file on the frames of one real source (a validation clip's, else a
/// training clip's) against the trained model: the source and the largest difference.
fn check_export(
    settings: &FinetuneSettings,
    backbone: &Backbone,
    rows: &SplitRows,
    extracted: &Extracted,
    classifier: &Classifier<'_>,
) -> Result<(PathBuf, f32)> {
    let source = rows
        .val
        .source
        .first()
        .or(rows.train.source.first())
        .expect("training frames exist")
        .clone();
    let job = WindowJob {
        model_sha256: "",
        contract: &backbone.contract,
        sample: &settings.sample,
        window_stride: (backbone.contract.context_frames / 2).max(1),
        cache_dir: None,
        ffmpeg_threads: settings.threads.ffmpeg_per_file,
        progress: false,
        memory_bytes: usize::MAX,
        // The exported graph computes them itself.
        motion: None,
    };
    let diff = self_check(
        &settings.output,
        &source,
        &extracted.sources,
        classifier,
        settings.train.unfreeze > 0,
        &job,
        settings.threads,
    )?;
    Ok((source.to_path_buf(), diff))
}

/// The Rust (candle) backbone of the model, for `--unfreeze N`.
fn rust_backbone(b: &Backbone, unfreeze: usize) -> Result<RustBackbone> {
    let inits = onnx_graph::read_float_initializers(&b.bytes)
        .with_context(|| format!("failed to read the weights of `{}`", b.path.display()))?;
    let heads = backbone::heads_from_provenance(b.contract.provenance.as_ref());
    let rb = RustBackbone::from_initializers(&inits, heads).map_err(|e| {
        usage(anyhow::anyhow!(
            "--unfreeze needs the backbone's weights by name: `{}`: {e}",
            b.path.display()
        ))
    })?;
    if unfreeze > rb.temporal.len() {
        return Err(usage(anyhow::anyhow!(
            "--unfreeze {unfreeze}: the model has {} temporal blocks",
            rb.temporal.len()
        )));
    }
    Ok(rb)
}

/// The training and test sets (a class with one clip trains on it, without validation).
fn load_data(settings: &FinetuneSettings) -> Result<Data> {
    let train = Dataset::load(&settings.data).map_err(usage)?;
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

/// The windows of every source file (embeddings of the frozen backbone, or the input of
/// the first unfrozen block; cached), or the raw-pixel baseline as windows of one frame;
/// the frames to skip at the start of each clip; the window length.
fn extract_features(
    settings: &FinetuneSettings,
    backbone: Option<&Backbone>,
    rust: Option<&RustBackbone>,
    data: &Data,
) -> Result<(Extracted, usize, usize)> {
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
        let e = Extracted {
            sources: e
                .sources
                .into_iter()
                .map(|(p, r)| (p, r.map(SourceWindows::from_frames)))
                .collect(),
            cache_hits: 0,
            decoded: e.decoded,
        };
        return Ok((e, settings.skip_frames.unwrap_or(0), 1));
    };
    let job = WindowJob {
        model_sha256: &b.sha256,
        contract: &b.contract,
        sample: &settings.sample,
        window_stride: (b.contract.context_frames / 2).max(1),
        cache_dir: Some(&settings.cache_dir),
        ffmpeg_threads: settings.threads.ffmpeg_per_file,
        progress: settings.progress,
        memory_bytes: settings.memory_bytes,
        motion: settings
            .train
            .motion_features
            .then(|| MotionSpec::new(&b.contract))
            .flatten(),
    };
    let mut model;
    let mut extractor = match rust {
        Some(rb) => Extractor::Candle {
            backbone: rb,
            first: rb.temporal.len() - settings.train.unfreeze,
        },
        None => {
            model = Model::load(&b.path, b.session)?;
            Extractor::Ort {
                model: &mut model,
                logits: false,
            }
        }
    };
    let e = windows::extract(&sources, &mut extractor, &job, &cancel)?;
    settings.say(&format!(
        "features: {} files from the cache, {} decoded ({:.1} s; cache `{}`)",
        e.cache_hits,
        e.decoded,
        feature_started.elapsed().as_secs_f64(),
        settings.cache_dir.display()
    ));
    for (path, r) in &e.sources {
        if let Ok(SourceWindows {
            warning: Some(w), ..
        }) = r
        {
            tracing::warn!(
                "`{}`: {w}; the frames decoded before it are used",
                path.display()
            );
        }
    }
    let skip = settings
        .skip_frames
        .unwrap_or(b.contract.context_frames / 2);
    Ok((e, skip, b.contract.context_frames))
}

/// Leaves out clips without frames (unreadable, or none in their range) before
/// splitting, so they take no place in the validation split; a class left without any
/// clip is an error naming it unless --allow-missing-classes; aligns the test set's labels.
fn drop_unusable(
    settings: &FinetuneSettings,
    data: &mut Data,
    extracted: &Extracted,
    skip_frames: usize,
) -> Result<()> {
    let mut left_out = 0;
    let mut drop_from = |set: &mut Dataset| {
        let all: Vec<usize> = (0..set.clips.len()).collect();
        let (_, problems) = train::gather(set, &all, extracted, skip_frames);
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
    let missing = data.train.drop_small_classes(1);
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|(l, _)| format!("`{l}`")).collect();
        let msg = format!(
            "no clip of class {} could be used (see the warnings above)",
            names.join(", ")
        );
        if !settings.allow_missing_classes {
            return Err(usage(anyhow::anyhow!(
                "{msg}\nhint: fix or remove those clips, or pass --allow-missing-classes to train without the class"
            )));
        }
        tracing::warn!("{msg}; left out (--allow-missing-classes)");
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
    unfrozen: bool,
) -> Result<SplitRows> {
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
    let gather = |set: &Dataset, idx: &[usize]| train::gather(set, idx, extracted, skip_frames).0;
    let train = gather(dataset, &train_idx);
    let val = gather(dataset, &val_idx);
    let test = test_set.map(|t| gather(t, &(0..t.clips.len()).collect::<Vec<_>>()));
    let lag = settings.temporal_lag;
    // One budget for all that is held: the windows kept in memory, then each split's
    // inputs in turn.
    let held: usize = extracted
        .sources
        .values()
        .filter_map(|r| r.as_ref().ok())
        .map(|w| w.x.resident_bytes())
        .sum();
    let mut left = settings.memory_bytes.saturating_sub(held);
    let mut inputs = |rows: &Rows| -> Result<Split> {
        let storage = train::Storage {
            memory_bytes: left,
            dir: settings.cache_dir.clone(),
        };
        let split = train::split_inputs(rows, &extracted.sources, lag, unfrozen, &storage)?;
        left = left.saturating_sub(split.resident_bytes());
        Ok(split)
    };
    let inputs = SplitInputs {
        train: inputs(&train)?,
        val: inputs(&val)?,
        test: test.as_ref().map(&mut inputs).transpose()?,
    };
    Ok(SplitRows {
        train_clips: train_idx.len(),
        val_clips: val_idx.len(),
        train,
        val,
        test,
        inputs,
    })
}

/// Trains the model (head, and the unfrozen blocks) on each of the candidate head
/// inputs and keeps the one with the best validation accuracy at its kept epoch (ties:
/// the lower validation loss; the first candidate without a validation split); returns
/// it, the inputs it uses, one line per candidate, and the seconds training took.
fn fit<'a>(
    settings: &FinetuneSettings,
    dataset: &Dataset,
    rows: &SplitRows,
    rust: Option<&'a RustBackbone>,
    t: usize,
) -> Result<(Trained<'a>, HeadInputs, Vec<String>, f64)> {
    let has_val = !rows.inputs.val.is_empty();
    let candidates: &[HeadInputs] = if has_val {
        &settings.head_inputs
    } else {
        &settings.head_inputs[..1]
    };
    let train_started = Instant::now();
    let mut best: Option<(Trained<'a>, HeadInputs, (f64, f64))> = None;
    let mut lines = Vec::new();
    for &inputs in candidates {
        let config = TrainConfig {
            head_inputs: inputs,
            ..settings.train.clone()
        };
        let trained = fit_one(settings, &config, dataset, rows, rust, t, has_val)?;
        let kept = &trained.history[trained.best_epoch.max(1) - 1];
        let score = (
            kept.val_accuracy.unwrap_or(0.0),
            -kept.val_loss.unwrap_or(0.0),
        );
        if candidates.len() > 1 {
            lines.push(format!(
                "{}: validation accuracy {:.1} %, loss {:.4} (epoch {})",
                inputs.name(),
                100.0 * score.0,
                -score.1,
                trained.best_epoch
            ));
        }
        if best.as_ref().is_none_or(|(_, _, b)| score > *b) {
            best = Some((trained, inputs, score));
        }
    }
    let (trained, inputs, _) = best.expect("one candidate at least");
    Ok((
        trained,
        inputs,
        lines,
        train_started.elapsed().as_secs_f64(),
    ))
}

/// One training run with `config`, with a progress bar of its epochs.
fn fit_one<'a>(
    settings: &FinetuneSettings,
    config: &TrainConfig,
    dataset: &Dataset,
    rows: &SplitRows,
    rust: Option<&'a RustBackbone>,
    t: usize,
    has_val: bool,
) -> Result<Trained<'a>> {
    let verbose = settings.verbose;
    let bar = if settings.progress {
        indicatif::ProgressBar::new(config.epochs as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "training {prefix} {bar:30} epoch {pos}/{len} {msg} {elapsed}",
            )
            .expect("valid template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    if config.motion_features {
        bar.set_prefix(format!("({})", config.head_inputs.name()));
    }
    let trained = optim::train(
        config,
        dataset.labels.len(),
        rust,
        t,
        &rows.inputs.train,
        has_val.then_some(&rows.inputs.val),
        |m| {
            bar.set_position(m.epoch as u64);
            if let Some(l) = m.val_loss {
                bar.set_message(format!("val loss {l:.4}"));
            }
            if verbose {
                bar.suspend(|| {
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
                });
            }
        },
    )?;
    bar.finish_and_clear();
    Ok(trained)
}

/// The report text, the confusion matrices and the summary of validation and test.
fn evaluate_all(
    settings: &FinetuneSettings,
    dataset: &Dataset,
    rows: &SplitRows,
    trained: &Trained<'_>,
    (candidates, train_s): (&[String], f64),
) -> Result<(
    String,
    Vec<Evaluation>,
    serde_json::Map<String, serde_json::Value>,
)> {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "head: {:?}{}; {} train frames ({} clips), {} validation frames; {} epochs in {:.2} s, kept epoch {}{}",
        settings.train.head,
        if settings.train.unfreeze > 0 {
            format!(", last {} temporal block(s) trained", settings.train.unfreeze)
        } else {
            String::new()
        },
        rows.train.y.len(),
        rows.train_clips,
        rows.val.y.len(),
        trained.history.len(),
        train_s,
        trained.best_epoch,
        if trained.stopped_early { " (early stop)" } else { "" }
    );
    let mut summary = serde_json::Map::new();
    let chosen = settings.train.head_inputs.name();
    let _ = writeln!(report, "head inputs: {chosen}");
    for line in candidates {
        let _ = writeln!(report, "  candidate {line}");
    }
    summary.insert("head_inputs".into(), chosen.into());
    summary.insert("head_input_candidates".into(), candidates.into());
    let mut evals: Vec<Evaluation> = Vec::new();
    for (name, set, split) in [
        ("validation", Some(&rows.val), Some(&rows.inputs.val)),
        ("test", rows.test.as_ref(), rows.inputs.test.as_ref()),
    ] {
        let (Some(set), Some(split)) = (set, split) else {
            continue;
        };
        if set.y.is_empty() {
            continue;
        }
        let logits = trained.classifier.logits_array(split)?;
        let frames = Confusion::new(&dataset.labels, &set.y, &predictions(&logits));
        let (truth, pred) = train::clip_predictions(set, &logits);
        let clips = Confusion::new(&dataset.labels, &truth, &pred);
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
    Ok((report, evals, summary))
}

/// What the exported file records about how it was made.
#[allow(clippy::too_many_arguments)]
fn provenance(
    settings: &FinetuneSettings,
    backbone: &Backbone,
    data: &Data,
    rows: &SplitRows,
    trained: &Trained<'_>,
    skip_frames: usize,
    block_weights: &BTreeMap<String, Vec<f32>>,
    summary: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let dataset = &data.train;
    let counts = dataset.counts();
    serde_json::json!({
        "backbone": backbone.provenance,
        "backbone_sha256": backbone.sha256,
        "finetune": {
            "tool": format!("framegpt {} finetune", env!("CARGO_PKG_VERSION")),
            "library": "candle 0.11 (autodiff, AdamW), rand_chacha 0.9 (seeded ChaCha8)",
            "config": settings.train,
            "trained_initializers": block_weights.keys().collect::<Vec<_>>(),
            "features": {
                "fps": settings.sample.target_fps,
                "max_frames": settings.sample.max_frames,
                "skip_frames": skip_frames,
                "skip_rule": "the first skip_frames frames of each clip, never more than half of them",
                "temporal_lag": settings.temporal_lag,
                "temporal_lag_rule": "e_t - e_{max(t-lag, 0)} inside e_t's window (as the exported graph)",
                "motion_features": settings.train.motion_features,
                "motion_rule": "25 camera-motion values per frame against the one before it in its window (per-patch Lucas-Kanade shifts at full and half resolution: mean, divergence, curl, per quadrant; ln mean squared change), averaged causally over the window's positions 1..=t, appended to e_t before the temporal change; head_inputs says which of embeddings and motion the head reads",
                "standardization": "mean/std of the training frames' initial features, folded into the first layer",
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

fn write_report(
    dir: &Path,
    trained: &Trained<'_>,
    text: &str,
    evals: &[(&str, Confusion, Confusion)],
    summary: &serde_json::Map<String, serde_json::Value>,
    export_check: Option<f32>,
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
        "export_check_max_abs_diff": export_check,
    });
    write::write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )
}

/// The head's folded layers as exported, and whether the graph computes the
/// camera-motion features: a head trained on the embeddings alone gives them zero
/// weight, so their rows are dropped and the graph does not compute them.
fn exported_layers(
    settings: &FinetuneSettings,
    c: &Classifier<'_>,
) -> Result<(Vec<DenseLayer>, bool)> {
    let mut layers = c.head.folded(&c.standardizer)?;
    let motion = settings.train.motion_features;
    if !motion || settings.train.head_inputs != HeadInputs::Embeddings {
        return Ok((layers, motion));
    }
    let first = &mut layers[0];
    let kept: Vec<usize> = (0..first.inputs)
        .filter(|&j| c.standardizer.keep[j] != 0.0)
        .collect();
    let mut weight = Vec::with_capacity(kept.len() * first.outputs);
    for &j in &kept {
        weight.extend_from_slice(&first.weight[j * first.outputs..(j + 1) * first.outputs]);
    }
    first.inputs = kept.len();
    first.weight = weight;
    Ok((layers, false))
}

fn export(
    backbone: &Backbone,
    layers: &[DenseLayer],
    block_weights: &BTreeMap<String, Vec<f32>>,
    (temporal_lag, motion): (usize, bool),
    labels: &[String],
    provenance: &serde_json::Value,
    output: &Path,
) -> Result<()> {
    let head = HeadGraph {
        input: contract::OUTPUT_EMBEDDINGS.to_string(),
        output: contract::OUTPUT_LOGITS.to_string(),
        layers: layers.to_vec(),
        temporal_lag,
        motion: motion
            .then(|| MotionSpec::new(&backbone.contract))
            .flatten()
            .map(|spec| (contract::INPUT_PATCHES.to_string(), spec)),
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
    let trained_backbone;
    let base: &[u8] = if block_weights.is_empty() {
        &backbone.bytes
    } else {
        // The trained blocks feed the head only: shot boundaries and next-frame
        // predictions (surprise) keep the base weights they were validated with.
        let trained: std::collections::BTreeSet<String> = block_weights.keys().cloned().collect();
        trained_backbone =
            onnx_graph::keep_outputs_on_base(&backbone.bytes, &trained, KEPT_ON_BASE)
                .and_then(|b| onnx_graph::replace_initializers(&b, block_weights))
                .with_context(|| {
                    format!(
                        "failed to write the trained blocks into `{}`",
                        backbone.path.display()
                    )
                })?;
        &trained_backbone
    };
    let bytes = onnx_graph::attach_head(base, &head, &metadata)
        .with_context(|| format!("failed to attach the head to `{}`", backbone.path.display()))?;
    write::write_atomic(output, &bytes)
        .with_context(|| format!("failed to write `{}`", output.display()))
}

/// Outputs of the backbone that `--unfreeze` leaves as they were.
const KEPT_ON_BASE: &[&str] = &["boundary", "next_patches"];

/// Runs the exported file with ONNX Runtime on every window of the real source `source`
/// and compares its `logits` at each frame's own window position with the trained
/// model's on the same frames (from the cached windows); returns the largest difference.
#[allow(clippy::too_many_arguments)]
fn self_check(
    path: &Path,
    source: &Path,
    sources: &BTreeMap<PathBuf, Result<SourceWindows, String>>,
    classifier: &Classifier<'_>,
    unfrozen: bool,
    job: &WindowJob<'_>,
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
    let cancel = AtomicBool::new(false);
    let exported = windows::windows_of_file(
        source,
        &mut Extractor::Ort {
            model: &mut model,
            logits: true,
        },
        job,
        &cancel,
    )?
    .map_err(|e| anyhow::anyhow!("self-check: `{}`: {e}", source.display()))?;
    let cached = sources[source]
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = cached.frames().min(exported.frames());
    let rows = Rows {
        source: {
            let shared = std::sync::Arc::new(source.to_path_buf());
            (0..n).map(|_| shared.clone()).collect()
        },
        window: cached.window[..n].to_vec(),
        position: cached.position[..n].to_vec(),
        y: vec![0; n],
        clip: vec![0; n],
    };
    let storage = train::Storage {
        memory_bytes: usize::MAX,
        dir: std::env::temp_dir(),
    };
    let split = train::split_inputs(&rows, sources, classifier.lag, unfrozen, &storage)?;
    let rust = classifier.logits_array(&split)?;
    let all: Vec<usize> = (0..exported.dims().0).collect();
    let onnx = exported.windows(&all)?;
    let mut diff = 0.0f32;
    for f in 0..n {
        let (w, p) = (exported.window[f] as usize, exported.position[f] as usize);
        for (k, &v) in rust.row(f).iter().enumerate() {
            diff = diff.max((onnx[[w, p, k]] - v).abs());
        }
    }
    anyhow::ensure!(
        diff <= EXPORT_TOLERANCE,
        "self-check failed: on `{}` ONNX Runtime's logits differ from the trained model's by {diff}",
        source.display()
    );
    Ok(diff)
}
