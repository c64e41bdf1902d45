//! Per-window features of the source files, for training: every source is cut into the
//! same windows as `analyze`/`predict` cut it ([`Windower`]: T frames, stride T/2, each
//! frame owned by one window position), and the backbone's output for *every* position
//! of every window is kept, [windows, T, D]. A frame's features are then read from its
//! own window, also those of the frame `lag` steps earlier, exactly as the exported graph
//! computes them inside one window; so the trained head and the exported file agree.
//!
//! What is kept per window:
//! - frozen backbone: `embeddings` (ONNX Runtime, the file's own graph);
//! - `--unfreeze N`: the input of the first trainable temporal block (the Rust backbone,
//!   [`Backbone::temporal_input`]); the trainable part runs on it at every step.
//!
//! Cache: one safetensors file per (file content, model, sampling settings, what is kept),
//! `<cache>/<key>.safetensors`, written atomically. The key hashes the file's content (not
//! size + mtime + path): one read of each file, far cheaper than decoding it, and the
//! cache stays valid across copies, renames and `touch`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use ndarray::{Array3, Array4};
use rayon::prelude::*;

use super::backbone::{self, Backbone};
use super::features::SourceFeatures;
use crate::decode::{self, DecodeOptions};
use crate::digest;
use crate::model::{Model, ModelContract};
use crate::patchify::Patchifier;
use crate::sample::{SampleSpec, Sampler};
use crate::score::{FrameMeta, Window, Windower};

/// Bumped when the cached layout or meaning changes.
// v2: frames are turned as the display matrix says (rotated phone video), so v1 entries
// of rotated files hold unturned features.
const CACHE_VERSION: &str = "framegpt-windows-v2";
/// Windows per backbone call.
const BATCH_WINDOWS: usize = 8;

/// The windows of one source file and where each sampled frame is owned.
#[derive(Debug, Clone)]
pub struct SourceWindows {
    /// Per sampled frame, in presentation order.
    pub times_s: Vec<f64>,
    /// Per sampled frame: the window that owns it and its position there.
    pub window: Vec<u32>,
    pub position: Vec<u32>,
    /// [windows, T, D].
    pub x: Array3<f32>,
    /// Set when decoding stopped early (the frames before it are kept).
    pub warning: Option<String>,
}

impl SourceWindows {
    /// Single frames as windows of length 1 (the raw-pixel baseline).
    pub fn from_frames(f: SourceFeatures) -> SourceWindows {
        let n = f.x.nrows();
        let d = f.x.ncols();
        SourceWindows {
            times_s: f.times_s,
            window: (0..n as u32).collect(),
            position: vec![0; n],
            x: f.x.into_shape_with_order((n, 1, d)).expect("same size"),
            warning: None,
        }
    }

    pub fn frames(&self) -> usize {
        self.times_s.len()
    }
}

/// What runs on the windows.
pub enum Extractor<'a> {
    /// An ONNX model; keeps its `embeddings` or (self-check) its `logits`.
    Ort { model: &'a mut Model, logits: bool },
    /// The Rust backbone up to temporal block `first`.
    Candle {
        backbone: &'a Backbone,
        first: usize,
    },
}

impl Extractor<'_> {
    fn run(&mut self, input: Vec<f32>, shape: (usize, usize, usize, usize)) -> Result<Array3<f32>> {
        match self {
            Extractor::Ort { model, logits } => {
                let input =
                    Array4::from_shape_vec(shape, input).expect("windows have T·N·C values");
                let out = model.run(input.view())?;
                if *logits {
                    out.logits.context("the model returned no logits")
                } else {
                    Ok(out.embeddings)
                }
            }
            Extractor::Candle { backbone, first } => {
                let x = Tensor::from_vec(input, shape, &Device::Cpu)?;
                let h = backbone.temporal_input(&x, *first)?;
                let (b, t, d) = h.dims3()?;
                Ok(Array3::from_shape_vec((b, t, d), backbone::to_vec(&h)?)?)
            }
        }
    }

    /// Cache tag of what is kept.
    fn what(&self) -> String {
        match self {
            Extractor::Ort { logits: false, .. } => "onnxruntime embeddings".into(),
            Extractor::Ort { logits: true, .. } => "onnxruntime logits".into(),
            Extractor::Candle { first, .. } => format!("candle temporal.{first} input"),
        }
    }
}

/// How the sources are windowed.
pub struct WindowJob<'a> {
    pub model_sha256: &'a str,
    pub contract: &'a ModelContract,
    pub sample: &'a SampleSpec,
    pub window_stride: usize,
    /// `None`: no cache.
    pub cache_dir: Option<&'a Path>,
    pub ffmpeg_threads: usize,
    pub progress: bool,
}

/// What extraction did.
#[derive(Debug, Default)]
pub struct Extracted {
    pub sources: BTreeMap<PathBuf, Result<SourceWindows, String>>,
    pub cache_hits: usize,
    pub decoded: usize,
}

fn cache_key(file_sha: &str, job: &WindowJob<'_>, what: &str) -> String {
    let s = job.sample;
    let settings = format!(
        "{CACHE_VERSION}\nfile {file_sha}\nmodel {}\n{what}\nevery {} fps {:?} max_frames {:?} start {} end {:?} keyframes {} stride {}",
        job.model_sha256,
        s.every,
        s.target_fps,
        s.max_frames,
        s.start_s,
        s.end_s,
        s.keyframes_only,
        job.window_stride
    );
    digest::sha256_hex(settings.as_bytes())[..32].to_string()
}

/// The windows of every source, from the cache where present, the rest decoded (one
/// file at a time; the backbone uses the cores).
pub fn extract(
    sources: &[PathBuf],
    extractor: &mut Extractor<'_>,
    job: &WindowJob<'_>,
    cancel: &AtomicBool,
) -> Result<Extracted> {
    let what = extractor.what();
    let hashed: Vec<(PathBuf, std::io::Result<String>)> = sources
        .par_iter()
        .map(|p| (p.clone(), digest::sha256_file(p)))
        .collect();
    let mut out = Extracted::default();
    let bar = if job.progress {
        indicatif::ProgressBar::new(sources.len() as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "features {bar:30} {pos}/{len} files {elapsed}",
            )
            .expect("valid template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Some(dir) = job.cache_dir {
        fs_err::create_dir_all(dir)
            .with_context(|| format!("failed to create the feature cache `{}`", dir.display()))?;
    }
    for (path, sha) in hashed {
        bar.inc(1);
        let sha = match sha {
            Ok(s) => s,
            Err(e) => {
                out.sources.insert(path, Err(format!("cannot read: {e}")));
                continue;
            }
        };
        let cached = job
            .cache_dir
            .map(|d| d.join(format!("{}.safetensors", cache_key(&sha, job, &what))));
        if let Some(c) = cached.as_ref().filter(|c| c.is_file()) {
            match read_cached(c) {
                Ok(w) => {
                    out.cache_hits += 1;
                    out.sources.insert(path, Ok(w));
                    continue;
                }
                Err(e) => tracing::warn!("ignoring a broken cache entry `{}`: {e:#}", c.display()),
            }
        }
        anyhow::ensure!(
            !cancel.load(std::sync::atomic::Ordering::Relaxed),
            "interrupted"
        );
        let result = windows_of_file(&path, extractor, job, cancel)?;
        if result.is_ok() {
            out.decoded += 1;
        }
        if let (Some(c), Ok(w)) = (&cached, &result) {
            if w.warning.is_none() {
                write_cached(c, w).with_context(|| format!("failed to write `{}`", c.display()))?;
            }
        }
        out.sources.insert(path, result);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Decodes one file and runs the extractor on its windows. `Err(..)` of the outer result
/// is a model failure (stops the run); the inner one a file that gave no frame.
pub fn windows_of_file(
    path: &Path,
    extractor: &mut Extractor<'_>,
    job: &WindowJob<'_>,
    cancel: &AtomicBool,
) -> Result<std::result::Result<SourceWindows, String>> {
    let contract = job.contract;
    let t = contract.context_frames;
    let patchifier = Patchifier::new(contract);
    let (n, c) = (patchifier.num_patches(), patchifier.patch_dim());
    let stride = job.window_stride.clamp(1, t);
    let mut windower = Windower::new(t, stride, patchifier.frame_len());
    let mut sampler = Sampler::new(job.sample.clone());
    let mut acc = Accumulator::default();
    let mut failure: Option<anyhow::Error> = None;
    let mut pending: Vec<Window> = Vec::new();
    let mut position = 0u64;
    let options = DecodeOptions {
        frame_width: contract.frame_width,
        frame_height: contract.frame_height,
        threads: job.ffmpeg_threads,
    };
    let mut flush = |pending: &mut Vec<Window>, acc: &mut Accumulator| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let b = pending.len();
        let mut input = Vec::with_capacity(b * t * n * c);
        for w in pending.iter() {
            input.extend_from_slice(&w.input);
        }
        let out = extractor.run(input, (b, t, n, c))?;
        for (i, w) in pending.drain(..).enumerate() {
            acc.push(&w, out.index_axis(ndarray::Axis(0), i));
        }
        Ok(())
    };
    let summary = decode::decode_file(path, options, &mut sampler, cancel, |frame| {
        let meta = FrameMeta {
            position,
            index: frame.index,
            pts_seconds: frame.pts_seconds,
        };
        position += 1;
        pending.extend(windower.push(meta, patchifier.patchify(&frame.rgb)));
        if pending.len() >= BATCH_WINDOWS {
            if let Err(e) = flush(&mut pending, &mut acc) {
                failure = Some(e);
                return false;
            }
        }
        true
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let summary = match summary {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.to_string())),
    };
    pending.extend(windower.finish());
    while !pending.is_empty() {
        let mut chunk: Vec<Window> = pending.drain(..pending.len().min(BATCH_WINDOWS)).collect();
        flush(&mut chunk, &mut acc)?;
    }
    if acc.times_s.is_empty() {
        return Ok(Err(summary.error.map_or_else(
            || "no frames decoded".to_string(),
            |e| e.to_string(),
        )));
    }
    let warning = summary.error.map(|e| e.to_string());
    let d = acc.d;
    let w = acc.windows;
    Ok(Ok(SourceWindows {
        times_s: acc.times_s,
        window: acc.window,
        position: acc.position,
        x: Array3::from_shape_vec((w, t, d), acc.x).expect("[W, T, D]"),
        warning,
    }))
}

#[derive(Default)]
struct Accumulator {
    times_s: Vec<f64>,
    window: Vec<u32>,
    position: Vec<u32>,
    x: Vec<f32>,
    windows: usize,
    d: usize,
}

impl Accumulator {
    fn push(&mut self, w: &Window, out: ndarray::ArrayView2<'_, f32>) {
        self.d = out.ncols();
        self.x.extend(out.iter());
        for st in &w.steps {
            debug_assert_eq!(st.frame.position as usize, self.times_s.len());
            self.times_s.push(st.frame.pts_seconds);
            self.window.push(self.windows as u32);
            self.position.push(st.position as u32);
        }
        self.windows += 1;
    }
}

fn write_cached(path: &Path, w: &SourceWindows) -> Result<()> {
    let dev = Device::Cpu;
    let (nw, t, d) = w.x.dim();
    let x = Tensor::from_slice(w.x.as_slice().expect("standard layout"), (nw, t, d), &dev)?;
    let tensors = HashMap::from([
        ("x".to_string(), x),
        (
            "times_s".to_string(),
            Tensor::from_slice(&w.times_s, w.frames(), &dev)?,
        ),
        (
            "window".to_string(),
            Tensor::from_slice(&w.window, w.frames(), &dev)?,
        ),
        (
            "position".to_string(),
            Tensor::from_slice(&w.position, w.frames(), &dev)?,
        ),
    ]);
    let tmp = path.with_extension("tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

fn read_cached(path: &Path) -> Result<SourceWindows> {
    let mut t = candle_core::safetensors::load(path, &Device::Cpu)?;
    let mut take = |name: &str| {
        t.remove(name)
            .with_context(|| format!("no tensor `{name}`"))
    };
    let x = take("x")?;
    let (nw, tt, d) = x.dims3()?;
    let x = Array3::from_shape_vec((nw, tt, d), x.flatten_all()?.to_vec1::<f32>()?)?;
    let times_s = take("times_s")?.to_vec1::<f64>()?;
    let window = take("window")?.to_vec1::<u32>()?;
    let position = take("position")?.to_vec1::<u32>()?;
    anyhow::ensure!(
        window.len() == times_s.len() && position.len() == times_s.len(),
        "inconsistent lengths"
    );
    anyhow::ensure!(
        window.iter().all(|&w| (w as usize) < nw) && position.iter().all(|&p| (p as usize) < tt),
        "frame index out of range"
    );
    Ok(SourceWindows {
        times_s,
        window,
        position,
        x,
        warning: None,
    })
}

/// The frames of `w` in [start_s, end_s), with the first `skip` left out, but never more
/// than half of them: a clip of 1 frame keeps it, of 2 or 3 keeps 1 or 2 (its frames'
/// features come from windows whose earlier positions are the frames before, or, at the
/// start of a file, the first frame's own context only).
pub fn clip_frames(
    w: &SourceWindows,
    start_s: Option<f64>,
    end_s: Option<f64>,
    skip: usize,
) -> Vec<usize> {
    let (s, e) = (start_s.unwrap_or(0.0), end_s.unwrap_or(f64::INFINITY));
    let inside: Vec<usize> = w
        .times_s
        .iter()
        .enumerate()
        .filter(|(_, &t)| t >= s - 1e-9 && t < e - 1e-9)
        .map(|(i, _)| i)
        .collect();
    let skip = skip.min(inside.len() / 2);
    inside[skip..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(n: usize) -> SourceWindows {
        SourceWindows {
            times_s: (0..n).map(|i| i as f64 * 0.5).collect(),
            window: vec![0; n],
            position: (0..n as u32).collect(),
            x: Array3::zeros((1, n.max(1), 1)),
            warning: None,
        }
    }

    #[test]
    fn short_clips_keep_at_least_half_their_frames() {
        for (n, skip, want) in [
            (1, 4, 1),
            (2, 4, 1),
            (3, 4, 2),
            (8, 4, 4),
            (20, 4, 16),
            (5, 0, 5),
        ] {
            assert_eq!(
                clip_frames(&windows(n), None, None, skip).len(),
                want,
                "{n} {skip}"
            );
        }
        let w = windows(10);
        assert_eq!(clip_frames(&w, Some(1.0), Some(3.0), 0), vec![2, 3, 4, 5]);
        assert_eq!(clip_frames(&w, Some(1.0), Some(3.0), 1), vec![3, 4, 5]);
        assert_eq!(clip_frames(&w, Some(1.0), Some(3.0), 4), vec![4, 5]);
        assert!(clip_frames(&w, Some(10.0), None, 0).is_empty());
    }

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.safetensors");
        let w = SourceWindows {
            times_s: vec![0.0, 0.04, 0.08],
            window: vec![0, 0, 1],
            position: vec![0, 1, 1],
            x: Array3::from_shape_fn((2, 2, 3), |(a, b, c)| (a * 6 + b * 3 + c) as f32),
            warning: None,
        };
        write_cached(&p, &w).unwrap();
        let r = read_cached(&p).unwrap();
        assert_eq!(
            (r.times_s, r.window, r.position, r.x),
            (w.times_s, w.window, w.position, w.x)
        );
    }
}
