//! `framegpt adapt`: the next-frame objective continued on one camera's footage.
//!
//! ```text
//! segments ─▶ stream windows (decode, patchify, repeats dropped; T frames, stride S) ─▶
//!   frozen part of the backbone (patch tokens, frame tokens, first temporal blocks) ─▶
//!   trainable part (last `unfreeze` temporal blocks, then the predictor) ─▶
//!   MSE of next_patches[t] against patches[t+1] (what `analyze` reports as surprise)
//! ```
//!
//! Nothing is cached between passes: every pass decodes its segments again, so memory is
//! a few windows and the shuffle buffer however long the footage is.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use candle_core::{Device, Module, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::backbone::{self, Backbone, Block, Predictor};
use crate::decode::{self, DecodeOptions};
use crate::model::ModelContract;
use crate::patchify::Patchifier;
use crate::sample::{SampleSpec, Sampler};
use crate::score::{self, RepeatFilter};

/// A stretch of footage: a file, or the time range [start_s, end_s) of one, optionally
/// limited to its sampled frames [first, last) (the held-out tail of a single file).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub path: PathBuf,
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub frames: Option<(u64, u64)>,
    /// Where it was declared, for messages.
    pub origin: String,
}

/// T distinct consecutive frames ([t, N, C] values, t = T unless the segment is shorter).
#[derive(Debug, Clone)]
pub struct TrainWindow {
    pub patches: Vec<f32>,
    pub frames: usize,
    /// The frozen part's output for it (patch tokens [t·N·d], temporal input [t·d]),
    /// once computed: windows kept in memory between epochs do not recompute it.
    pub frozen: Option<(Vec<f32>, Vec<f32>)>,
}

impl TrainWindow {
    /// Bytes it holds (for the memory budget), with its frozen part.
    pub fn bytes(frames: usize, n: usize, c: usize, d: usize) -> usize {
        4 * frames * (n * c + n * d + d)
    }
}

/// How segments are cut into windows.
pub struct WindowSpec<'a> {
    pub contract: &'a ModelContract,
    pub sample: &'a SampleSpec,
    /// Distinct frames between window starts (more than T leaves frames out: evaluation
    /// of long footage).
    pub stride: usize,
    pub ffmpeg_threads: usize,
}

/// What one pass over a segment saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Streamed {
    /// Distinct sampled frames (repeats of the previous picture left out).
    pub frames: u64,
    pub windows: u64,
    pub duration_s: f64,
}

/// Decodes `seg` and calls `sink` with each of its windows. The outer error stops the run
/// (the sink failed, or Ctrl-C); the inner one is a file that could not be read at all.
/// A decode error after some frames is logged and the frames before it are used.
pub fn stream_windows(
    seg: &Segment,
    spec: &WindowSpec<'_>,
    cancel: &AtomicBool,
    mut sink: impl FnMut(TrainWindow) -> Result<()>,
) -> Result<std::result::Result<Streamed, String>> {
    let t = spec.contract.context_frames;
    let stride = spec.stride.max(1);
    let mut buffer: VecDeque<Vec<f32>> = VecDeque::with_capacity(t + 1);
    let mut out = Streamed::default();
    let mut used = 0u64;
    let summary = distinct_frames(seg, spec, cancel, |patches, _| {
        used += 1;
        buffer.push_back(patches);
        if buffer.len() > t {
            buffer.pop_front();
        }
        if buffer.len() == t && (used - t as u64).is_multiple_of(stride as u64) {
            out.windows += 1;
            sink(window_of(&buffer))?;
        }
        Ok(())
    })?;
    let summary = match summary {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    if used >= 2 && (used as usize) < t {
        out.windows += 1;
        sink(window_of(&buffer))?;
    }
    out.frames = used;
    out.duration_s = summary.end_seconds - seg.start_s.unwrap_or(0.0);
    Ok(Ok(out))
}

/// Decodes `seg` (its time range, then its frame range among the distinct pictures) and
/// calls `sink` with the patches of each distinct sampled picture (repeats of the previous
/// one left out, as `analyze` does). The outer error stops the run (the sink failed, or
/// Ctrl-C); the inner one is a file that could not be read at all. A decode error after
/// some frames is logged and the frames before it are used.
fn distinct_frames(
    seg: &Segment,
    spec: &WindowSpec<'_>,
    cancel: &AtomicBool,
    mut sink: impl FnMut(Vec<f32>, &decode::DecodedFrame) -> Result<()>,
) -> Result<std::result::Result<decode::DecodeSummary, String>> {
    let contract = spec.contract;
    let patchifier = Patchifier::new(contract);
    let mut sample = spec.sample.clone();
    sample.start_s = seg.start_s.unwrap_or(0.0);
    sample.end_s = seg.end_s;
    let mut sampler = Sampler::new(sample);
    let mut repeats = RepeatFilter::new(
        contract.patch_dim(),
        contract.std,
        score::REPEAT_PATCH_MAD_LEVELS,
    );
    let (first, last) = seg.frames.unwrap_or((0, u64::MAX));
    let mut failure: Option<anyhow::Error> = None;
    let options = DecodeOptions {
        frame_width: contract.frame_width,
        frame_height: contract.frame_height,
        threads: spec.ffmpeg_threads,
    };
    let mut position = 0u64;
    let summary = decode::decode_file(&seg.path, options, &mut sampler, cancel, |frame| {
        let patches = patchifier.patchify(&frame.rgb);
        if repeats.is_repeat(&patches) {
            return true;
        }
        position += 1;
        if position - 1 < first {
            return true;
        }
        if position > last {
            return false;
        }
        if let Err(e) = sink(patches, &frame) {
            failure = Some(e);
            return false;
        }
        true
    });
    if let Some(e) = failure {
        return Err(e);
    }
    anyhow::ensure!(
        !cancel.load(std::sync::atomic::Ordering::Relaxed),
        "interrupted"
    );
    let summary = match summary {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if let Some(e) = &summary.error {
        tracing::warn!(
            "`{}`: {e}; the frames decoded before it are used",
            seg.path.display()
        );
    }
    Ok(Ok(summary))
}

fn window_of(buffer: &VecDeque<Vec<f32>>) -> TrainWindow {
    TrainWindow {
        patches: buffer.iter().flatten().copied().collect(),
        frames: buffer.len(),
        frozen: None,
    }
}

/// What is trained: the last `unfreeze` temporal blocks and the predictor.
pub struct Adapter<'a> {
    pub backbone: &'a Backbone,
    pub unfreeze: usize,
    blocks: Vec<Block>,
    predictor: Predictor,
    /// Names without the model's prefix (`temporal.1.ln1.weight`, `head.bias`, …).
    vars: Vec<(String, Var)>,
    n: usize,
    c: usize,
}

/// Mean losses of a pass: the model's next-frame MSE and that of "copy the last frame".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PassLoss {
    pub model: f64,
    pub copy_last: f64,
    /// Predicted frames the means are over.
    pub frames: u64,
}

impl PassLoss {
    /// The model's loss over copy-last's.
    pub fn ratio(&self) -> f64 {
        self.model / self.copy_last.max(1e-12)
    }
}

/// Running sums behind a [`PassLoss`].
#[derive(Debug, Default)]
pub struct LossSum {
    model: f64,
    copy_last: f64,
    frames: u64,
}

impl LossSum {
    pub fn mean(&self) -> PassLoss {
        let n = self.frames.max(1) as f64;
        PassLoss {
            model: self.model / n,
            copy_last: self.copy_last / n,
            frames: self.frames,
        }
    }
}

impl<'a> Adapter<'a> {
    pub fn new(backbone: &'a Backbone, unfreeze: usize, contract: &ModelContract) -> Result<Self> {
        let first = backbone.temporal.len() - unfreeze;
        let mut vars = Vec::new();
        let mut blocks = Vec::new();
        for (i, blk) in backbone.temporal.iter().enumerate().skip(first) {
            let (b, v) = blk.to_vars()?;
            blocks.push(b);
            vars.extend(v.into_iter().map(|(n, v)| (format!("temporal.{i}.{n}"), v)));
        }
        let (predictor, v) = backbone.predictor.to_vars()?;
        vars.extend(v);
        Ok(Adapter {
            backbone,
            unfreeze,
            blocks,
            predictor,
            vars,
            n: contract.num_patches(),
            c: contract.patch_dim(),
        })
    }

    pub fn vars(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Number of trained values.
    pub fn parameter_count(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The windows (all of `t` frames) as one tensor [B, t, N, C].
    pub fn batch(&self, windows: &[TrainWindow]) -> Result<Tensor> {
        let t = windows[0].frames;
        let data: Vec<f32> = windows
            .iter()
            .flat_map(|w| w.patches.iter().copied())
            .collect();
        Ok(Tensor::from_vec(
            data,
            (windows.len(), t, self.n, self.c),
            &Device::Cpu,
        )?)
    }

    /// The patches [B, t, N, C] and the frozen part's output (patch tokens [B·t, N, d],
    /// temporal input [B, t, d]) of `windows`; computed where not stored, and stored in
    /// the windows when `keep`.
    pub fn prepared(
        &self,
        windows: &mut [TrainWindow],
        keep: bool,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let patches = self.batch(windows)?;
        let (b, t, d) = (windows.len(), windows[0].frames, self.backbone.d);
        if windows.iter().all(|w| w.frozen.is_some()) {
            let (mut x, mut h) = (Vec::new(), Vec::new());
            for w in windows.iter() {
                let f = w.frozen.as_ref().expect("checked");
                x.extend_from_slice(&f.0);
                h.extend_from_slice(&f.1);
            }
            let x = Tensor::from_vec(x, (b * t, self.n, d), &Device::Cpu)?;
            let h = Tensor::from_vec(h, (b, t, d), &Device::Cpu)?;
            return Ok((patches, x, h));
        }
        let first = self.backbone.temporal.len() - self.unfreeze;
        let (x, h) = self.backbone.frozen_part(&patches, first)?;
        if keep {
            let (xv, hv) = (backbone::to_vec(&x)?, backbone::to_vec(&h)?);
            let (xs, hs) = (t * self.n * d, t * d);
            for (i, w) in windows.iter_mut().enumerate() {
                w.frozen = Some((
                    xv[i * xs..(i + 1) * xs].to_vec(),
                    hv[i * hs..(i + 1) * hs].to_vec(),
                ));
            }
        }
        Ok((patches, x, h))
    }

    /// Mean squared error of the predictions of frames 1..t from the frames before them
    /// (the graph's `next_patches` at steps 0..t−1), and of copying frame t−1 instead.
    pub fn losses(&self, patches: &Tensor, x: &Tensor, h: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, t, _, _) = patches.dims4()?;
        let next = self.next_from(patches, x, h)?;
        let target = patches.narrow(1, 1, t - 1)?;
        let model = (next.narrow(1, 0, t - 1)? - &target)?.sqr()?.mean_all()?;
        let copy = (patches.narrow(1, 0, t - 1)? - &target)?
            .sqr()?
            .mean_all()?;
        Ok((model, copy))
    }

    /// The adapted network's `next_patches` [B, T, N, C].
    pub fn next_patches(&self, patches: &Tensor) -> Result<Tensor> {
        let first = self.backbone.temporal.len() - self.unfreeze;
        let (x, h) = self.backbone.frozen_part(patches, first)?;
        self.next_from(patches, &x, &h)
    }

    /// `next_patches` from the frozen part's output.
    fn next_from(&self, patches: &Tensor, x: &Tensor, h: &Tensor) -> Result<Tensor> {
        let (_, t, _, _) = patches.dims4()?;
        let mask = Backbone::causal_mask(t)?;
        let mut h = h.clone();
        for blk in &self.blocks {
            h = blk.forward(&h, Some(&mask))?;
        }
        let emb = self.backbone.emb_ln.forward(&h)?;
        Ok(self.predictor.forward(patches, x, &emb)?)
    }

    /// Adds a batch's losses (no gradient) to `sum`.
    pub fn accumulate(
        &self,
        windows: &mut [TrainWindow],
        keep: bool,
        sum: &mut LossSum,
    ) -> Result<()> {
        let (p, x, h) = self.prepared(windows, keep)?;
        let (model, copy) = self.losses(&p, &x, &h)?;
        let frames = (windows.len() * (windows[0].frames - 1)) as u64;
        sum.model += f64::from(model.to_scalar::<f32>()?) * frames as f64;
        sum.copy_last += f64::from(copy.to_scalar::<f32>()?) * frames as f64;
        sum.frames += frames;
        Ok(())
    }

    /// The current values of the trained weights, by initializer name (the model's prefix
    /// included).
    pub fn weights(&self) -> Result<BTreeMap<String, Vec<f32>>> {
        self.vars
            .iter()
            .map(|(n, v)| {
                Ok((
                    format!("{}{n}", self.backbone.prefix),
                    backbone::to_vec(v.as_tensor())?,
                ))
            })
            .collect()
    }

    /// A copy of the trained values (for the best evaluation so far).
    pub fn snapshot(&self) -> Result<Vec<Tensor>> {
        Ok(self
            .vars
            .iter()
            .map(|(_, v)| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()?)
    }

    pub fn restore(&self, snapshot: &[Tensor]) -> Result<()> {
        for ((_, v), t) in self.vars.iter().zip(snapshot) {
            v.set(t)?;
        }
        Ok(())
    }
}

/// A shuffle buffer: windows go in as they are decoded and come out in random order, so a
/// batch mixes moments of the footage far apart without holding the footage in memory.
pub struct Shuffler {
    buffer: Vec<TrainWindow>,
    capacity: usize,
}

impl Shuffler {
    pub fn new(capacity: usize) -> Self {
        Shuffler {
            buffer: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds a window; returns a batch when the buffer is full.
    pub fn push(
        &mut self,
        w: TrainWindow,
        batch: usize,
        rng: &mut ChaCha8Rng,
    ) -> Option<Vec<TrainWindow>> {
        self.buffer.push(w);
        (self.buffer.len() >= self.capacity.max(batch)).then(|| self.take(batch, rng))
    }

    /// Up to `batch` random windows of one length (the most common).
    pub fn take(&mut self, batch: usize, rng: &mut ChaCha8Rng) -> Vec<TrainWindow> {
        let mut out: Vec<TrainWindow> = Vec::with_capacity(batch);
        while out.len() < batch && !self.buffer.is_empty() {
            let i = rng.random_range(0..self.buffer.len());
            if out
                .first()
                .is_some_and(|f| f.frames != self.buffer[i].frames)
            {
                // Windows of another length wait for a batch of their own.
                match self.buffer.iter().position(|w| w.frames == out[0].frames) {
                    Some(j) => out.push(self.buffer.swap_remove(j)),
                    None => break,
                }
                continue;
            }
            out.push(self.buffer.swap_remove(i));
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }
}

/// One pass of `model` over `segments` the way `analyze` runs a video (windows of T
/// distinct pictures at stride `stride`, each predicted frame scored once, from the window
/// that owns it), accumulating the per-patch features of every predicted frame
/// ([`crate::normal`]). A segment that cannot be read now (it could in the scan) stops it.
pub fn normal_of_footage<'s>(
    model: &mut crate::model::Model,
    segments: impl IntoIterator<Item = &'s Segment>,
    spec: &WindowSpec<'_>,
    cancel: &AtomicBool,
) -> Result<crate::normal::NormalAccumulator> {
    use crate::score::{FrameMeta, Window, Windower};
    let contract = spec.contract.clone();
    let t = contract.context_frames;
    let (n, c) = (contract.num_patches(), contract.patch_dim());
    let mut acc = crate::normal::NormalAccumulator::new(n);
    let batch = 8;
    let mut flush =
        |pending: &mut Vec<Window>, acc: &mut crate::normal::NormalAccumulator| -> Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            let scores = crate::model::run_windows(model, pending)?;
            for st in &scores.steps {
                let w = &pending[st.window];
                let Some(step) = w.steps.iter().find(|s| s.position == st.position) else {
                    continue;
                };
                let Some((_, target)) = &step.target else {
                    continue;
                };
                let p = st.position;
                let pred = scores
                    .output
                    .next_patches
                    .slice(ndarray::s![st.window, p, .., ..]);
                let pred = pred.as_slice().expect("standard layout");
                let current = &w.input[p * n * c..(p + 1) * n * c];
                acc.push(
                    &crate::normal::features(pred, target, current, c),
                    crate::score::mean_squared_error(pred, target),
                );
            }
            pending.clear();
            Ok(())
        };
    for seg in segments {
        let mut windower = Windower::new(t, spec.stride.clamp(1, t), n * c);
        let mut used = 0u64;
        let mut pending: Vec<Window> = Vec::new();
        let read = distinct_frames(seg, spec, cancel, |patches, frame| {
            let meta = FrameMeta {
                position: used,
                index: frame.index,
                pts_seconds: frame.pts_seconds,
            };
            used += 1;
            pending.extend(windower.push(meta, patches));
            if pending.len() >= batch {
                flush(&mut pending, &mut acc)?;
            }
            Ok(())
        })?;
        if let Err(e) = read {
            anyhow::bail!("`{}` could be read before and not now: {e}", seg.origin);
        }
        pending.extend(windower.finish());
        while !pending.is_empty() {
            let mut chunk: Vec<Window> = pending.drain(..pending.len().min(batch)).collect();
            flush(&mut chunk, &mut acc)?;
        }
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn w(frames: usize, v: f32) -> TrainWindow {
        TrainWindow {
            patches: vec![v; frames],
            frames,
            frozen: None,
        }
    }

    #[test]
    fn shuffler_batches_hold_one_window_length_and_drain_everything() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut s = Shuffler::new(6);
        let mut seen = 0;
        for i in 0..20 {
            let frames = if i % 7 == 3 { 5 } else { 8 };
            if let Some(b) = s.push(w(frames, i as f32), 4, &mut rng) {
                assert!(b.iter().all(|x| x.frames == b[0].frames));
                seen += b.len();
            }
        }
        while !s.is_empty() {
            let b = s.take(4, &mut rng);
            assert!(!b.is_empty() && b.iter().all(|x| x.frames == b[0].frames));
            seen += b.len();
        }
        assert_eq!(seen, 20);
    }
}
