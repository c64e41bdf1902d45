//! `framegpt analyze`: inputs → per-frame, per-shot and per-clip CSV.
//!
//! [`run`] reads as its stages: settings → inputs → model → plan (what an earlier run in
//! the same folder already finished) → the pipeline → clips.csv and run.json → summary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::cli::{AnalyzeArgs, EmbeddingsFormat, GlobalArgs, ScenesFormatArg};
use crate::digest;
use crate::discover::{self, Discovered, InputFile};
use crate::exit::{ExitCode, UsageError};
use crate::manifest::{self, InputRecord, Manifest, RunIdentity, ShardInfo};
use crate::model::{Device, Model, ModelContract, SessionOptions};
use crate::pipeline::{self, OutputConfig, PipelineConfig, RunReport};
use crate::progress::Progress;
use crate::rows::{self, ClipRow, ScenesFormat};
use crate::sample::SampleSpec;
use crate::shard::{self, ShardSpec};
use crate::shots::DetectorConfig;
use crate::threads::ThreadBudget;
use crate::write;

/// `analyze`'s arguments, validated, in domain types.
#[derive(Debug, Clone)]
pub struct AnalyzeSettings {
    pub inputs: Vec<String>,
    pub recursive: bool,
    /// The folder outputs go to (with `--shard`, its `shard-I-of-N/` subfolder).
    pub output_dir: PathBuf,
    pub model_path: PathBuf,
    pub device: Device,
    pub sample: SampleSpec,
    /// Windows per inference call.
    pub batch_windows: usize,
    /// Frames between window starts (None: half the model's context).
    pub window_stride: Option<usize>,
    pub threads: ThreadBudget,
    /// `--file-timeout` (None: no bound).
    pub file_timeout: Option<std::time::Duration>,
    pub embeddings: bool,
    /// Shot lists besides shots.csv, sorted, without duplicates.
    pub scenes_format: Vec<ScenesFormat>,
    /// Write report.html after the run.
    pub report: bool,
    /// `FRAMEGPT_DETECTOR` (validated): applied after the model's own boundary rule.
    pub detector_overrides: Option<String>,
    pub progress: bool,
    pub quiet: bool,
    pub force: bool,
    pub shard: Option<ShardSpec>,
}

impl AnalyzeSettings {
    /// How each of the run's ONNX Runtime sessions is opened.
    fn session_options(&self) -> SessionOptions {
        SessionOptions {
            device: self.device,
            threads: self.threads.ort_per_session(),
        }
    }

    pub fn from_args(args: &AnalyzeArgs, global: &GlobalArgs) -> Result<Self, UsageError> {
        let sample = sample_spec(args)?;
        if args.batch == 0 {
            return Err(UsageError::msg("--batch must be at least 1"));
        }
        if args.jobs == Some(0) {
            return Err(UsageError::msg("--jobs must be at least 1"));
        }
        if args.window_stride == Some(0) {
            return Err(UsageError::msg("--window-stride must be at least 1"));
        }
        let shard = match &args.shard {
            Some(s) => Some(s.parse::<ShardSpec>().map_err(UsageError::msg)?),
            None => shard::from_env(|k| std::env::var(k).ok()).map_err(UsageError::msg)?,
        }
        .filter(|s| s.count > 1);
        let output_dir = match shard {
            Some(s) => args
                .output
                .join(format!("shard-{}-of-{}", s.index, s.count)),
            None => args.output.clone(),
        };
        Ok(AnalyzeSettings {
            inputs: args.inputs.clone(),
            recursive: args.recursive,
            output_dir,
            model_path: args.model.model_path()?,
            device: args.model.device,
            sample,
            batch_windows: args.batch,
            window_stride: args.window_stride,
            threads: ThreadBudget::new(global.total_threads(), args.jobs),
            file_timeout: args.file_timeout.0,
            embeddings: args.embeddings == EmbeddingsFormat::Npy,
            scenes_format: scenes_formats(&args.scenes_format),
            report: args.report,
            detector_overrides: detector_overrides()?,
            progress: global.progress(),
            quiet: global.quiet,
            force: args.force,
            shard,
        })
    }

    /// What the pipeline runs with, once the model's context is known.
    fn pipeline_config(&self, contract: &ModelContract) -> Result<PipelineConfig, UsageError> {
        Ok(PipelineConfig {
            sample: self.sample.clone(),
            batch_windows: self.batch_windows,
            window_stride: self
                .window_stride
                .unwrap_or((contract.context_frames / 2).max(1)),
            decode_jobs: self.threads.decode_jobs,
            ffmpeg_threads: self.threads.ffmpeg_per_file,
            file_timeout: self.file_timeout,
            output: OutputConfig {
                output_dir: self.output_dir.clone(),
                embeddings: self.embeddings,
                scenes_format: self.scenes_format.clone(),
                detector: detector_config(contract, self.detector_overrides.as_deref())?,
            },
        })
    }
}

fn scenes_formats(args: &[ScenesFormatArg]) -> Vec<ScenesFormat> {
    let mut f: Vec<ScenesFormat> = args
        .iter()
        .filter_map(|a| match a {
            ScenesFormatArg::Framegpt => None,
            ScenesFormatArg::Pyscenedetect => Some(ScenesFormat::Pyscenedetect),
            ScenesFormatArg::Edl => Some(ScenesFormat::Edl),
            ScenesFormatArg::Otio => Some(ScenesFormat::Otio),
            ScenesFormatArg::Chapters => Some(ScenesFormat::Chapters),
            ScenesFormatArg::Vtt => Some(ScenesFormat::Vtt),
        })
        .collect();
    f.sort();
    f.dedup();
    f
}

fn sample_spec(args: &AnalyzeArgs) -> Result<SampleSpec, UsageError> {
    if let Some(f) = args.fps {
        if !(f.is_finite() && f > 0.0) {
            return Err(UsageError::msg(format!(
                "--fps must be a positive number, got {f}"
            )));
        }
    }
    if args.max_frames == Some(0) {
        return Err(UsageError::msg("--max-frames must be at least 1"));
    }
    if args.every == Some(0) {
        return Err(UsageError::msg("--every must be at least 1"));
    }
    let start_s = args.start.unwrap_or(0.0);
    if !(start_s.is_finite() && start_s >= 0.0) {
        return Err(UsageError::msg(format!(
            "--start must be >= 0 seconds, got {start_s}"
        )));
    }
    if let Some(end) = args.end {
        if !(end.is_finite() && end > start_s) {
            return Err(UsageError::msg(format!(
                "--end ({end}) must be after --start ({start_s})"
            )));
        }
    }
    Ok(SampleSpec {
        every: args.every.unwrap_or(1),
        target_fps: args.fps,
        max_frames: args.max_frames,
        start_s,
        end_s: args.end,
        keyframes_only: args.keyframes,
    })
}

/// The development overrides in `FRAMEGPT_DETECTOR`, checked against the defaults.
fn detector_overrides() -> Result<Option<String>, UsageError> {
    match std::env::var("FRAMEGPT_DETECTOR") {
        Ok(spec) => DetectorConfig::default()
            .with_overrides(&spec)
            .map(|_| Some(spec))
            .map_err(|e| UsageError::msg(format!("FRAMEGPT_DETECTOR: {e}"))),
        Err(_) => Ok(None),
    }
}

/// The detector's defaults, then the thresholds a v2 model's validation chose
/// (`framegpt.boundary_rule`), then the development overrides.
pub fn detector_config(
    contract: &ModelContract,
    overrides: Option<&str>,
) -> Result<DetectorConfig, UsageError> {
    let mut cfg = DetectorConfig::default();
    if let Some(rule) = contract.boundary.as_ref().and_then(|b| b.rule.as_deref()) {
        cfg = cfg.with_overrides(rule).map_err(|e| {
            UsageError::msg(format!("model metadata `framegpt.boundary_rule`: {e}"))
        })?;
    }
    match overrides {
        Some(spec) => cfg
            .with_overrides(spec)
            .map_err(|e| UsageError::msg(format!("FRAMEGPT_DETECTOR: {e}"))),
        None => Ok(cfg),
    }
}

pub fn run(args: &AnalyzeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let cancel = install_interrupt_handler();
    let mut settings = AnalyzeSettings::from_args(args, global)?;
    let found = find_inputs(&settings)?;
    let model =
        Model::load(&settings.model_path, settings.session_options()).map_err(UsageError::from)?;
    let mut config = settings.pipeline_config(model.contract())?;
    let out_dir = settings.output_dir.clone();
    fs_err::create_dir_all(&out_dir).map_err(|e| UsageError(e.into()))?;
    write::remove_stale_temporaries(&out_dir);

    let (mut manifest, to_run) = plan(&settings, &config, &found)?;
    let skipped = manifest.assigned.len() - to_run.len();
    if matches!(model.device(), Device::Cuda(_)) {
        settings.threads = settings.threads.on_gpu();
    }
    let budget = settings.threads.for_files(to_run.len());
    config.decode_jobs = budget.decode_jobs;
    config.ffmpeg_threads = budget.ffmpeg_per_file;
    manifest.save(&out_dir)?;
    tracing::info!(
        model = %settings.model_path.display(),
        device = %model.device(),
        inputs = found.files.len(),
        this_run = to_run.len(),
        skipped,
        shard = ?settings.shard,
        threads = settings.threads.total,
        decode_jobs = settings.threads.decode_jobs,
        "analyze"
    );
    if !settings.quiet && skipped > 0 {
        eprintln!("skipping {skipped} input(s) already analyzed with the same model and settings (--force redoes them)");
    }

    let started = Instant::now();
    let report = analyze_inputs(&settings, &config, &to_run, model, &cancel, &mut manifest)?;
    let (clips_path, failed) = write_clips(&settings, &found, &manifest)?;
    manifest.complete = !report.interrupted && manifest.inputs.len() == manifest.assigned.len();
    manifest.save(&out_dir)?;
    if settings.report {
        let path = crate::report::write_report(&out_dir, settings.threads.total)?;
        if !settings.quiet {
            eprintln!("report: `{}`", path.display());
        }
    }
    if !settings.quiet {
        summarize(&report, to_run.len(), skipped, failed, started, &clips_path);
    }
    Ok(if report.interrupted {
        if !settings.quiet {
            eprintln!(
                "interrupted: files in flight were discarded; re-run the same command to resume"
            );
        }
        ExitCode::Interrupted
    } else if failed > 0 {
        ExitCode::SomeInputsFailed
    } else {
        ExitCode::Success
    })
}

/// The inputs; finding none at all is a usage error.
fn find_inputs(settings: &AnalyzeSettings) -> Result<Discovered, UsageError> {
    let found = discover::discover(&settings.inputs, settings.recursive);
    if found.files.is_empty() {
        let details: Vec<String> = found
            .missing
            .iter()
            .map(|m| format!("  `{}`: {}", m.input, m.cause))
            .collect();
        return Err(UsageError::msg(format!(
            "no input video found:\n{}",
            details.join("\n")
        )));
    }
    if !settings.quiet {
        for m in &found.missing {
            eprintln!(
                "warning: `{}`: {} (an error row in clips.csv)",
                m.input, m.cause
            );
        }
    }
    Ok(found)
}

/// This run's manifest (its share of the inputs, with what an earlier run in the same
/// folder finished and can be reused) and the inputs still to analyze.
fn plan(
    settings: &AnalyzeSettings,
    config: &PipelineConfig,
    found: &Discovered,
) -> Result<(Manifest, Vec<InputFile>)> {
    let selected: Vec<usize> = match settings.shard {
        Some(s) => shard::assign(&found.files, s),
        None => (0..found.files.len()).collect(),
    };
    let identity = RunIdentity {
        model_sha256: digest::sha256_file(&settings.model_path)?,
        settings: settings_fingerprint(config),
    };
    let out_dir = &config.output.output_dir;
    let previous = match Manifest::load(out_dir) {
        Ok(m) => m.filter(|m| m.identity == identity && !settings.force),
        Err(e) => {
            tracing::warn!("ignoring the previous run's manifest: {e:#}");
            None
        }
    };
    let shard = settings.shard.map(|s| ShardInfo {
        index: s.index,
        count: s.count,
    });
    let inputs: Vec<&InputFile> = selected.iter().map(|&i| &found.files[i]).collect();
    let assigned = inputs.iter().map(|f| manifest::rel_key(&f.rel)).collect();
    let mut manifest = Manifest::new(identity, shard, assigned);
    let to_run = manifest.reuse(previous.as_ref(), &inputs, out_dir, &config.output.files());
    Ok((manifest, to_run))
}

/// The pipeline over `to_run`, recording each finished input in the manifest.
fn analyze_inputs(
    settings: &AnalyzeSettings,
    config: &PipelineConfig,
    to_run: &[InputFile],
    model: Model,
    cancel: &AtomicBool,
    manifest: &mut Manifest,
) -> Result<RunReport> {
    if to_run.is_empty() {
        return Ok(RunReport::empty());
    }
    let mut models = vec![model];
    for _ in 1..settings.threads.sessions {
        models.push(Model::load(
            &settings.model_path,
            settings.session_options(),
        )?);
    }
    settings.threads.init_rayon();
    let progress = Progress::new(settings.progress, to_run.iter().map(|f| f.size).sum());
    let out_dir = config.output.output_dir.clone();
    let mut record = |input: &InputFile, row: &ClipRow| {
        manifest.record(InputRecord::finished(input, row));
        if let Err(e) = manifest.save(&out_dir) {
            tracing::warn!("failed to update the run manifest: {e:#}");
        }
    };
    let report = pipeline::run(config, to_run, models, &progress, cancel, &mut record);
    progress.finish();
    report
}

/// clips.csv: this run's inputs in order (reused and new), then inputs that matched
/// nothing (in shard 0 only). Returns its path and the number of failed rows.
fn write_clips(
    settings: &AnalyzeSettings,
    found: &Discovered,
    manifest: &Manifest,
) -> Result<(PathBuf, usize)> {
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut failed = 0;
    for key in &manifest.assigned {
        if let Some(rec) = manifest.inputs.get(key) {
            failed += usize::from(rec.status != "ok");
            records.push(rec.row.clone());
        }
    }
    if settings.shard.is_none_or(|s| s.index == 0) {
        for m in &found.missing {
            failed += 1;
            records.push(ClipRow::failed(m.input.clone(), m.cause.clone()).to_record());
        }
    }
    let clips_path = settings.output_dir.join("clips.csv");
    write::write_csv_atomic(&clips_path, &rows::CLIPS_HEADER, &records)?;
    Ok((clips_path, failed))
}

fn summarize(
    report: &RunReport,
    to_run: usize,
    skipped: usize,
    failed: usize,
    started: Instant,
    clips_path: &Path,
) {
    if to_run == 0 {
        eprintln!(
            "nothing to do: all {skipped} input(s) already analyzed; results: `{}`",
            clips_path.display()
        );
        return;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let skipped = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    let failed = if failed > 0 {
        format!(", {failed} failed")
    } else {
        String::new()
    };
    eprintln!(
        "analyzed {} of {} inputs ({} frames, {:.1} s, {:.0} frames/s){skipped}{failed}; results: `{}`",
        report.rows.len(),
        to_run,
        report.frames_analyzed,
        elapsed,
        report.frames_analyzed as f64 / elapsed.max(1e-9),
        clips_path.display()
    );
}

/// The settings that change what an input's outputs contain (not threads or batch size:
/// results do not depend on them).
pub fn settings_fingerprint(config: &PipelineConfig) -> String {
    format!(
        // `orientation=display`: frames are turned as the display matrix says (outputs of
        // earlier versions read rotated videos unturned, so they are not reused).
        "sample={:?}; window_stride={}; embeddings={}; scenes={:?}; detector={:?}; orientation=display",
        config.sample,
        config.window_stride,
        config.output.embeddings,
        config.output.scenes_format,
        config.output.detector
    )
}

/// First SIGINT/SIGTERM: stop taking files, discard the ones in flight. Second: exit now
/// (temporary files never carry a final name, so nothing half-written is left behind).
fn install_interrupt_handler() -> Arc<AtomicBool> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if COUNT.fetch_add(1, Ordering::SeqCst) >= 1 {
            std::process::exit(ExitCode::Interrupted.code());
        }
        flag.store(true, Ordering::SeqCst);
    });
    cancel
}
