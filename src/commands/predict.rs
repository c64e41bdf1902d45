//! `framegpt predict VIDEO --at SECONDS -o out.png`: the generative half of the model made
//! visible. One window of T frames from `--at` on is run through the model; the image shows
//!
//! ```text
//! row 1: the actual frames t0 … tT
//! row 2: the model's prediction of each frame from the frames before it
//! row 3: per-patch surprise (prediction error), one colour scale for the whole window
//! ```

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Args;
use ndarray::Array4;

use crate::cli::GlobalArgs;
use crate::commands::analyze::UsageError;
use crate::decode::{self, DecodeOptions};
use crate::exit::ExitCode;
use crate::model::{Device, Model, SessionOptions};
use crate::patchify::Patchifier;
use crate::sample::{SampleSpec, Sampler};
use crate::score;
use crate::settings;

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// The video.
    pub video: PathBuf,
    /// Time of the first frame of the window, in seconds.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub at: f64,
    /// The PNG to write.
    #[arg(short, long, value_name = "PNG")]
    pub output: PathBuf,
    /// Model file [default: the shipped base model].
    #[arg(long, value_name = "PATH", env = "FRAMEGPT_MODEL")]
    pub model: Option<PathBuf>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Pixels per model pixel in the image.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub zoom: u32,
}

const GAP: usize = 4;

pub fn run(args: &PredictArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let device: Device = args
        .device
        .parse()
        .map_err(|e: String| UsageError(anyhow::anyhow!(e)))?;
    let model_path = match &args.model {
        Some(p) => p.clone(),
        None => settings::default_model().map_err(|e| UsageError(e.into()))?,
    };
    let threads = settings::total_threads(global);
    let mut model = Model::load(&model_path, SessionOptions { device, threads })
        .map_err(|e| UsageError(e.into()))?;
    let c = model.contract().clone();
    let p = Patchifier::new(&c);
    let t = c.context_frames;
    let spec = SampleSpec {
        start_s: args.at.max(0.0),
        max_frames: Some(t as u64 + 1),
        ..Default::default()
    };
    let mut sampler = Sampler::new(spec);
    let options = DecodeOptions {
        frame_width: c.frame_width,
        frame_height: c.frame_height,
        threads,
    };
    let mut frames: Vec<(f64, Vec<u8>)> = Vec::new();
    decode::decode_file(
        &args.video,
        options,
        &mut sampler,
        &AtomicBool::new(false),
        |f| {
            frames.push((f.pts_seconds, f.rgb));
            true
        },
    )
    .with_context(|| format!("failed to decode `{}`", args.video.display()))?;
    anyhow::ensure!(
        frames.len() >= 2,
        "`{}` has fewer than 2 frames from {} s on; hint: use an earlier --at",
        args.video.display(),
        args.at
    );
    let patches: Vec<Vec<f32>> = frames.iter().map(|(_, rgb)| p.patchify(rgb)).collect();
    let mut input = Vec::with_capacity(t * p.frame_len());
    for i in 0..t {
        input.extend_from_slice(&patches[i.min(patches.len() - 1)]);
    }
    let out =
        model.run(Array4::from_shape_vec((1, t, p.num_patches(), p.patch_dim()), input)?.view())?;

    // Predictions and per-patch errors for frames 1..len.
    let mut predicted = Vec::new();
    let mut errors = Vec::new();
    for k in 1..frames.len() {
        let pred = out.next_patches.slice(ndarray::s![0, k - 1, .., ..]);
        let pred = pred.as_slice().expect("contiguous");
        predicted.push(p.unpatchify(pred));
        errors.push(score::patch_errors(pred, &patches[k], p.patch_dim()));
    }
    let max_err = errors.iter().flatten().copied().fold(1e-6f32, f32::max);

    let (w, h, z) = (
        c.frame_width as usize,
        c.frame_height as usize,
        args.zoom as usize,
    );
    let tile_w = w * z + GAP;
    let width = frames.len() * tile_w + GAP;
    let height = 3 * (h * z + GAP) + GAP;
    let mut canvas = vec![24u8; width * height * 3];
    let mut blit = |col: usize, row: usize, rgb: &[u8]| {
        let (x0, y0) = (GAP + col * tile_w, GAP + row * (h * z + GAP));
        for y in 0..h * z {
            for x in 0..w * z {
                let s = ((y / z) * w + x / z) * 3;
                let d = ((y0 + y) * width + x0 + x) * 3;
                canvas[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
            }
        }
    };
    for (k, (_, rgb)) in frames.iter().enumerate() {
        blit(k, 0, rgb);
    }
    let grid_x = p.frame_width / p.patch_size;
    for (k, (pred, err)) in predicted.iter().zip(&errors).enumerate() {
        blit(k + 1, 1, pred);
        let mut heat = vec![0u8; w * h * 3];
        for (n, e) in err.iter().enumerate() {
            let colour = heat_colour(e / max_err);
            let (gy, gx) = (n / grid_x, n % grid_x);
            for py in 0..p.patch_size {
                for px in 0..p.patch_size {
                    let i = ((gy * p.patch_size + py) * w + gx * p.patch_size + px) * 3;
                    heat[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
        blit(k + 1, 2, &heat);
    }
    write_png(&args.output, width as u32, height as u32, &canvas)?;

    eprintln!("frame  time_s   surprise (mean squared prediction error, normalized pixels)");
    for (k, (pts, _)) in frames.iter().enumerate() {
        let s = if k == 0 {
            "-".to_string()
        } else {
            format!(
                "{:.5}",
                errors[k - 1].iter().sum::<f32>() / errors[k - 1].len() as f32
            )
        };
        eprintln!("{k:>5}  {pts:>6.3}   {s}");
    }
    eprintln!("heatmap scale: black 0 → yellow {max_err:.4} (per-patch mean squared error)");
    eprintln!(
        "wrote `{}` (rows: actual, predicted, surprise)",
        args.output.display()
    );
    Ok(ExitCode::Success)
}

/// Black → red → yellow → white.
fn heat_colour(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    let r = (v * 3.0).min(1.0);
    let g = (v * 3.0 - 1.0).clamp(0.0, 1.0);
    let b = (v * 3.0 - 2.0).clamp(0.0, 1.0);
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

fn write_png(path: &std::path::Path, width: u32, height: u32, rgb: &[u8]) -> Result<()> {
    let mut file = crate::write::AtomicFile::create(path)?;
    {
        let mut encoder = png::Encoder::new(BufWriter::new(file.file()), width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
    }
    file.commit()
}
