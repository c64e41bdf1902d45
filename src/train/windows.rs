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
//!
//! Memory: the windows of a source stay in memory only while the sources held so far fit
//! the job's budget (`--memory-mb`); the others are read from their cache file when a
//! split's inputs are built ([`Matrix`]), so a training set of hours of footage is not
//! held whole.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use ndarray::{Array3, Array4};

use super::store::Matrix;
use rayon::prelude::*;

use super::backbone::{self, Backbone};
use super::features::SourceFeatures;
use super::motion::{self, MotionSpec};
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
/// Cache tag of the camera-motion features; bumped when `train::motion` changes.
const MOTION_VERSION: &str = "motion-v4";
/// Windows per backbone call.
const BATCH_WINDOWS: usize = 8;

/// The windows of one source file and where each sampled frame is owned.
#[derive(Debug)]
pub struct SourceWindows {
    /// Per sampled frame, in presentation order.
    pub times_s: Vec<f64>,
    /// Per sampled frame: the window that owns it and its position there.
    pub window: Vec<u32>,
    pub position: Vec<u32>,
    /// [windows, T·D]: per window the T positions' D values.
    pub x: Matrix,
    pub t: usize,
    pub d: usize,
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
            x: Matrix::in_memory(n, d, f.x.into_raw_vec_and_offset().0),
            t: 1,
            d,
            warning: None,
        }
    }

    /// Windows, T, D.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.x.rows(), self.t, self.d)
    }

    /// The windows `idx` [idx.len(), T, D], in that order.
    pub fn windows(&self, idx: &[usize]) -> Result<Array3<f32>> {
        let v = self.x.gather(idx)?;
        Ok(Array3::from_shape_vec((idx.len(), self.t, self.d), v).expect("[n, T, D]"))
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
    /// Windows of more sources than fit this many bytes are left in their cache files.
    pub memory_bytes: usize,
    /// Append the camera-motion features of each position (`train::motion`) to what
    /// the extractor gives.
    pub motion: Option<MotionSpec>,
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
    let what = match job.motion {
        Some(_) => format!("{} + {}", extractor.what(), MOTION_VERSION),
        None => extractor.what(),
    };
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
    let mut held = 0usize;
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
            match read_cached(c, job.memory_bytes.saturating_sub(held)) {
                Ok(w) => {
                    held += w.x.resident_bytes();
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
        let mut result = windows_of_file(&path, extractor, job, cancel)?;
        if result.is_ok() {
            out.decoded += 1;
        }
        if let (Some(c), Ok(w)) = (&cached, &mut result) {
            if w.warning.is_none() {
                write_cached(c, w).with_context(|| format!("failed to write `{}`", c.display()))?;
                if held + w.x.resident_bytes() > job.memory_bytes {
                    // Over the budget: from now on read from the file just written.
                    *w = read_cached(c, 0)
                        .with_context(|| format!("failed to read back `{}`", c.display()))?;
                }
            }
        }
        if let Ok(w) = &result {
            held += w.x.resident_bytes();
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
        let motion = job
            .motion
            .as_ref()
            .map(|spec| motion::features(spec, &input, b, t));
        let out = extractor.run(input, (b, t, n, c))?;
        let out = match motion {
            Some(m) => with_motion(out, m),
            None => out,
        };
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
        x: Matrix::in_memory(w, t * d, acc.x),
        t,
        d,
        warning,
    }))
}

/// `out` [b, t, d] with the motion features `m` ([b, t, FEATURES], `motion::features`)
/// appended: [b, t, d + FEATURES].
fn with_motion(out: Array3<f32>, m: Vec<f32>) -> Array3<f32> {
    let (b, t, d) = out.dim();
    let m = Array3::from_shape_vec((b, t, motion::FEATURES), m).expect("[b, t, FEATURES]");
    let both = ndarray::concatenate(ndarray::Axis(2), &[out.view(), m.view()]).expect("same b, t");
    debug_assert_eq!(both.dim(), (b, t, d + motion::FEATURES));
    both
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
    let (nw, t, d) = w.dims();
    let values =
        w.x.as_slice()
            .context("only windows in memory are written to the cache")?;
    let x = Tensor::from_slice(values, (nw, t, d), &dev)?;
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

/// One tensor's place in a safetensors file.
#[derive(serde::Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

/// Reads a cache entry; its windows into memory when they take at most `memory_bytes`,
/// else they stay in the file and are read when used.
fn read_cached(path: &Path, memory_bytes: usize) -> Result<SourceWindows> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n)?;
    let n = u64::from_le_bytes(n);
    anyhow::ensure!(n <= len.saturating_sub(8), "header length {n} past the end");
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)?;
    let mut infos: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)?;
    infos.remove("__metadata__");
    let base = 8 + n;
    let info = |name: &str, dtype: &str, size: usize| -> Result<(u64, Vec<usize>)> {
        let v = infos
            .get(name)
            .with_context(|| format!("no tensor `{name}`"))?;
        let i: TensorInfo = serde_json::from_value(v.clone())?;
        let (a, b) = i.data_offsets;
        let count: usize = i.shape.iter().product();
        anyhow::ensure!(
            i.dtype == dtype && b >= a && b - a == (count * size) as u64 && base + b <= len,
            "tensor `{name}`: unexpected {} {:?} at {a}..{b}",
            i.dtype,
            i.shape
        );
        Ok((base + a, i.shape))
    };
    let small = |name: &str, dtype: &str, size: usize| -> Result<Vec<u8>> {
        let (at, shape) = info(name, dtype, size)?;
        let mut buf = vec![0u8; shape.iter().product::<usize>() * size];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, at)?;
        Ok(buf)
    };
    let times_s: Vec<f64> = small("times_s", "F64", 8)?
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    let u32s = |b: Vec<u8>| -> Vec<u32> {
        b.chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect()
    };
    let window = u32s(small("window", "U32", 4)?);
    let position = u32s(small("position", "U32", 4)?);
    let (at, shape) = info("x", "F32", 4)?;
    let [nw, tt, d] = shape[..] else {
        anyhow::bail!("tensor `x` has shape {shape:?}, not [windows, T, D]");
    };
    anyhow::ensure!(
        window.len() == times_s.len() && position.len() == times_s.len(),
        "inconsistent lengths"
    );
    anyhow::ensure!(
        window.iter().all(|&w| (w as usize) < nw) && position.iter().all(|&p| (p as usize) < tt),
        "frame index out of range"
    );
    let on_disk = Matrix::in_file(path, at, nw, tt * d);
    let x = if nw * tt * d * 4 <= memory_bytes {
        let all: Vec<usize> = (0..nw).collect();
        Matrix::in_memory(nw, tt * d, on_disk.gather(&all)?)
    } else {
        on_disk
    };
    Ok(SourceWindows {
        times_s,
        window,
        position,
        x,
        t: tt,
        d,
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
            x: Matrix::in_memory(1, n.max(1), vec![0.0; n.max(1)]),
            t: n.max(1),
            d: 1,
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
            x: Matrix::in_memory(2, 6, (0..12).map(|v| v as f32).collect()),
            t: 2,
            d: 3,
            warning: None,
        };
        write_cached(&p, &w).unwrap();
        let all = w.windows(&[0, 1]).unwrap();
        // In memory (budget large enough) and left in the file (budget 0): the same.
        for budget in [usize::MAX, 0] {
            let r = read_cached(&p, budget).unwrap();
            assert_eq!(r.x.resident_bytes(), if budget == 0 { 0 } else { 48 });
            assert_eq!(r.dims(), (2, 2, 3));
            assert_eq!(r.windows(&[0, 1]).unwrap(), all);
            assert_eq!(r.windows(&[1]).unwrap()[[0, 1, 2]], 11.0);
            assert_eq!(
                (&r.times_s, &r.window, &r.position),
                (&w.times_s, &w.window, &w.position)
            );
        }
        // A truncated entry is an error, not garbage.
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        assert!(read_cached(&p, 0).is_err());
    }
}
