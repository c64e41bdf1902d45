//! `framegpt generate VIDEO --at S --frames N -o OUT.png|.gif|.mp4`: the model imagines
//! what comes next. The T frames from `--at` on are the context; the model predicts the
//! next frame, that prediction is appended to the window (the oldest frame drops out) and
//! fed back, N times. With `--noise` each prediction gets Gaussian noise before it is fed
//! back, so `--candidates K` gives K different futures (`--seed` makes them repeatable).
//!
//! stdout gets the per-step error table: mean squared error (normalized patch pixels, as
//! `surprise`) of each generated frame against the real frame at that step, and of
//! "copy the last context frame" against the same real frame.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use font8x8::UnicodeFonts;
use ndarray::Array4;

use crate::cli::{GenerateArgs, GlobalArgs};
use crate::decode::{self, DecodeOptions};
use crate::exit::{ExitCode, UsageError};
use crate::model::{Device, Model, ModelContract, SessionOptions};
use crate::patchify::Patchifier;
use crate::sample::{SampleSpec, Sampler};
use crate::write::{self, AtomicFile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputKind {
    Png,
    Gif,
    Mp4,
}

const GAP: usize = 4;
const LABEL_W: usize = 96;
const BG: u8 = 24;

/// `generate`'s arguments, validated.
#[derive(Debug, Clone)]
pub struct GenerateSettings {
    pub video: PathBuf,
    pub at_s: f64,
    pub frames: usize,
    pub output: PathBuf,
    kind: OutputKind,
    pub model_path: PathBuf,
    pub device: Device,
    pub noise: f32,
    pub candidates: usize,
    pub seed: u64,
    pub zoom: usize,
    pub playback_fps: f64,
    pub threads: usize,
    pub quiet: bool,
}

impl GenerateSettings {
    pub fn from_args(args: &GenerateArgs, global: &GlobalArgs) -> Result<Self, UsageError> {
        let ext = args
            .output
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let kind = match ext.as_deref() {
            Some("png") => OutputKind::Png,
            Some("gif") => OutputKind::Gif,
            Some("mp4") => OutputKind::Mp4,
            _ => {
                return Err(UsageError::msg(format!(
                    "`{}`: the output must end in .png, .gif or .mp4",
                    args.output.display()
                )))
            }
        };
        if !(args.noise.is_finite() && args.noise >= 0.0) {
            return Err(UsageError::msg(format!(
                "--noise must be >= 0, got {}",
                args.noise
            )));
        }
        if !(args.playback_fps.is_finite() && args.playback_fps > 0.0) {
            return Err(UsageError::msg("--playback-fps must be positive"));
        }
        Ok(GenerateSettings {
            video: args.video.clone(),
            at_s: args.at.max(0.0),
            frames: args.frames as usize,
            output: args.output.clone(),
            kind,
            model_path: args.model.model_path()?,
            device: args.model.device,
            noise: args.noise,
            candidates: args.candidates as usize,
            seed: args.seed,
            zoom: args.zoom as usize,
            playback_fps: args.playback_fps,
            threads: global.total_threads(),
            quiet: global.quiet,
        })
    }
}

pub fn run(args: &GenerateArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let settings = GenerateSettings::from_args(args, global)?;
    let mut model = Model::load(
        &settings.model_path,
        SessionOptions {
            device: settings.device,
            threads: settings.threads,
        },
    )
    .map_err(UsageError::from)?;
    let c = model.contract().clone();
    let p = Patchifier::new(&c);
    let t = c.context_frames;
    let n = settings.frames;
    let frames = decode_frames(&settings, &c, t + n)?;
    let patches: Vec<Vec<f32>> = frames.iter().map(|(_, rgb)| p.patchify(rgb)).collect();
    let generated = rollout(
        &mut model,
        &p,
        &patches[..t],
        n,
        settings.candidates,
        settings.noise,
        settings.seed,
    )?;
    print_error_table(&frames, &patches, t, &generated)?;

    let generated_rgb: Vec<Vec<Vec<u8>>> = generated
        .iter()
        .map(|r| r.iter().map(|f| p.unpatchify(f)).collect())
        .collect();
    let tiles = Tiles {
        w: c.frame_width as usize,
        h: c.frame_height as usize,
        zoom: settings.zoom,
    };
    write_output(&settings, &tiles, &frames, t, &generated_rgb)?;
    if !settings.quiet {
        eprintln!(
            "wrote `{}`: {t} context frames from {:.3} s, {n} generated frame{}{}",
            settings.output.display(),
            frames[0].0,
            if n == 1 { "" } else { "s" },
            if settings.candidates > 1 {
                format!(" × {} candidates", settings.candidates)
            } else {
                String::new()
            }
        );
        if frames.len() < t + n {
            eprintln!(
                "note: the video has only {} real frame(s) after the context: later steps have no error",
                frames.len() - t
            );
        }
    }
    Ok(ExitCode::Success)
}

/// The context and the real future (up to `count` frames from `--at` on), in one pass.
fn decode_frames(
    settings: &GenerateSettings,
    c: &ModelContract,
    count: usize,
) -> Result<Vec<(f64, Vec<u8>)>> {
    let mut sampler = Sampler::new(SampleSpec {
        start_s: settings.at_s,
        max_frames: Some(count as u64),
        ..Default::default()
    });
    let options = DecodeOptions {
        frame_width: c.frame_width,
        frame_height: c.frame_height,
        threads: settings.threads,
    };
    let mut frames: Vec<(f64, Vec<u8>)> = Vec::new();
    decode::decode_file(
        &settings.video,
        options,
        &mut sampler,
        &AtomicBool::new(false),
        |f| {
            frames.push((f.pts_seconds, f.rgb));
            true
        },
    )
    .with_context(|| format!("failed to decode `{}`", settings.video.display()))?;
    let t = c.context_frames;
    anyhow::ensure!(
        frames.len() >= t,
        "`{}` has {} frames from {} s on, the model needs {t} frames of context; hint: use an earlier --at",
        settings.video.display(),
        frames.len(),
        settings.at_s
    );
    Ok(frames)
}

/// The per-step error table, on stdout (it is the data): each generated frame against the
/// real frame at that step, and the last context frame against the same real frame.
fn print_error_table(
    frames: &[(f64, Vec<u8>)],
    patches: &[Vec<f32>],
    t: usize,
    generated: &[Vec<Vec<f32>>],
) -> Result<()> {
    let real_future = &patches[t..];
    let last_context = &patches[t - 1];
    let frame_dt = if frames.len() >= 2 {
        (frames[frames.len() - 1].0 - frames[0].0) / (frames.len() - 1) as f64
    } else {
        0.0
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "candidate\tstep\ttime_s\tmse_generated\tmse_copy_last\tratio"
    )?;
    for (k, rollout) in generated.iter().enumerate() {
        for (step, frame) in rollout.iter().enumerate() {
            let time = frames
                .get(t + step)
                .map_or(frames[t - 1].0 + (step + 1) as f64 * frame_dt, |f| f.0);
            match real_future.get(step) {
                Some(real) => {
                    let g = mse(frame, real);
                    let copy = mse(last_context, real);
                    writeln!(
                        out,
                        "{}\t{}\t{time:.3}\t{g:.6}\t{copy:.6}\t{:.3}",
                        k + 1,
                        step + 1,
                        g / copy.max(1e-12)
                    )?;
                }
                None => writeln!(out, "{}\t{}\t{time:.3}\t\t\t", k + 1, step + 1)?,
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn write_output(
    settings: &GenerateSettings,
    tiles: &Tiles,
    frames: &[(f64, Vec<u8>)],
    t: usize,
    generated_rgb: &[Vec<Vec<u8>>],
) -> Result<()> {
    let context_rgb: Vec<Vec<u8>> = frames[..t].iter().map(|(_, rgb)| rgb.clone()).collect();
    let real_rgb: Vec<Vec<u8>> = frames[t..].iter().map(|(_, rgb)| rgb.clone()).collect();
    match settings.kind {
        OutputKind::Png => {
            let (w, h, rgb) = tiles.strip(&context_rgb, generated_rgb, &real_rgb);
            write::write_png(&settings.output, w, h, &rgb)
        }
        OutputKind::Gif => {
            let movie = tiles.movie(&context_rgb, &generated_rgb[0], &real_rgb);
            write_gif(&settings.output, &movie, settings.playback_fps)
        }
        OutputKind::Mp4 => {
            let movie = tiles.movie(&context_rgb, &generated_rgb[0], &real_rgb);
            write_mp4(&settings.output, &movie, settings.playback_fps)
        }
    }
}

/// `steps` frames per candidate, each predicted from the T frames before it (the
/// predictions fed back in), all candidates in one batch per step.
fn rollout(
    model: &mut Model,
    p: &Patchifier,
    context: &[Vec<f32>],
    steps: usize,
    candidates: usize,
    noise: f32,
    seed: u64,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let t = context.len();
    let frame_len = p.frame_len();
    let mut windows: Vec<Vec<Vec<f32>>> = vec![context.to_vec(); candidates];
    let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(steps); candidates];
    let mut rngs: Vec<ChaCha8Rng> = (0..candidates)
        .map(|k| ChaCha8Rng::seed_from_u64(seed.wrapping_add(k as u64)))
        .collect();
    for _ in 0..steps {
        let mut input = Vec::with_capacity(candidates * t * frame_len);
        for w in &windows {
            for f in w {
                input.extend_from_slice(f);
            }
        }
        let result = model.run(
            Array4::from_shape_vec((candidates, t, p.num_patches(), p.patch_dim()), input)?.view(),
        )?;
        for k in 0..candidates {
            let pred = result.next_patches.slice(ndarray::s![k, t - 1, .., ..]);
            let mut next: Vec<f32> = pred.iter().copied().collect();
            if noise > 0.0 {
                for v in &mut next {
                    *v += noise * gaussian(&mut rngs[k]);
                }
            }
            out[k].push(next.clone());
            windows[k].remove(0);
            windows[k].push(next);
        }
    }
    Ok(out)
}

/// Standard normal (Box–Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u1 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn mse(a: &[f32], b: &[f32]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y) * f64::from(x - y))
        .sum();
    sum / a.len().max(1) as f64
}

/// Lays model-size RGB frames out on a canvas.
struct Tiles {
    w: usize,
    h: usize,
    zoom: usize,
}

struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![BG; width * height * 3],
        }
    }

    fn blit(&mut self, x0: usize, y0: usize, src: &[u8], w: usize, h: usize, zoom: usize) {
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let s = ((y / zoom) * w + x / zoom) * 3;
                let d = ((y0 + y) * self.width + x0 + x) * 3;
                self.rgb[d..d + 3].copy_from_slice(&src[s..s + 3]);
            }
        }
    }

    /// 8×8 bitmap text (font8x8), `scale` pixels per font pixel; unknown glyphs are skipped.
    fn text(&mut self, x0: usize, y0: usize, text: &str, scale: usize, colour: [u8; 3]) {
        for (i, ch) in text.chars().enumerate() {
            let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
                continue;
            };
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..8 {
                    if bits & (1 << gx) == 0 {
                        continue;
                    }
                    for sy in 0..scale {
                        for sx in 0..scale {
                            let (x, y) = (x0 + (i * 8 + gx) * scale + sx, y0 + gy * scale + sy);
                            if x < self.width && y < self.height {
                                let d = (y * self.width + x) * 3;
                                self.rgb[d..d + 3].copy_from_slice(&colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Tiles {
    fn tile_w(&self) -> usize {
        self.w * self.zoom + GAP
    }

    fn tile_h(&self) -> usize {
        self.h * self.zoom + GAP
    }

    /// Rows: context, one per candidate, real future; a label left of each row and the
    /// step number under each generated tile.
    fn strip(
        &self,
        context: &[Vec<u8>],
        generated: &[Vec<Vec<u8>>],
        real: &[Vec<u8>],
    ) -> (u32, u32, Vec<u8>) {
        let cols = context.len().max(generated[0].len());
        let rows = 1 + generated.len() + usize::from(!real.is_empty());
        let row_h = self.tile_h() + 12;
        let width = even(LABEL_W + cols * self.tile_w() + GAP);
        let height = even(rows * row_h + GAP);
        let mut canvas = Canvas::new(width, height);
        let white = [230, 230, 230];
        let draw_row =
            |canvas: &mut Canvas, row: usize, label: &str, frames: &[Vec<u8>], steps: bool| {
                let y0 = GAP + row * row_h;
                canvas.text(GAP, y0 + self.h * self.zoom / 2 - 4, label, 1, white);
                for (k, f) in frames.iter().enumerate() {
                    let x0 = LABEL_W + k * self.tile_w();
                    canvas.blit(x0, y0, f, self.w, self.h, self.zoom);
                    let caption = if steps {
                        format!("t+{}", k + 1)
                    } else {
                        format!("{}", k as i64 - context.len() as i64 + 1)
                    };
                    canvas.text(
                        x0,
                        y0 + self.h * self.zoom + 2,
                        &caption,
                        1,
                        [160, 160, 160],
                    );
                }
            };
        draw_row(&mut canvas, 0, "context", context, false);
        for (k, g) in generated.iter().enumerate() {
            let label = if generated.len() == 1 {
                "generated".to_string()
            } else {
                format!("gen #{}", k + 1)
            };
            draw_row(&mut canvas, 1 + k, &label, g, true);
        }
        if !real.is_empty() {
            draw_row(&mut canvas, 1 + generated.len(), "real", real, true);
        }
        (width as u32, height as u32, canvas.rgb)
    }

    /// Movie frames: the context (both panes), then each step: generated | real.
    fn movie(&self, context: &[Vec<u8>], generated: &[Vec<u8>], real: &[Vec<u8>]) -> Movie {
        let pane_w = self.w * self.zoom;
        let width = even(2 * pane_w + 3 * GAP);
        let height = even(self.h * self.zoom + 2 * GAP + 12);
        let mut frames = Vec::new();
        let white = [230, 230, 230];
        for (k, f) in context.iter().enumerate() {
            let mut c = Canvas::new(width, height);
            c.blit(GAP, GAP, f, self.w, self.h, self.zoom);
            c.blit(2 * GAP + pane_w, GAP, f, self.w, self.h, self.zoom);
            c.text(
                GAP,
                height - 10,
                &format!("context {}/{}", k + 1, context.len()),
                1,
                white,
            );
            frames.push(c.rgb);
        }
        for (k, g) in generated.iter().enumerate() {
            let mut c = Canvas::new(width, height);
            c.blit(GAP, GAP, g, self.w, self.h, self.zoom);
            if let Some(r) = real.get(k) {
                c.blit(2 * GAP + pane_w, GAP, r, self.w, self.h, self.zoom);
            }
            c.text(
                GAP,
                height - 10,
                &format!("generated t+{}", k + 1),
                1,
                white,
            );
            c.text(2 * GAP + pane_w, height - 10, "real", 1, white);
            frames.push(c.rgb);
        }
        Movie {
            width,
            height,
            frames,
        }
    }
}

struct Movie {
    width: usize,
    height: usize,
    frames: Vec<Vec<u8>>,
}

fn even(v: usize) -> usize {
    v + v % 2
}

fn write_gif(path: &Path, movie: &Movie, fps: f64) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    {
        let mut encoder = gif::Encoder::new(
            BufWriter::new(file.file()),
            movie.width as u16,
            movie.height as u16,
            &[],
        )?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        let delay = (100.0 / fps).round().clamp(2.0, 65535.0) as u16;
        for rgb in &movie.frames {
            let mut frame =
                gif::Frame::from_rgb_speed(movie.width as u16, movie.height as u16, rgb, 10);
            frame.delay = delay;
            encoder.write_frame(&frame)?;
        }
    }
    file.commit()
}

/// MP4 through the `ffmpeg` program (H.264, yuv420p), written to a temporary name in the
/// output's folder and renamed when ffmpeg succeeded.
fn write_mp4(path: &Path, movie: &Movie, fps: f64) -> Result<()> {
    let file = AtomicFile::create(path)?;
    let mut child = Command::new("ffmpeg")
        .args(["-y", "-nostdin", "-loglevel", "error"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{}x{}", movie.width, movie.height)])
        .args(["-r", &format!("{fps}"), "-i", "-"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-threads", "1", "-f", "mp4"])
        .arg(file.temp_path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `ffmpeg` to write the .mp4\nhint: install ffmpeg (Debian: apt-get install ffmpeg), or write a .gif")?;
    {
        let mut stdin = child.stdin.take().expect("piped");
        for rgb in &movie.frames {
            stdin.write_all(rgb)?;
        }
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "ffmpeg failed to write `{}`: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_noise_has_unit_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let xs: Vec<f64> = (0..20_000).map(|_| f64::from(gaussian(&mut rng))).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn text_draws_inside_the_canvas_only() {
        let mut c = Canvas::new(20, 10);
        c.text(14, 4, "A", 1, [255, 0, 0]);
        assert!(c.rgb.chunks(3).any(|p| p == [255, 0, 0]));
        assert_eq!(c.rgb.len(), 20 * 10 * 3);
    }
}
