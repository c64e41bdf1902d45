//! `framegpt adapt`: one camera's normal footage → the same model with its prediction
//! path trained further on the next-frame objective (candle, CPU), so that `surprise`
//! means "unusual for this camera". Writes the same graph with new weights and a report.
//!
//! [`run`] reads as its stages: settings → footage → scan (what is readable, how many
//! frames) → split by file → held-out loss before → train (streamed, early stopping on the
//! held-out loss) → write the model and check it with ONNX Runtime → report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cli::{AdaptArgs, GlobalArgs};
use crate::commands::finetune::report_dir;
use crate::digest;
use crate::exit::{ExitCode, UsageError};
use crate::model::{Device, Model, ModelContract, SessionOptions};
use crate::onnx_graph;
use crate::sample::SampleSpec;
use crate::threads::ThreadBudget;
use crate::train::adapt::{
    stream_windows, Adapter, LossSum, PassLoss, Segment, Shuffler, Streamed, TrainWindow,
    WindowSpec,
};
use crate::train::backbone::{self, Backbone};
use crate::train::data::Dataset;
use crate::train::metrics;
use crate::train::optim::EpochMetrics;
use crate::write;

/// Windows held for shuffling (a few MB: 64 windows of 8 frames of 64x64 patches).
const SHUFFLE_WINDOWS: usize = 64;
/// Largest |ONNX Runtime next_patches − Rust next_patches| accepted by the export check.
const EXPORT_TOLERANCE: f32 = 1e-3;

/// `adapt`'s arguments, validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdaptSettings {
    pub data: PathBuf,
    pub output: PathBuf,
    pub model: PathBuf,
    #[serde(skip)]
    pub device: Device,
    pub normal_only: bool,
    pub unfreeze: usize,
    pub epochs: usize,
    pub steps: Option<usize>,
    pub eval_every: usize,
    pub patience: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub window_stride: Option<usize>,
    pub val_split: f64,
    pub val_windows: usize,
    pub memory_mb: usize,
    pub seed: u64,
    #[serde(skip)]
    pub sample: SampleSpec,
    #[serde(skip)]
    pub threads: ThreadBudget,
    #[serde(skip)]
    pub quiet: bool,
    #[serde(skip)]
    pub verbose: bool,
    #[serde(skip)]
    pub progress: bool,
}

impl AdaptSettings {
    pub fn from_args(args: &AdaptArgs, global: &GlobalArgs) -> Result<Self, UsageError> {
        let lr_ok = args.lr.is_finite() && args.lr > 0.0;
        let wd_ok = args.weight_decay.is_finite() && args.weight_decay >= 0.0;
        if !(lr_ok && wd_ok) {
            return Err(UsageError::msg("--lr must be > 0 and --weight-decay >= 0"));
        }
        if !(0.0..1.0).contains(&args.val_split) {
            return Err(UsageError::msg(format!(
                "--val-split must be in [0, 1), got {}",
                args.val_split
            )));
        }
        let zero = [
            args.epochs,
            args.eval_every,
            args.patience,
            args.batch_size,
            args.val_windows,
        ]
        .contains(&0);
        if zero || args.steps == Some(0) || args.window_stride == Some(0) {
            return Err(UsageError::msg(
                "--epochs, --steps, --eval-every, --patience, --batch-size, --window-stride and --val-windows must be at least 1",
            ));
        }
        if args.fps.is_some_and(|f| !(f.is_finite() && f > 0.0)) || args.max_frames == Some(0) {
            return Err(UsageError::msg(
                "--fps must be a positive number and --max-frames at least 1",
            ));
        }
        Ok(AdaptSettings {
            data: args.data.clone(),
            output: args.output.clone(),
            model: args.model.model_path()?,
            device: args.model.device,
            normal_only: args.normal_only,
            unfreeze: args.unfreeze,
            epochs: args.epochs,
            steps: args.steps,
            eval_every: args.eval_every,
            patience: args.patience,
            lr: args.lr,
            weight_decay: args.weight_decay,
            batch_size: args.batch_size,
            window_stride: args.window_stride,
            val_split: args.val_split,
            val_windows: args.val_windows,
            memory_mb: args.memory_mb,
            seed: args.seed,
            sample: SampleSpec {
                target_fps: args.fps,
                max_frames: args.max_frames,
                ..SampleSpec::default()
            },
            threads: ThreadBudget::new(global.total_threads(), None),
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

fn usage(e: impl Into<anyhow::Error>) -> anyhow::Error {
    UsageError(e.into()).into()
}

/// The model being adapted.
struct Source {
    bytes: Vec<u8>,
    sha256: String,
    contract: ModelContract,
    rust: Backbone,
}

/// A segment with what the scan saw of it.
struct Scanned {
    segment: Segment,
    streamed: Streamed,
}

/// The footage split into training and held-out segments.
struct Split {
    train: Vec<Scanned>,
    val: Vec<Scanned>,
    rule: String,
}

/// What training did.
struct Fit {
    history: Vec<EpochMetrics>,
    /// The evaluation whose weights were kept (1-based; 0: none beat the model as it was).
    best_eval: usize,
    best: PassLoss,
    steps: usize,
    epochs: usize,
    stopped_early: bool,
    seconds: f64,
    /// Whether the training windows were kept in memory after the first epoch.
    kept_in_memory: bool,
}

impl Fit {
    /// `--normal-only`: no step, the model as it was.
    fn untrained(before: PassLoss) -> Self {
        Fit {
            history: Vec::new(),
            best_eval: 0,
            best: before,
            steps: 0,
            epochs: 0,
            stopped_early: false,
            seconds: 0.0,
            kept_in_memory: false,
        }
    }
}

pub fn run(args: &AdaptArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let settings = AdaptSettings::from_args(args, global)?;
    single_threaded_candle();
    let started = Instant::now();
    let segments = load_segments(&settings.data)?;
    output_dir(&settings.output)?;
    settings.threads.init_rayon();
    let source = load_source(&settings)?;
    let cancel = AtomicBool::new(false);
    let spec = window_spec(&settings, &source.contract, None);
    let scanned = scan(&settings, &segments, &spec, &cancel)?;
    let split = split(&settings, scanned);
    let adapter = Adapter::new(&source.rust, settings.unfreeze, &source.contract)?;
    let val_spec = window_spec(&settings, &source.contract, Some(&split.val));
    let mut budget = (settings.memory_mb as u64) << 20;
    let val_windows: u64 = split.val.iter().map(|s| windows_of(s, &val_spec)).sum();
    let t = source.contract.context_frames;
    let keep_val = fits(val_windows, t, &source.contract, source.rust.d, &mut budget);
    let mut val_set = EvalSet {
        segments: &split.val,
        spec: &val_spec,
        kept: keep_val.then(Vec::new),
    };
    let before = val_set.evaluate(&adapter, &cancel)?;
    let val_kept = val_set.kept.take();
    let ratio_note = |l: &PassLoss| format!("{:.5} ({:.3}x copy-last)", l.model, l.ratio());
    settings.say(&format!(
        "held-out next-frame loss before: {} over {} predicted frames",
        ratio_note(&before),
        before.frames
    ));
    let fit = if settings.normal_only {
        Fit::untrained(before)
    } else {
        let fit = train(
            &settings,
            &adapter,
            &split,
            (&spec, &val_spec),
            val_kept,
            before,
            &cancel,
        )?;
        let after = fit.best;
        settings.say(&format!(
            "held-out next-frame loss after:  {} ({:+.1} %; kept evaluation {} of {}, {} steps, {:.1} s)",
            ratio_note(&after),
            100.0 * (after.model / before.model.max(1e-12) - 1.0),
            fit.best_eval,
            fit.history.len(),
            fit.steps,
            fit.seconds
        ));
        fit
    };
    // --normal-only: the model's own graph and weights, unchanged.
    let weights = if settings.normal_only {
        BTreeMap::new()
    } else {
        adapter.weights()?
    };
    let provenance = provenance(&settings, &source, &split, &fit, before, &weights)?;
    // Shot boundaries stay those of the model adapt started from (its boundary heads were
    // validated on the embeddings of those weights); surprise is what adapt changes.
    let trained: std::collections::BTreeSet<String> = weights.keys().cloned().collect();
    let graph = if settings.normal_only {
        Ok(source.bytes.clone())
    } else {
        onnx_graph::keep_outputs_on_base(&source.bytes, &trained, &["boundary"])
            .and_then(|b| onnx_graph::replace_initializers(&b, &weights))
    };
    let bytes = graph
        .and_then(|b| {
            onnx_graph::set_metadata(
                &b,
                &BTreeMap::from([(
                    "framegpt.provenance".to_string(),
                    serde_json::to_string(&provenance).expect("json"),
                )]),
            )
        })
        .with_context(|| {
            format!(
                "failed to write the weights into `{}`",
                settings.model.display()
            )
        })?;
    let diff = write_with_normal(&settings, &bytes, &adapter, &split, &spec, &source, &cancel)?;
    let report = report_text(&settings, &split, &fit, before, &adapter, diff);
    let dir = report_dir(&settings.output);
    write_report(&dir, &fit, &report, &provenance["adapt"])
        .with_context(|| format!("failed to write the report `{}`", dir.display()))?;
    settings.say(&format!(
        "wrote `{}` (ONNX Runtime's next_patches match the trained model within {diff:.1e}); report: `{}`; {:.1} s in all",
        settings.output.display(),
        dir.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::Success)
}

/// The output's folder, created when missing (before training, so that a place that cannot
/// be written to fails at once).
fn output_dir(output: &Path) -> Result<&Path> {
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    Ok(dir)
}

/// Checks the trained file and measures the camera's normal with it, from a scratch copy
/// beside the output; then writes the output once, complete, with `framegpt.normal`.
/// Returns the self-check's largest difference.
fn write_with_normal(
    settings: &AdaptSettings,
    bytes: &[u8],
    adapter: &Adapter<'_>,
    split: &Split,
    spec: &WindowSpec<'_>,
    source: &Source,
    cancel: &AtomicBool,
) -> Result<f32> {
    // The trained file is checked and run over the footage from a scratch copy beside the
    // output; the output itself is written once, complete, with the camera's normal.
    let out_dir = output_dir(&settings.output)?;
    let scratch = tempfile::Builder::new()
        .prefix(".framegpt-adapt-")
        .suffix(".onnx")
        .tempfile_in(out_dir)
        .with_context(|| format!("failed to write into `{}`", out_dir.display()))?;
    fs_err::write(scratch.path(), bytes)
        .with_context(|| format!("failed to write `{}`", scratch.path().display()))?;
    let (diff, mut model) = check_export(settings, scratch.path(), adapter, split, spec, cancel)?;
    let normal_started = Instant::now();
    let normal = normal_of(settings, &mut model, split, &source.contract, cancel)?;
    settings.say(&format!(
        "normal of this camera: per-patch statistics of {} predicted frames (the `anomaly` column of analyze), {:.1} s",
        normal.frames,
        normal_started.elapsed().as_secs_f64()
    ));
    let bytes = onnx_graph::set_metadata(
        bytes,
        &BTreeMap::from([(
            "framegpt.normal".to_string(),
            serde_json::to_string(&normal).expect("json"),
        )]),
    )?;
    write::write_atomic(&settings.output, &bytes)
        .with_context(|| format!("failed to write `{}`", settings.output.display()))?;
    drop(scratch);
    Ok(diff)
}

/// candle runs its CPU ops on one thread unless the user says otherwise. Measured on the
/// 2-core development machine (30 steps on samples/): 1 thread 45 s wall / 20 s CPU, 2
/// threads 92 s / 49 s. On tensors this small its thread pool mostly spins at barriers.
fn single_threaded_candle() {
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "1");
        }
    }
}

/// The footage as segments (a folder's video files, or a CSV's rows).
fn load_segments(data: &Path) -> Result<Vec<Segment>> {
    let clips = Dataset::load_unlabelled(data).map_err(usage)?;
    Ok(clips
        .into_iter()
        .map(|c| Segment {
            path: c.path,
            start_s: c.start_s,
            end_s: c.end_s,
            frames: None,
            origin: c.origin,
        })
        .collect())
}

/// Reads the model: its contract (checked by ONNX Runtime, as `analyze` does), bytes and
/// weights for the Rust backbone.
fn load_source(settings: &AdaptSettings) -> Result<Source> {
    let path = &settings.model;
    let session = SessionOptions {
        device: settings.device,
        threads: settings.threads.ort,
    };
    let contract = Model::load(path, session)
        .map_err(usage)?
        .contract()
        .clone();
    let bytes = fs_err::read(path).map_err(usage)?;
    let inits = onnx_graph::read_float_initializers(&bytes)
        .with_context(|| format!("failed to read the weights of `{}`", path.display()))
        .map_err(usage)?;
    let heads = backbone::heads_from_provenance(contract.provenance.as_ref());
    let rust = Backbone::from_initializers(&inits, heads).map_err(|e| {
        usage(anyhow::anyhow!(
            "adapt needs the model's weights by name: `{}`: {e}",
            path.display()
        ))
    })?;
    if settings.unfreeze > rust.temporal.len() {
        return Err(usage(anyhow::anyhow!(
            "--unfreeze {}: the model has {} temporal blocks",
            settings.unfreeze,
            rust.temporal.len()
        )));
    }
    Ok(Source {
        sha256: digest::sha256_hex(&bytes),
        bytes,
        contract,
        rust,
    })
}

/// Training windows (`val` None): the stride asked for; held-out windows: spread so that
/// at most `--val-windows` of them cover the held-out footage.
fn window_spec<'a>(
    settings: &'a AdaptSettings,
    contract: &'a ModelContract,
    val: Option<&[Scanned]>,
) -> WindowSpec<'a> {
    let t = contract.context_frames;
    let base = settings.window_stride.unwrap_or((t / 2).max(1));
    let stride = match val {
        None => base,
        Some(v) => {
            let frames: u64 = v.iter().map(|s| s.streamed.frames).sum();
            base.max(frames.div_ceil(settings.val_windows as u64) as usize)
        }
    };
    WindowSpec {
        contract,
        sample: &settings.sample,
        stride,
        ffmpeg_threads: settings.threads.ffmpeg_per_file,
    }
}

/// One decoding pass over every segment: which can be used (≥ 2 distinct frames), how
/// many frames each has. No usable segment is a usage error naming the causes.
fn scan(
    settings: &AdaptSettings,
    segments: &[Segment],
    spec: &WindowSpec<'_>,
    cancel: &AtomicBool,
) -> Result<Vec<Scanned>> {
    let mut usable = Vec::new();
    let mut problems = Vec::new();
    for seg in segments {
        let why = match stream_windows(seg, spec, cancel, |_| Ok(()))? {
            Ok(s) if s.frames >= 2 => {
                usable.push(Scanned {
                    segment: seg.clone(),
                    streamed: s,
                });
                continue;
            }
            Ok(s) => format!(
                "{} distinct frame{} (a prediction needs at least 2)",
                s.frames,
                if s.frames == 1 { "" } else { "s" }
            ),
            Err(e) => e,
        };
        tracing::warn!("`{}` left out: {why}", seg.origin);
        problems.push(format!("`{}`: {why}", seg.origin));
    }
    if usable.is_empty() {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        let more = problems.len().saturating_sub(shown.len());
        return Err(usage(anyhow::anyhow!(
            "no usable footage in `{}`: {}{}\nhint: adapt needs video files with at least 2 frames each",
            settings.data.display(),
            shown.join("; "),
            if more > 0 { format!("; and {more} more") } else { String::new() }
        )));
    }
    let frames: u64 = usable.iter().map(|s| s.streamed.frames).sum();
    settings.say(&format!(
        "data: {} segments, {frames} distinct frames ({} left out)",
        usable.len(),
        problems.len()
    ));
    Ok(usable)
}

/// Held-out footage by source file (seeded); with a single file, the last `val_split` of
/// each of its segments' frames.
fn split(settings: &AdaptSettings, scanned: Vec<Scanned>) -> Split {
    let mut files: Vec<PathBuf> = scanned.iter().map(|s| s.segment.path.clone()).collect();
    files.sort();
    files.dedup();
    if settings.val_split == 0.0 {
        return Split {
            train: scanned,
            val: Vec::new(),
            rule: "none (--val-split 0)".into(),
        };
    }
    if files.len() >= 2 {
        files.shuffle(&mut ChaCha8Rng::seed_from_u64(settings.seed));
        let n =
            ((files.len() as f64 * settings.val_split).round() as usize).clamp(1, files.len() - 1);
        let held: Vec<PathBuf> = files[..n].to_vec();
        let (val, train) = scanned
            .into_iter()
            .partition(|s| held.contains(&s.segment.path));
        return Split {
            train,
            val,
            rule: format!(
                "by source file: {n} of {} files held out (seed {})",
                files.len(),
                settings.seed
            ),
        };
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for s in scanned {
        let n = s.streamed.frames;
        let cut = ((n as f64 * (1.0 - settings.val_split)).round() as u64).clamp(1, n - 1);
        let part = |frames: (u64, u64)| Scanned {
            segment: Segment {
                frames: Some(frames),
                ..s.segment.clone()
            },
            streamed: Streamed {
                frames: frames.1 - frames.0,
                ..s.streamed
            },
        };
        train.push(part((0, cut)));
        val.push(part((cut, n)));
    }
    Split {
        train,
        val,
        rule: format!(
            "of one source file: the last {:.0} % of its frames held out",
            100.0 * settings.val_split
        ),
    }
}

/// The held-out footage, and its windows once seen when they fit in memory.
struct EvalSet<'a> {
    segments: &'a [Scanned],
    spec: &'a WindowSpec<'a>,
    /// `Some`: kept in memory (filled by the first evaluation).
    kept: Option<Vec<TrainWindow>>,
}

impl EvalSet<'_> {
    /// Mean held-out losses of the adapter as it is now.
    fn evaluate(&mut self, adapter: &Adapter<'_>, cancel: &AtomicBool) -> Result<PassLoss> {
        let mut sum = LossSum::default();
        let batch = 8;
        if let Some(kept) = self.kept.as_mut().filter(|k| !k.is_empty()) {
            for run in runs_mut(kept) {
                for b in run.chunks_mut(batch) {
                    adapter.accumulate(b, false, &mut sum)?;
                }
            }
            return Ok(sum.mean());
        }
        let keep = self.kept.is_some();
        let mut seen: Vec<TrainWindow> = Vec::new();
        for s in self.segments {
            let mut pending: Vec<TrainWindow> = Vec::new();
            let mut flush = |pending: &mut Vec<TrainWindow>, sum: &mut LossSum| -> Result<()> {
                adapter.accumulate(pending, keep, sum)?;
                if keep {
                    seen.append(pending);
                }
                pending.clear();
                Ok(())
            };
            let r = stream_windows(&s.segment, self.spec, cancel, |w| {
                if pending.first().is_some_and(|p| p.frames != w.frames) || pending.len() >= batch {
                    flush(&mut pending, &mut sum)?;
                }
                pending.push(w);
                Ok(())
            })?;
            if let Err(e) = r {
                anyhow::bail!(
                    "`{}` could be read before and not now: {e}",
                    s.segment.origin
                );
            }
            if !pending.is_empty() {
                flush(&mut pending, &mut sum)?;
            }
        }
        if keep {
            self.kept = Some(seen);
        }
        Ok(sum.mean())
    }
}

/// Runs of windows of one length (sorted by length first).
fn runs_mut(windows: &mut [TrainWindow]) -> Vec<&mut [TrainWindow]> {
    windows.sort_by_key(|w| w.frames);
    let mut out = Vec::new();
    let mut rest = windows;
    while !rest.is_empty() {
        let n = rest
            .iter()
            .take_while(|w| w.frames == rest[0].frames)
            .count();
        let (run, tail) = rest.split_at_mut(n);
        out.push(run);
        rest = tail;
    }
    out
}

/// Signals from inside a pass that training is over.
#[derive(Debug, thiserror::Error)]
#[error("training stopped")]
struct Stop;

/// The state of the training loop.
struct Loop<'a, 'b> {
    settings: &'a AdaptSettings,
    adapter: &'a Adapter<'b>,
    opt: AdamW,
    val: EvalSet<'a>,
    cancel: &'a AtomicBool,
    bar: indicatif::ProgressBar,
    /// `Some`: the training windows are kept in memory after the first epoch.
    kept: Option<Vec<TrainWindow>>,
    step: usize,
    train_sum: (f64, usize),
    history: Vec<EpochMetrics>,
    best: PassLoss,
    best_eval: usize,
    snapshot: Vec<candle_core::Tensor>,
    bad: usize,
    stopped_early: bool,
}

impl Loop<'_, '_> {
    /// One optimizer step on `batch`; evaluates every `--eval-every` steps.
    fn step(&mut self, batch: &mut [TrainWindow]) -> Result<()> {
        let (p, x, h) = self.adapter.prepared(batch, self.kept.is_some())?;
        let (loss, _) = self.adapter.losses(&p, &x, &h)?;
        self.opt.backward_step(&loss)?;
        self.step += 1;
        self.train_sum.0 += f64::from(loss.to_scalar::<f32>()?);
        self.train_sum.1 += 1;
        self.bar.inc(1);
        if self.step.is_multiple_of(self.settings.eval_every) {
            self.evaluate()?;
        }
        if self.step >= self.settings.steps.unwrap_or(usize::MAX) {
            if self.train_sum.1 > 0 {
                self.evaluate()?;
            }
            return Err(Stop.into());
        }
        Ok(())
    }

    /// Held-out loss now; keeps the best weights, stops after `--patience` without one.
    fn evaluate(&mut self) -> Result<()> {
        let train_loss = self.train_sum.0 / self.train_sum.1.max(1) as f64;
        self.train_sum = (0.0, 0);
        let val = if self.val.segments.is_empty() {
            None
        } else {
            Some(self.val.evaluate(self.adapter, self.cancel)?)
        };
        let n = self.history.len() + 1;
        self.history.push(EpochMetrics {
            epoch: n,
            train_loss,
            val_loss: val.map(|v| v.model),
            val_accuracy: None,
        });
        let msg = match val {
            Some(v) => format!("step {}: held-out loss {:.5}", self.step, v.model),
            None => format!("step {}: train loss {train_loss:.5}", self.step),
        };
        self.bar.set_message(msg.clone());
        if self.settings.verbose {
            self.bar.suspend(|| eprintln!("{msg}"));
        }
        // Without held-out footage the last weights are kept.
        let better = val.is_none_or(|v| v.model < self.best.model * (1.0 - 1e-4));
        if better {
            if let Some(v) = val {
                self.best = v;
            }
            self.best_eval = n;
            self.snapshot = self.adapter.snapshot()?;
            self.bad = 0;
        } else {
            self.bad += 1;
            if self.bad >= self.settings.patience {
                self.stopped_early = true;
                return Err(Stop.into());
            }
        }
        Ok(())
    }
}

/// Whether `windows` windows of `frames` frames fit in `budget` bytes (what is left is
/// returned).
fn fits(windows: u64, frames: usize, contract: &ModelContract, d: usize, budget: &mut u64) -> bool {
    let (n, c) = (contract.num_patches(), contract.patch_dim());
    let need = windows * TrainWindow::bytes(frames, n, c, d) as u64;
    let ok = need <= *budget;
    if ok {
        *budget -= need;
    }
    ok
}

/// Trains on the training segments, streamed in a seeded order through a shuffle buffer
/// (from the second epoch on from memory, when they fit in `--memory-mb`); evaluates
/// every `--eval-every` steps and at the end of every epoch; restores the best weights.
fn train(
    settings: &AdaptSettings,
    adapter: &Adapter<'_>,
    split: &Split,
    specs: (&WindowSpec<'_>, &WindowSpec<'_>),
    val: Option<Vec<TrainWindow>>,
    before: PassLoss,
    cancel: &AtomicBool,
) -> Result<Fit> {
    let (spec, val_spec) = specs;
    let started = Instant::now();
    let windows: u64 = split.train.iter().map(|s| windows_of(s, spec)).sum();
    let per_epoch = windows.div_ceil(settings.batch_size as u64).max(1);
    let total =
        (per_epoch * settings.epochs as u64).min(settings.steps.unwrap_or(usize::MAX) as u64);
    let mut budget = (settings.memory_mb as u64) << 20;
    let t = spec.contract.context_frames;
    let keep_train = fits(windows, t, spec.contract, adapter.backbone.d, &mut budget);
    let bar = if settings.progress {
        indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template(
                "adapting {bar:30} step {pos}/{len} {msg} {elapsed} (eta {eta})",
            )
            .expect("valid template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let params = ParamsAdamW {
        lr: settings.lr,
        weight_decay: settings.weight_decay,
        ..ParamsAdamW::default()
    };
    let mut lp = Loop {
        settings,
        adapter,
        opt: AdamW::new(adapter.vars(), params)?,
        val: EvalSet {
            segments: &split.val,
            spec: val_spec,
            kept: val,
        },
        cancel,
        bar,
        kept: keep_train.then(Vec::new),
        step: 0,
        train_sum: (0.0, 0),
        history: Vec::new(),
        best: before,
        best_eval: 0,
        snapshot: adapter.snapshot()?,
        bad: 0,
        stopped_early: false,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x5eed_ada7);
    let mut epochs = 0;
    let outcome = (|| -> Result<()> {
        for _ in 0..settings.epochs {
            epochs += 1;
            run_epoch(&mut lp, &split.train, spec, settings.batch_size, &mut rng)?;
            if lp.train_sum.1 > 0 {
                lp.evaluate()?;
            }
        }
        Ok(())
    })();
    match outcome {
        Err(e) if !e.is::<Stop>() => return Err(e),
        _ => {}
    }
    lp.bar.finish_and_clear();
    adapter.restore(&lp.snapshot)?;
    Ok(Fit {
        history: lp.history,
        best_eval: lp.best_eval,
        best: lp.best,
        steps: lp.step,
        epochs,
        stopped_early: lp.stopped_early,
        seconds: started.elapsed().as_secs_f64(),
        kept_in_memory: keep_train,
    })
}

/// Windows a scanned segment gives with `spec` (as [`stream_windows`] cuts them).
fn windows_of(s: &Scanned, spec: &WindowSpec<'_>) -> u64 {
    let (n, t) = (s.streamed.frames, spec.contract.context_frames as u64);
    if n < t {
        u64::from(n >= 2)
    } else {
        (n - t) / spec.stride as u64 + 1
    }
}

/// One pass over the training windows: from memory when they are kept there and the first
/// epoch has filled it, else decoded again.
fn run_epoch(
    lp: &mut Loop<'_, '_>,
    train: &[Scanned],
    spec: &WindowSpec<'_>,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    if let Some(mut kept) = lp.kept.take().filter(|k| !k.is_empty()) {
        kept.shuffle(rng);
        let mut result = Ok(());
        'runs: for run in runs_mut(&mut kept) {
            for b in run.chunks_mut(batch) {
                result = lp.step(b);
                if result.is_err() {
                    break 'runs;
                }
            }
        }
        lp.kept = Some(kept);
        return result;
    }
    let mut order: Vec<&Scanned> = train.iter().collect();
    order.shuffle(rng);
    let mut shuffler = Shuffler::new(SHUFFLE_WINDOWS);
    let step = |lp: &mut Loop<'_, '_>, mut b: Vec<TrainWindow>| -> Result<()> {
        let r = lp.step(&mut b);
        if let Some(k) = lp.kept.as_mut() {
            k.append(&mut b);
        }
        r
    };
    for s in order {
        let r = stream_windows(&s.segment, spec, lp.cancel, |w| {
            match shuffler.push(w, batch, rng) {
                Some(b) => step(lp, b),
                None => Ok(()),
            }
        })?;
        if let Err(e) = r {
            anyhow::bail!(
                "`{}` could be read before and not now: {e}",
                s.segment.origin
            );
        }
    }
    while !shuffler.is_empty() {
        let b = shuffler.take(batch, rng);
        step(lp, b)?;
    }
    Ok(())
}

/// Runs the written file with ONNX Runtime on one held-out (else training) window and
/// compares its `next_patches` with the trained model's; returns the largest difference.
fn check_export(
    settings: &AdaptSettings,
    path: &Path,
    adapter: &Adapter<'_>,
    split: &Split,
    spec: &WindowSpec<'_>,
    cancel: &AtomicBool,
) -> Result<(f32, Model)> {
    let mut model = Model::load(
        path,
        SessionOptions {
            device: Device::Cpu,
            threads: settings.threads.ort,
        },
    )
    .with_context(|| {
        format!(
            "the model written for `{}` does not load",
            settings.output.display()
        )
    })?;
    let s = split
        .val
        .first()
        .or(split.train.first())
        .expect("usable footage");
    let mut window: Option<TrainWindow> = None;
    let _ = stream_windows(&s.segment, spec, cancel, |w| {
        window = Some(w);
        Err(Stop.into())
    });
    let w = window.context("self-check: no window")?;
    let (n, c) = (spec.contract.num_patches(), spec.contract.patch_dim());
    let input = ndarray::Array4::from_shape_vec((1, w.frames, n, c), w.patches.clone())?;
    let ort = model.run(input.view())?.next_patches;
    let rust = backbone::to_vec(&adapter.next_patches(&adapter.batch(&[w])?)?)?;
    let diff = ort
        .iter()
        .zip(&rust)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    anyhow::ensure!(
        diff <= EXPORT_TOLERANCE,
        "self-check failed: ONNX Runtime's next_patches differ from the trained model's by {diff}"
    );
    Ok((diff, model))
}

/// The adapted model over all of its footage (training and held-out segments), as
/// `analyze` runs it: the per-patch normal of this camera.
fn normal_of(
    settings: &AdaptSettings,
    model: &mut Model,
    split: &Split,
    contract: &ModelContract,
    cancel: &AtomicBool,
) -> Result<crate::normal::PatchNormal> {
    let t = contract.context_frames;
    let spec = WindowSpec {
        contract,
        sample: &settings.sample,
        stride: (t / 2).max(1),
        ffmpeg_threads: settings.threads.ffmpeg_per_file,
    };
    let segments = split.train.iter().chain(&split.val).map(|s| &s.segment);
    let acc = crate::train::adapt::normal_of_footage(model, segments, &spec, cancel)?;
    acc.finish()
        .context("no predicted frame in the footage: the camera's normal cannot be measured")
}

/// What the written file records: the model's own provenance, plus `adapt`.
fn provenance(
    settings: &AdaptSettings,
    source: &Source,
    split: &Split,
    fit: &Fit,
    before: PassLoss,
    weights: &BTreeMap<String, Vec<f32>>,
) -> Result<serde_json::Value> {
    let mut p = match source.contract.provenance.clone() {
        Some(serde_json::Value::Object(m)) => m,
        Some(other) => serde_json::Map::from_iter([("original".to_string(), other)]),
        None => serde_json::Map::new(),
    };
    let previous = p.remove("adapt");
    let segment = |s: &Scanned, side: &str| -> Result<serde_json::Value> {
        Ok(serde_json::json!({
            "file": s.segment.path.display().to_string(),
            "sha256": digest::sha256_file(&s.segment.path)
                .with_context(|| format!("failed to read `{}`", s.segment.path.display()))?,
            "start_s": s.segment.start_s,
            "end_s": s.segment.end_s,
            "frames": s.segment.frames,
            "distinct_frames": s.streamed.frames,
            "split": side,
        }))
    };
    let mut segments = Vec::new();
    for s in &split.train {
        segments.push(segment(s, "train")?);
    }
    for s in &split.val {
        segments.push(segment(s, "heldout")?);
    }
    let frames = |v: &[Scanned]| v.iter().map(|s| s.streamed.frames).sum::<u64>();
    let adapt = serde_json::json!({
        "tool": format!("framegpt {} adapt", env!("CARGO_PKG_VERSION")),
        "library": "candle 0.11 (autodiff, AdamW), rand_chacha 0.9 (seeded ChaCha8)",
        "objective": "mean squared error of next_patches[t] against the patches of frame t+1 (the surprise of analyze)",
        "backbone_sha256": source.sha256,
        "config": settings,
        "trained_initializers": weights.keys().collect::<Vec<_>>(),
        "data": {
            "source": settings.data.display().to_string(),
            "split": split.rule,
            "train_frames": frames(&split.train),
            "heldout_frames": frames(&split.val),
            "segments": segments,
        },
        "losses": {
            "heldout_before": before.model,
            "heldout_after": fit.best.model,
            "heldout_copy_last": before.copy_last,
            "ratio_before": before.ratio(),
            "ratio_after": fit.best.ratio(),
            "history": fit.history.iter().map(|m| serde_json::json!({"evaluation": m.epoch, "train_loss": m.train_loss, "heldout_loss": m.val_loss})).collect::<Vec<_>>(),
        },
        "steps": fit.steps,
        "epochs": fit.epochs,
        "kept_evaluation": fit.best_eval,
        "stopped_early": fit.stopped_early,
        "previous": previous,
    });
    p.insert("adapt".into(), adapt);
    Ok(serde_json::Value::Object(p))
}

fn report_text(
    settings: &AdaptSettings,
    split: &Split,
    fit: &Fit,
    before: PassLoss,
    adapter: &Adapter<'_>,
    diff: f32,
) -> String {
    let mut r = String::new();
    let frames = |v: &[Scanned]| v.iter().map(|s| s.streamed.frames).sum::<u64>();
    let trained = if settings.normal_only {
        "nothing (--normal-only)".to_string()
    } else {
        format!(
            "{} values ({}the prediction path: ctx_proj, decoder, head_ln, head, gate)",
            adapter.parameter_count(),
            if settings.unfreeze > 0 {
                format!("last {} temporal block(s) and ", settings.unfreeze)
            } else {
                String::new()
            }
        )
    };
    let _ = writeln!(
        r,
        "model: `{}`; trained: {trained}",
        settings.model.display()
    );
    let _ = writeln!(
        r,
        "data: {} training segments ({} frames), {} held out ({} frames); split {}",
        split.train.len(),
        frames(&split.train),
        split.val.len(),
        frames(&split.val),
        split.rule
    );
    if settings.normal_only {
        let _ = writeln!(
            r,
            "training: none (--normal-only): the weights are the model's own; only the camera's normal was measured"
        );
    } else {
        let _ = writeln!(
            r,
            "training: {} steps, {} epoch(s), {} evaluations, kept evaluation {}{}, {:.1} s; windows {}",
            fit.steps,
            fit.epochs,
            fit.history.len(),
            fit.best_eval,
            if fit.stopped_early { " (early stop)" } else { "" },
            fit.seconds,
            if fit.kept_in_memory {
                "kept in memory after the first epoch"
            } else {
                "decoded again every epoch (more than --memory-mb)"
            }
        );
    }
    let _ = writeln!(
        r,
        "held-out next-frame loss (MSE of normalized patches): before {:.5} ({:.3}x copy-last), after {:.5} ({:.3}x copy-last), copy-last {:.5}",
        before.model,
        before.ratio(),
        fit.best.model,
        fit.best.ratio(),
        before.copy_last
    );
    let _ = writeln!(
        r,
        "export check: ONNX Runtime vs the trained model, max |diff| {diff:.1e}"
    );
    r
}

fn write_report(dir: &Path, fit: &Fit, text: &str, adapt: &serde_json::Value) -> Result<()> {
    fs_err::create_dir_all(dir)?;
    let rows: Vec<Vec<String>> = fit
        .history
        .iter()
        .map(|m| {
            vec![
                m.epoch.to_string(),
                format!("{:.6}", m.train_loss),
                m.val_loss.map_or(String::new(), |v| format!("{v:.6}")),
            ]
        })
        .collect();
    write::write_csv_atomic(
        &dir.join("metrics.csv"),
        &["evaluation", "train_loss", "heldout_loss"],
        &rows,
    )?;
    write::write_atomic(&dir.join("report.txt"), text.as_bytes())?;
    write::write_atomic(
        &dir.join("curve.svg"),
        metrics::curve_svg_with(&fit.history, fit.best_eval, "evaluation").as_bytes(),
    )?;
    write::write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(adapt)?.as_bytes(),
    )
}
