//! `framegpt bench` (hidden): one stage of the pipeline alone, for `scripts/bench.sh`.
//!
//! - `decode`: decode + sample + resize + patchify (everything before the model);
//! - `infer`: windows through the model + surprise, on frames decoded beforehand (at most
//!   `--cache-frames` of them, reused round-robin so memory stays bounded).
//!
//! Prints one JSON line: `{"stage", "frames", "seconds", "fps"}`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use ndarray::Array4;

use crate::cli::GlobalArgs;
use crate::decode::{self, DecodeOptions};
use crate::exit::ExitCode;
use crate::model::{Device, Model, SessionOptions};
use crate::patchify::Patchifier;
use crate::sample::{SampleSpec, Sampler};
use crate::score::{self, FrameMeta, Windower};
use crate::settings::{self, ThreadBudget};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The video to measure on.
    pub video: PathBuf,
    #[arg(long, value_enum)]
    pub stage: Stage,
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Frames to run through the model (infer stage) [default: the video's frame count].
    #[arg(long)]
    pub frames: Option<u64>,
    /// Frames decoded up front for the infer stage.
    #[arg(long, default_value_t = 256)]
    pub cache_frames: u64,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    Decode,
    Infer,
}

pub fn run(args: &BenchArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let budget = ThreadBudget::new(settings::total_threads(global), Some(1));
    let model_path = match &args.model {
        Some(p) => p.clone(),
        None => settings::default_model()?,
    };
    let mut model = Model::load(
        &model_path,
        SessionOptions {
            device: Device::Cpu,
            threads: budget.ort,
        },
    )?;
    let contract = model.contract().clone();
    let patchifier = Patchifier::new(&contract);
    let options = DecodeOptions {
        frame_width: contract.frame_width,
        frame_height: contract.frame_height,
        threads: budget.ffmpeg_per_file,
    };
    let cancel = AtomicBool::new(false);
    let (frames, seconds) = match args.stage {
        Stage::Decode => {
            let mut sampler = Sampler::new(SampleSpec::default());
            let started = Instant::now();
            let mut n = 0u64;
            let mut sink_len = 0usize;
            decode::decode_file(&args.video, options, &mut sampler, &cancel, |f| {
                sink_len += patchifier.patchify(&f.rgb).len();
                n += 1;
                true
            })?;
            std::hint::black_box(sink_len);
            (n, started.elapsed().as_secs_f64())
        }
        Stage::Infer => {
            let spec = SampleSpec {
                max_frames: Some(args.cache_frames),
                ..Default::default()
            };
            let mut sampler = Sampler::new(spec);
            let mut cached = Vec::new();
            let summary = decode::decode_file(&args.video, options, &mut sampler, &cancel, |f| {
                cached.push(patchifier.patchify(&f.rgb));
                true
            })?;
            anyhow::ensure!(
                !cached.is_empty(),
                "no frame decoded from `{}`",
                args.video.display()
            );
            let total = args
                .frames
                .unwrap_or(summary.info.declared_frames.unwrap_or(cached.len() as u64));
            let (t, n, c) = (
                contract.context_frames,
                contract.num_patches(),
                contract.patch_dim(),
            );
            let mut windower = Windower::new(t, (t / 2).max(1), n * c);
            let started = Instant::now();
            let mut scored = 0u64;
            let mut pending = Vec::new();
            let mut run_batch = |windows: Vec<score::Window>| -> Result<u64> {
                let b = windows.len();
                let data: Vec<f32> = windows
                    .iter()
                    .flat_map(|w| w.input.iter().copied())
                    .collect();
                let out = model.run(Array4::from_shape_vec((b, t, n, c), data)?.view())?;
                let mut steps = 0;
                for (i, w) in windows.iter().enumerate() {
                    for st in &w.steps {
                        if let Some((_, actual)) = &st.target {
                            let pred = out.next_patches.slice(ndarray::s![i, st.position, .., ..]);
                            std::hint::black_box(score::mean_squared_error(
                                pred.as_slice().expect("contiguous"),
                                actual,
                            ));
                        }
                        steps += 1;
                    }
                }
                Ok(steps)
            };
            for p in 0..total {
                let meta = FrameMeta {
                    position: p,
                    index: p,
                    pts_seconds: p as f64,
                };
                pending.extend(
                    windower.push(meta, cached[(p % cached.len() as u64) as usize].clone()),
                );
                if pending.len() >= args.batch {
                    scored += run_batch(std::mem::take(&mut pending))?;
                }
            }
            pending.extend(windower.finish());
            for chunk in pending.chunks(args.batch) {
                scored += run_batch(chunk.to_vec())?;
            }
            (scored, started.elapsed().as_secs_f64())
        }
    };
    let stage = format!("{:?}", args.stage).to_lowercase();
    println!(
        "{}",
        serde_json::json!({ "stage": stage, "frames": frames, "seconds": seconds, "fps": frames as f64 / seconds.max(1e-9) })
    );
    Ok(ExitCode::Success)
}
