//! Finetuning in Rust on candle: a classification head on the backbone's per-frame
//! embeddings, optionally with the last temporal blocks of the backbone trained too.
//!
//! ```text
//! data (folders / CSV) ─▶ split by source file ─▶ windows (cached: embeddings, or the
//!   input of the first unfrozen block) ─▶ frames of each clip (adaptive skip) ─▶
//!   standardize ─▶ [unfrozen blocks ─▶] head (AdamW, early stopping) ─▶ metrics ─▶ export
//! ```

pub mod adapt;
pub mod backbone;
pub mod data;
pub mod features;
pub mod head;
pub mod metrics;
pub mod optim;
pub mod windows;

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use ndarray::Array2;

use data::Dataset;
use optim::{Inputs, Split};
use windows::{clip_frames, Extracted, SourceWindows};

/// Labelled frames, each referring to its source file's windows.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Per frame: source path, window, position in the window.
    pub source: Vec<PathBuf>,
    pub window: Vec<u32>,
    pub position: Vec<u32>,
    pub y: Vec<usize>,
    /// Index into the dataset's clips.
    pub clip: Vec<usize>,
}

/// The frames of the clips `indices`; clips that could not be read or have no frames in
/// their range are returned as (clip index, reason).
pub fn gather(
    dataset: &Dataset,
    indices: &[usize],
    extracted: &Extracted,
    skip_frames: usize,
) -> (Rows, Vec<(usize, String)>) {
    let mut rows = Rows::default();
    let mut problems = Vec::new();
    for &ci in indices {
        let c = &dataset.clips[ci];
        match extracted.sources.get(&c.path) {
            Some(Ok(w)) => {
                let frames = clip_frames(w, c.start_s, c.end_s, skip_frames);
                if frames.is_empty() {
                    problems.push((
                        ci,
                        format!(
                            "no sampled frame in its time range (the file has {} sampled frames)",
                            w.frames()
                        ),
                    ));
                    continue;
                }
                for f in frames {
                    rows.source.push(c.path.clone());
                    rows.window.push(w.window[f]);
                    rows.position.push(w.position[f]);
                    rows.y.push(c.label);
                    rows.clip.push(ci);
                }
            }
            Some(Err(e)) => problems.push((ci, e.clone())),
            None => problems.push((ci, "no features".into())),
        }
    }
    (rows, problems)
}

/// The split's inputs from the sources' windows: with a frozen backbone one feature row per
/// frame ([e_t] or [e_t, e_t − e_{t−lag}], both from the frame's own window, as the
/// exported graph computes them); unfrozen, the windows themselves.
pub fn split_inputs(
    rows: &Rows,
    sources: &BTreeMap<PathBuf, Result<SourceWindows, String>>,
    lag: usize,
    windows: bool,
) -> candle_core::Result<Split> {
    let get = |p: &PathBuf| {
        sources[p]
            .as_ref()
            .expect("rows come from readable sources")
    };
    if !windows {
        let d = rows.source.first().map_or(0, |p| get(p).x.dim().2);
        let f = if lag > 0 { 2 * d } else { d };
        let mut x = Array2::<f32>::zeros((rows.y.len(), f));
        for (i, mut out) in x.rows_mut().into_iter().enumerate() {
            let w = get(&rows.source[i]);
            let (wi, p) = (rows.window[i] as usize, rows.position[i] as usize);
            let cur = w.x.slice(ndarray::s![wi, p, ..]);
            out.slice_mut(ndarray::s![..d]).assign(&cur);
            if lag > 0 {
                let prev = w.x.slice(ndarray::s![wi, p.saturating_sub(lag), ..]);
                out.slice_mut(ndarray::s![d..]).assign(&(&cur - &prev));
            }
        }
        let n = x.nrows();
        let data = x.into_raw_vec_and_offset().0;
        return Ok(Split {
            inputs: Inputs::Rows(Tensor::from_vec(data, (n, f), &Device::Cpu)?),
            y: rows.y.clone(),
        });
    }
    // Distinct (source, window) pairs, in order of first use.
    let mut index: BTreeMap<(&PathBuf, u32), u32> = BTreeMap::new();
    let mut order: Vec<(&PathBuf, u32)> = Vec::new();
    let mut window = Vec::with_capacity(rows.y.len());
    for (s, &w) in rows.source.iter().zip(&rows.window) {
        let next = order.len() as u32;
        let i = *index.entry((s, w)).or_insert_with(|| {
            order.push((s, w));
            next
        });
        window.push(i);
    }
    let (t, d) = order
        .first()
        .map_or((1, 1), |(s, _)| (get(s).x.dim().1, get(s).x.dim().2));
    let mut h: Vec<f32> = Vec::with_capacity(order.len() * t * d);
    for (s, w) in &order {
        h.extend(get(s).x.slice(ndarray::s![*w as usize, .., ..]).iter());
    }
    Ok(Split {
        inputs: Inputs::Windows {
            h: Tensor::from_vec(h, (order.len(), t, d), &Device::Cpu)?,
            window,
            position: rows.position.clone(),
        },
        y: rows.y.clone(),
    })
}

/// Per-clip predictions: the argmax of the mean logits over each clip's frames.
/// Returns (truth, predicted) per clip, in order of first appearance.
pub fn clip_predictions(rows: &Rows, logits: &Array2<f32>) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = Vec::new();
    let mut sums: BTreeMap<usize, (ndarray::Array1<f32>, usize)> = BTreeMap::new();
    for (i, &c) in rows.clip.iter().enumerate() {
        let e = sums.entry(c).or_insert_with(|| {
            order.push(c);
            (ndarray::Array1::zeros(logits.ncols()), rows.y[i])
        });
        e.0 += &logits.row(i);
    }
    let mut truth = Vec::new();
    let mut pred = Vec::new();
    for c in order {
        let (s, y) = &sums[&c];
        truth.push(*y);
        pred.push(head::predictions(&s.view().insert_axis(ndarray::Axis(0)).to_owned())[0]);
    }
    (truth, pred)
}
