//! `framegpt bench` (hidden): one stage of the pipeline alone, for `scripts/bench.sh`.
//!
//! - `decode`: decode + sample + resize + patchify (everything before the model);
//! - `infer`: windows through [`model::run_windows`] (the function `analyze` runs), on
//!   frames decoded beforehand (at most `--cache-frames` of them, reused round-robin so
//!   memory stays bounded).
//!
//! Prints one JSON line: `{"stage", "frames", "seconds", "fps"}`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;

use crate::cli::{BenchArgs, GlobalArgs, Stage};
use crate::decode::{self, DecodeOptions};
use crate::exit::{ExitCode, UsageError};
use crate::model::{self, Device, Model, SessionOptions};
use crate::patchify::Patchifier;
use crate::sample::{SampleSpec, Sampler};
use crate::score::{FrameMeta, Window, Windower};
use crate::threads::ThreadBudget;

/// `bench`'s arguments, validated.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    pub video: PathBuf,
    pub stage: Stage,
    pub model_path: PathBuf,
    pub device: Device,
    pub frames: Option<u64>,
    pub cache_frames: u64,
    pub batch: usize,
    pub threads: ThreadBudget,
}

impl BenchSettings {
    pub fn from_args(args: &BenchArgs, global: &GlobalArgs) -> Result<Self, UsageError> {
        if args.batch == 0 || args.cache_frames == 0 {
            return Err(UsageError::msg(
                "--batch and --cache-frames must be at least 1",
            ));
        }
        Ok(BenchSettings {
            video: args.video.clone(),
            stage: args.stage,
            model_path: args.model.model_path()?,
            device: args.model.device,
            frames: args.frames,
            cache_frames: args.cache_frames,
            batch: args.batch,
            threads: ThreadBudget::new(global.total_threads(), Some(1)),
        })
    }
}

pub fn run(args: &BenchArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let settings = BenchSettings::from_args(args, global)?;
    let mut model = Model::load(
        &settings.model_path,
        SessionOptions {
            device: settings.device,
            threads: settings.threads.ort,
        },
    )
    .map_err(UsageError::from)?;
    let (frames, seconds) = match settings.stage {
        Stage::Decode => bench_decode(&settings, &model)?,
        Stage::Infer => bench_infer(&settings, &mut model)?,
    };
    let stage = format!("{:?}", settings.stage).to_lowercase();
    println!(
        "{}",
        serde_json::json!({ "stage": stage, "frames": frames, "seconds": seconds, "fps": frames as f64 / seconds.max(1e-9) })
    );
    Ok(ExitCode::Success)
}

fn decode_options(settings: &BenchSettings, model: &Model) -> DecodeOptions {
    DecodeOptions {
        frame_width: model.contract().frame_width,
        frame_height: model.contract().frame_height,
        threads: settings.threads.ffmpeg_per_file,
    }
}

/// Frames decoded and patchified, and the seconds that took.
fn bench_decode(settings: &BenchSettings, model: &Model) -> Result<(u64, f64)> {
    let patchifier = Patchifier::new(model.contract());
    let mut sampler = Sampler::new(SampleSpec::default());
    let cancel = AtomicBool::new(false);
    let options = decode_options(settings, model);
    let started = Instant::now();
    let mut n = 0u64;
    let mut sink_len = 0usize;
    decode::decode_file(&settings.video, options, &mut sampler, &cancel, |f| {
        sink_len += patchifier.patchify(&f.rgb).len();
        n += 1;
        true
    })?;
    std::hint::black_box(sink_len);
    Ok((n, started.elapsed().as_secs_f64()))
}

/// Steps scored by the model, and the seconds that took (decoding not included).
fn bench_infer(settings: &BenchSettings, model: &mut Model) -> Result<(u64, f64)> {
    let patchifier = Patchifier::new(model.contract());
    let spec = SampleSpec {
        max_frames: Some(settings.cache_frames),
        ..Default::default()
    };
    let mut sampler = Sampler::new(spec);
    let cancel = AtomicBool::new(false);
    let options = decode_options(settings, model);
    let mut cached = Vec::new();
    let summary = decode::decode_file(&settings.video, options, &mut sampler, &cancel, |f| {
        cached.push(patchifier.patchify(&f.rgb));
        true
    })?;
    anyhow::ensure!(
        !cached.is_empty(),
        "no frame decoded from `{}`",
        settings.video.display()
    );
    let total = settings
        .frames
        .unwrap_or(summary.info.declared_frames.unwrap_or(cached.len() as u64));
    let t = model.contract().context_frames;
    let mut windower = Windower::new(t, (t / 2).max(1), patchifier.frame_len());
    let started = Instant::now();
    let mut scored = 0u64;
    let mut pending: Vec<Window> = Vec::new();
    let mut run_batch = |windows: &[Window]| -> Result<u64> {
        let scores = model::run_windows(model, windows)?;
        std::hint::black_box(&scores.steps);
        Ok(scores.steps.len() as u64)
    };
    for p in 0..total {
        let meta = FrameMeta {
            position: p,
            index: p,
            pts_seconds: p as f64,
        };
        let patches = cached[(p % cached.len() as u64) as usize].clone();
        pending.extend(windower.push(meta, patches));
        if pending.len() >= settings.batch {
            scored += run_batch(&std::mem::take(&mut pending))?;
        }
    }
    pending.extend(windower.finish());
    for chunk in pending.chunks(settings.batch) {
        scored += run_batch(chunk)?;
    }
    Ok((scored, started.elapsed().as_secs_f64()))
}
