//! `framegpt analyze`: inputs → per-frame, per-shot and per-clip CSV.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::{AnalyzeArgs, GlobalArgs, ScenesFormat};
use crate::discover::{self, InputFile};
use crate::exit::ExitCode;
use crate::manifest::{self, InputRecord, Manifest, RunIdentity, ShardInfo};
use crate::model::{Model, SessionOptions};
use crate::pipeline::{self, ClipRow, PipelineConfig, RunReport};
use crate::progress::Progress;
use crate::settings::{AnalyzeSettings, ThreadBudget};
use crate::shard;
use crate::shots::DetectorConfig;
use crate::write;

/// A usage, model or configuration error: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct UsageError(pub anyhow::Error);

pub fn run(args: &AnalyzeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let cancel = install_interrupt_handler();
    let settings = AnalyzeSettings::from_args(args, global).map_err(|e| UsageError(e.into()))?;
    let found = discover::discover(&settings.inputs, settings.recursive);
    if found.files.is_empty() {
        let details: Vec<String> = found
            .missing
            .iter()
            .map(|m| format!("  `{}`: {}", m.input, m.cause))
            .collect();
        return Err(UsageError(anyhow::anyhow!(
            "no input video found:\n{}",
            details.join("\n")
        ))
        .into());
    }
    let model = Model::load(
        &settings.model_path,
        SessionOptions {
            device: settings.device,
            threads: settings.threads.ort,
        },
    )
    .map_err(|e| UsageError(e.into()))?;
    let contract = model.contract().clone();
    let config = PipelineConfig {
        output_dir: match settings.shard {
            Some(s) => settings
                .output_dir
                .join(format!("shard-{}-of-{}", s.index, s.count)),
            None => settings.output_dir.clone(),
        },
        sample: settings.sample.clone(),
        batch_windows: settings.batch_windows,
        window_stride: settings
            .window_stride
            .unwrap_or((contract.context_frames / 2).max(1)),
        decode_jobs: settings.threads.decode_jobs,
        ffmpeg_threads: settings.threads.ffmpeg_per_file,
        embeddings: settings.embeddings,
        scenes_format: settings.scenes_format,
        detector: detector_config()?,
    };
    let out_dir = config.output_dir.clone();
    fs_err::create_dir_all(&out_dir).map_err(|e| UsageError(e.into()))?;
    write::remove_stale_temporaries(&out_dir);

    // This run's share of the inputs, and what an earlier run in the same folder finished.
    let selected: Vec<usize> = match settings.shard {
        Some(s) => shard::assign(&found.files, s),
        None => (0..found.files.len()).collect(),
    };
    let identity = RunIdentity {
        model_sha256: manifest::sha256_file(&settings.model_path)?,
        settings: settings_fingerprint(&config),
    };
    let previous = match Manifest::load(&out_dir) {
        Ok(m) => m.filter(|m| m.identity == identity),
        Err(e) => {
            tracing::warn!("ignoring the previous run's manifest: {e:#}");
            None
        }
    };
    let assigned: Vec<String> = selected
        .iter()
        .map(|&i| manifest::rel_key(&found.files[i].rel))
        .collect();
    let mut run_manifest = Manifest::new(
        identity,
        settings.shard.map(|s| ShardInfo {
            index: s.index,
            count: s.count,
        }),
        assigned,
    );
    let needs = output_files(&config);
    let mut to_run = Vec::new();
    for &i in &selected {
        let input = &found.files[i];
        match previous
            .as_ref()
            .filter(|_| !settings.force)
            .and_then(|p| p.reusable(input, &out_dir, &needs))
        {
            Some(rec) => {
                run_manifest.inputs.insert(rec.video.clone(), rec.clone());
            }
            None => to_run.push(input.clone()),
        }
    }
    let skipped = selected.len() - to_run.len();
    // Fewer files than decode workers: give the idle workers' FFmpeg threads to the others.
    let config = {
        let mut c = config;
        let budget = ThreadBudget::new(
            settings.threads.total,
            Some(settings.threads.decode_jobs.min(to_run.len()).max(1)),
        );
        c.decode_jobs = budget.decode_jobs;
        c.ffmpeg_threads = budget.ffmpeg_per_file;
        c
    };
    run_manifest.save(&out_dir)?;
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
    if !global.quiet && skipped > 0 {
        eprintln!("skipping {skipped} input(s) already analyzed with the same model and settings (--force redoes them)");
    }

    // rayon's share of the budget; a second call (tests, library users) keeps the first pool.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.threads.total)
        .build_global();
    let progress = Progress::new(settings.progress, to_run.iter().map(|f| f.size).sum());
    let started = Instant::now();
    let mut record = |input: &InputFile, row: &ClipRow| {
        let (size, mtime_ns) = manifest::fingerprint(&input.path).unwrap_or((input.size, 0));
        let rec = InputRecord {
            video: row.video.clone(),
            path: input.path.clone(),
            size,
            mtime_ns,
            status: if row.error.is_some() { "error" } else { "ok" }.to_string(),
            error: row.error.clone(),
            elapsed_s: row.elapsed_s,
            row: row.to_record(),
        };
        run_manifest.inputs.insert(rec.video.clone(), rec);
        if let Err(e) = run_manifest.save(&out_dir) {
            tracing::warn!("failed to update the run manifest: {e:#}");
        }
    };
    let report = if to_run.is_empty() {
        RunReport {
            rows: Vec::new(),
            interrupted: false,
            frames_analyzed: 0,
        }
    } else {
        pipeline::run(
            &config,
            &to_run,
            vec![model],
            &progress,
            &cancel,
            &mut record,
        )?
    };
    progress.finish();

    // clips.csv: this run's inputs in order (reused and new), then inputs that matched nothing.
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut failed = 0;
    for key in &run_manifest.assigned {
        if let Some(rec) = run_manifest.inputs.get(key) {
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
    let clips_path = out_dir.join("clips.csv");
    write::write_csv_atomic(&clips_path, &write::CLIPS_HEADER, &records)
        .with_context(|| format!("failed to write `{}`", clips_path.display()))?;
    run_manifest.complete =
        !report.interrupted && run_manifest.inputs.len() == run_manifest.assigned.len();
    run_manifest.save(&out_dir)?;

    if !global.quiet && to_run.is_empty() {
        eprintln!(
            "nothing to do: all {skipped} input(s) already analyzed; results: `{}`",
            clips_path.display()
        );
    } else if !global.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "analyzed {} of {} inputs ({} frames, {:.1} s, {:.0} frames/s){}{}; results: `{}`",
            report.rows.len(),
            to_run.len(),
            report.frames_analyzed,
            elapsed,
            report.frames_analyzed as f64 / elapsed.max(1e-9),
            if skipped > 0 {
                format!(", {skipped} skipped")
            } else {
                String::new()
            },
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            },
            clips_path.display()
        );
    }
    Ok(if report.interrupted {
        if !global.quiet {
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

/// The detector's defaults, or the development overrides in `FRAMEGPT_DETECTOR`.
fn detector_config() -> Result<DetectorConfig> {
    match std::env::var("FRAMEGPT_DETECTOR") {
        Ok(spec) => DetectorConfig::default()
            .with_overrides(&spec)
            .map_err(|e| UsageError(anyhow::anyhow!("FRAMEGPT_DETECTOR: {e}")).into()),
        Err(_) => Ok(DetectorConfig::default()),
    }
}

/// The settings that change what an input's outputs contain (not threads or batch size:
/// results do not depend on them).
pub fn settings_fingerprint(config: &PipelineConfig) -> String {
    format!(
        "sample={:?}; window_stride={}; embeddings={}; scenes={:?}; detector={:?}",
        config.sample,
        config.window_stride,
        config.embeddings,
        config.scenes_format,
        config.detector
    )
}

/// Per-input files a finished input has.
fn output_files(config: &PipelineConfig) -> Vec<&'static str> {
    let mut f = vec!["frames.csv", "shots.csv"];
    if config.embeddings {
        f.push("embeddings.npy");
    }
    if config.scenes_format == ScenesFormat::Pyscenedetect {
        f.push("scenes.csv");
    }
    f
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
