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
pub mod motion;
pub mod optim;
pub mod store;
pub mod windows;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ndarray::Array2;

use data::Dataset;
use optim::{Inputs, Split};
use windows::{clip_frames, Extracted, SourceWindows};

/// Labelled frames, each referring to its source file's windows.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Per frame: source path, window, position in the window.
    /// (Shared per clip: one pointer per frame, not one path.)
    pub source: Vec<Arc<PathBuf>>,
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
                let path = Arc::new(c.path.clone());
                for f in frames {
                    rows.source.push(path.clone());
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

/// Where a split's inputs are kept: in memory up to `memory_bytes`, beyond it in a
/// scratch file in `dir`.
#[derive(Debug, Clone)]
pub struct Storage {
    pub memory_bytes: usize,
    pub dir: PathBuf,
}

/// The split's inputs from the sources' windows: with a frozen backbone one feature row per
/// frame ([e_t] or [e_t, e_t − e_{t−lag}], both from the frame's own window, as the
/// exported graph computes them); unfrozen, the windows themselves. Windows are read one
/// source at a time, so only the split's inputs (within `storage`'s budget) are held.
pub fn split_inputs(
    rows: &Rows,
    sources: &BTreeMap<PathBuf, Result<SourceWindows, String>>,
    lag: usize,
    windows: bool,
    storage: &Storage,
) -> anyhow::Result<Split> {
    let get = |p: &PathBuf| {
        sources[p]
            .as_ref()
            .expect("rows come from readable sources")
    };
    let (t, d) = rows.source.first().map_or((1, 1), |p| (get(p).t, get(p).d));
    // Distinct (source, window) pairs, in order of first use; the frames' local window.
    let mut index: BTreeMap<(&PathBuf, u32), u32> = BTreeMap::new();
    let mut order: Vec<(&PathBuf, u32)> = Vec::new();
    let mut local = Vec::with_capacity(rows.y.len());
    for (s, &w) in rows.source.iter().zip(&rows.window) {
        let next = order.len() as u32;
        let i = *index.entry((s, w)).or_insert_with(|| {
            order.push((s, w));
            next
        });
        local.push(i);
    }
    // The used windows, read in runs of one source (at most BLOCK windows at once).
    let block_at = |k: usize| -> anyhow::Result<(usize, ndarray::Array3<f32>)> {
        let src = order[k].0;
        let mut e = k;
        while e < order.len() && order[e].0 == src && e - k < BLOCK {
            e += 1;
        }
        let idx: Vec<usize> = order[k..e].iter().map(|&(_, w)| w as usize).collect();
        Ok((e, get(src).windows(&idx)?))
    };
    if windows {
        let mut out = store::MatrixWriter::new(t * d, storage.memory_bytes, &storage.dir);
        let mut k = 0;
        while k < order.len() {
            let (e, block) = block_at(k)?;
            for win in block.outer_iter() {
                out.push(
                    win.as_standard_layout()
                        .as_slice()
                        .expect("standard layout"),
                )?;
            }
            k = e;
        }
        return Ok(Split {
            inputs: Inputs::Windows {
                h: out.finish()?,
                t,
                d,
                window: local,
                position: rows.position.clone(),
            },
            y: rows.y.clone(),
        });
    }
    // Frozen: one row per frame, in the frames' order (a frame's window is nearly always
    // the one of the frame before or the next one used, so each block is read once).
    let f = if lag > 0 { 2 * d } else { d };
    let mut out = store::MatrixWriter::new(f, storage.memory_bytes, &storage.dir);
    let mut row = vec![0f32; f];
    let mut loaded: Option<(usize, usize, ndarray::Array3<f32>)> = None;
    for (i, &w) in local.iter().enumerate() {
        let w = w as usize;
        if !matches!(&loaded, Some((k, e, _)) if (*k..*e).contains(&w)) {
            let (e, block) = block_at(w)?;
            loaded = Some((w, e, block));
        }
        let (k, _, block) = loaded.as_ref().expect("loaded above");
        let win = block.index_axis(ndarray::Axis(0), w - k);
        let p = rows.position[i] as usize;
        let cur = win.row(p);
        for (o, &c) in row[..d].iter_mut().zip(cur) {
            *o = c;
        }
        if lag > 0 {
            let prev = win.row(p.saturating_sub(lag));
            for ((o, &c), &q) in row[d..].iter_mut().zip(cur).zip(prev) {
                *o = c - q;
            }
        }
        out.push(&row)?;
    }
    Ok(Split {
        inputs: Inputs::Rows(out.finish()?),
        y: rows.y.clone(),
    })
}

/// Windows read from a source at once when a split's inputs are built.
const BLOCK: usize = 1024;

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
