//! `framegpt analyze`: inputs → per-frame, per-shot and per-clip CSV.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::{AnalyzeArgs, GlobalArgs};
use crate::discover;
use crate::exit::ExitCode;
use crate::model::{Model, SessionOptions};
use crate::pipeline::{self, ClipRow, PipelineConfig};
use crate::progress::Progress;
use crate::settings::AnalyzeSettings;
use crate::shots::DetectorConfig;
use crate::write;

/// A usage, model or configuration error: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct UsageError(pub anyhow::Error);

pub fn run(args: &AnalyzeArgs, global: &GlobalArgs) -> Result<ExitCode> {
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
    tracing::info!(
        model = %settings.model_path.display(),
        device = %model.device(),
        files = found.files.len(),
        threads = settings.threads.total,
        decode_jobs = settings.threads.decode_jobs,
        "analyze"
    );
    let contract = model.contract().clone();
    fs_err::create_dir_all(&settings.output_dir).map_err(|e| UsageError(e.into()))?;
    // rayon's share of the budget; a second call (tests, library users) keeps the first pool.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.threads.total)
        .build_global();

    let cancel = install_interrupt_handler();
    let config = PipelineConfig {
        output_dir: settings.output_dir.clone(),
        sample: settings.sample.clone(),
        batch_windows: settings.batch_windows,
        window_stride: settings
            .window_stride
            .unwrap_or((contract.context_frames / 2).max(1)),
        decode_jobs: settings.threads.decode_jobs,
        ffmpeg_threads: settings.threads.ffmpeg_per_file,
        embeddings: settings.embeddings,
        scenes_format: settings.scenes_format,
        detector: DetectorConfig::default(),
    };
    let progress = Progress::new(settings.progress, found.files.len() as u64);
    let started = Instant::now();
    let report = pipeline::run(&config, &found.files, vec![model], &progress, &cancel)?;
    progress.finish();

    let mut rows: Vec<ClipRow> = report.rows;
    for m in &found.missing {
        rows.push(ClipRow::failed(m.input.clone(), m.cause.clone()));
    }
    let records: Vec<Vec<String>> = rows.iter().map(ClipRow::to_record).collect();
    let clips_path = settings.output_dir.join("clips.csv");
    write::write_csv_atomic(&clips_path, &write::CLIPS_HEADER, &records)
        .with_context(|| format!("failed to write `{}`", clips_path.display()))?;

    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    if !global.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "analyzed {} of {} inputs ({} frames, {:.1} s, {:.0} frames/s){}; results: `{}`",
            rows.len() - failed,
            found.files.len() + found.missing.len(),
            report.frames_analyzed,
            elapsed,
            report.frames_analyzed as f64 / elapsed.max(1e-9),
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
                "interrupted: files in flight were discarded; clips.csv lists the finished ones"
            );
        }
        ExitCode::Interrupted
    } else if failed > 0 {
        ExitCode::SomeInputsFailed
    } else {
        ExitCode::Success
    })
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
