//! `framegpt predict VIDEO --at SECONDS -o out.png`: the generative half of the model made
//! visible. One window of T frames from `--at` on is run through the model; the image shows
//!
//! ```text
//! row 1: the actual frames t0 … tT
//! row 2: the model's prediction of each frame from the frames before it
//! row 3: per-patch surprise (prediction error), one colour scale for the whole window
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use crate::cli::{GlobalArgs, PredictArgs};
use crate::decode::{self, DecodeOptions};
use crate::exit::{ExitCode, UsageError};
use crate::model::{self, Device, Model, SessionOptions};
use crate::patchify::Patchifier;
use crate::sample::{SampleSpec, Sampler};
use crate::score::{self, FrameMeta, OwnedStep, Window};

/// `predict`'s arguments, validated.
#[derive(Debug, Clone)]
pub struct PredictSettings {
    pub video: PathBuf,
    pub at_s: f64,
    pub output: PathBuf,
    pub model_path: PathBuf,
    pub device: Device,
    pub zoom: usize,
    pub threads: usize,
}

impl PredictSettings {
    pub fn from_args(args: &PredictArgs, global: &GlobalArgs) -> Result<Self, UsageError> {
        Ok(PredictSettings {
            video: args.video.clone(),
            at_s: args.at,
            output: args.output.clone(),
            model_path: args.model.model_path()?,
            device: args.model.device,
            zoom: args.zoom as usize,
            threads: global.total_threads(),
        })
    }
}

const GAP: usize = 4;

/// The window's frames as decoded, with what the model made of them.
struct Prediction {
    /// (time in seconds, RGB at the model's size) of frames t0 … tT.
    frames: Vec<(f64, Vec<u8>)>,
    /// The predicted RGB of frames 1 … len.
    predicted: Vec<Vec<u8>>,
    /// Per-patch mean squared error of frames 1 … len.
    patch_errors: Vec<Vec<f32>>,
    /// Mean squared error of frames 1 … len.
    frame_errors: Vec<f32>,
}

impl Prediction {
    /// The top of the heatmap's colour scale: the largest per-patch error of the window.
    fn max_patch_error(&self) -> f32 {
        self.patch_errors
            .iter()
            .flatten()
            .copied()
            .fold(1e-6f32, f32::max)
    }
}

pub fn run(args: &PredictArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let settings = PredictSettings::from_args(args, global)?;
    let mut model = Model::load(
        &settings.model_path,
        SessionOptions {
            device: settings.device,
            threads: settings.threads,
        },
    )
    .map_err(UsageError::from)?;
    let patchifier = Patchifier::new(model.contract());
    let frames = decode_window(&settings, &model, &patchifier)?;
    let prediction = predict(&mut model, &patchifier, frames)?;
    let (width, height, canvas) = render(&prediction, &patchifier, settings.zoom);
    crate::write::write_png(&settings.output, width as u32, height as u32, &canvas)?;
    print_table(&prediction, &settings.output);
    Ok(ExitCode::Success)
}

/// Up to T + 1 frames from `--at` on, at the model's size.
fn decode_window(
    settings: &PredictSettings,
    model: &Model,
    patchifier: &Patchifier,
) -> Result<Vec<(f64, Vec<u8>)>> {
    let c = model.contract();
    let spec = SampleSpec {
        start_s: settings.at_s.max(0.0),
        max_frames: Some(c.context_frames as u64 + 1),
        ..Default::default()
    };
    let options = DecodeOptions {
        frame_width: c.frame_width,
        frame_height: c.frame_height,
        threads: settings.threads,
    };
    let mut frames: Vec<(f64, Vec<u8>)> = Vec::new();
    let mut sampler = Sampler::new(spec);
    let cancel = AtomicBool::new(false);
    decode::decode_file(&settings.video, options, &mut sampler, &cancel, |f| {
        frames.push((f.pts_seconds, f.rgb));
        true
    })
    .with_context(|| format!("failed to decode `{}`", settings.video.display()))?;
    anyhow::ensure!(
        frames.len() >= 2,
        "`{}` has fewer than 2 frames from {} s on; hint: use an earlier --at",
        settings.video.display(),
        settings.at_s
    );
    debug_assert_eq!(patchifier.frame_len(), c.num_patches() * c.patch_dim());
    Ok(frames)
}

/// One window through [`model::run_windows`]: step k predicts frame k + 1.
fn predict(model: &mut Model, p: &Patchifier, frames: Vec<(f64, Vec<u8>)>) -> Result<Prediction> {
    let t = model.contract().context_frames;
    let patches: Vec<Vec<f32>> = frames.iter().map(|(_, rgb)| p.patchify(rgb)).collect();
    let meta = |k: usize| FrameMeta {
        position: k as u64,
        index: k as u64,
        pts_seconds: frames[k].0,
    };
    let mut input = Vec::with_capacity(t * p.frame_len());
    for i in 0..t {
        input.extend_from_slice(&patches[i.min(patches.len() - 1)]);
    }
    let steps = (1..frames.len())
        .map(|k| OwnedStep {
            position: k - 1,
            frame: meta(k - 1),
            target: Some((meta(k), patches[k].clone())),
            repeats: Vec::new(),
        })
        .collect();
    let window = Window {
        input,
        steps,
        boundary_steps: Vec::new(),
    };
    let scores = model::run_windows(model, &[window])?;
    let mut prediction = Prediction {
        frames: Vec::new(),
        predicted: Vec::new(),
        patch_errors: Vec::new(),
        frame_errors: Vec::new(),
    };
    for (k, step) in scores.steps.iter().enumerate() {
        let pred = scores
            .output
            .next_patches
            .slice(ndarray::s![0, step.position, .., ..]);
        let pred = pred.as_slice().expect("contiguous");
        prediction.predicted.push(p.unpatchify(pred));
        let errors = score::patch_errors(pred, &patches[k + 1], p.patch_dim());
        prediction.patch_errors.push(errors);
        prediction.frame_errors.push(step.next_error.unwrap_or(0.0));
    }
    prediction.frames = frames;
    Ok(prediction)
}

/// The three rows of tiles: actual frames, predictions, per-patch surprise.
fn render(prediction: &Prediction, p: &Patchifier, z: usize) -> (usize, usize, Vec<u8>) {
    let (w, h) = (p.frame_width, p.frame_height);
    let max_err = prediction.max_patch_error();
    let tile_w = w * z + GAP;
    let width = prediction.frames.len() * tile_w + GAP;
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
    for (k, (_, rgb)) in prediction.frames.iter().enumerate() {
        blit(k, 0, rgb);
    }
    let pairs = prediction.predicted.iter().zip(&prediction.patch_errors);
    for (k, (pred, err)) in pairs.enumerate() {
        blit(k + 1, 1, pred);
        blit(k + 1, 2, &heatmap(err, max_err, p));
    }
    (width, height, canvas)
}

/// Each patch filled with the colour of its error on the window's scale.
fn heatmap(errors: &[f32], max_err: f32, p: &Patchifier) -> Vec<u8> {
    let w = p.frame_width;
    let grid_x = p.frame_width / p.patch_size;
    let mut heat = vec![0u8; w * p.frame_height * 3];
    for (n, e) in errors.iter().enumerate() {
        let colour = heat_colour(e / max_err);
        let (gy, gx) = (n / grid_x, n % grid_x);
        for py in 0..p.patch_size {
            for px in 0..p.patch_size {
                let i = ((gy * p.patch_size + py) * w + gx * p.patch_size + px) * 3;
                heat[i..i + 3].copy_from_slice(&colour);
            }
        }
    }
    heat
}

fn print_table(prediction: &Prediction, output: &Path) {
    let max_err = prediction.max_patch_error();
    eprintln!("frame  time_s   surprise (mean squared prediction error, normalized pixels)");
    for (k, (pts, _)) in prediction.frames.iter().enumerate() {
        let s = match k {
            0 => "-".to_string(),
            _ => format!("{:.5}", prediction.frame_errors[k - 1]),
        };
        eprintln!("{k:>5}  {pts:>6.3}   {s}");
    }
    eprintln!("heatmap scale: black 0 → yellow {max_err:.4} (per-patch mean squared error)");
    eprintln!(
        "wrote `{}` (rows: actual, predicted, surprise)",
        output.display()
    );
}

/// Black → red → yellow → white.
fn heat_colour(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    let r = (v * 3.0).min(1.0);
    let g = (v * 3.0 - 1.0).clamp(0.0, 1.0);
    let b = (v * 3.0 - 2.0).clamp(0.0, 1.0);
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}
