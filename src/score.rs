//! From frames to model windows, and from model outputs to per-frame scores. Pure.
//!
//! Windows of T frames overlap by T − S (stride S, default T/2), so every prediction
//! except the first few of a video is made from at least T − S + 1 frames of context.
//! Window k starts at sampled frame kS; the output at position p predicts frame kS+p+1,
//! which may lie just past the window (the window carries that frame as its target).
//! Each target frame is *owned* by exactly one window:
//!
//! ```text
//! window 0 owns targets 1 ..= T            (positions 0 .. T-1)
//! window k owns targets kS+T-S+1 ..= kS+T  (positions T-S .. T-1)
//! ```
//!
//! and the embedding of frame f comes from the step that predicts f+1, so both come from
//! the position with the most context. Results leave in frame order.

use std::collections::{BTreeMap, VecDeque};

/// Where a sampled frame came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameMeta {
    /// 0-based position among the sampled frames of this video.
    pub position: u64,
    /// Decoded-frame index.
    pub index: u64,
    pub pts_seconds: f64,
}

/// One step of a window whose result belongs to this window.
#[derive(Debug, Clone)]
pub struct OwnedStep {
    /// Position in the window (0..T).
    pub position: usize,
    /// The frame at that position: the embedding and label are for it.
    pub frame: FrameMeta,
    /// The next sampled frame and its patches, when it exists: its surprise comes from here.
    pub target: Option<(FrameMeta, Vec<f32>)>,
    /// Sampled frames right after this one that repeat its picture (see [`RepeatFilter`]):
    /// they never enter a window and take this frame's results.
    pub repeats: Vec<FrameMeta>,
}

/// A model input window: T frames of N·C values each, plus what to read from its outputs.
#[derive(Debug, Clone)]
pub struct Window {
    pub input: Vec<f32>,
    pub steps: Vec<OwnedStep>,
    /// The positions whose `boundary` output (contract v2) this window owns, with their
    /// frames. Boundary outputs look both ways inside the window, so they are owned from the
    /// middle: positions (T−S)/2 .. (T−S)/2+S (window 0 from 0, the final window to its
    /// end), which gives every frame at least (T−S)/2 frames of context on either side.
    pub boundary_steps: Vec<(usize, FrameMeta)>,
}

/// Builds the windows of one video as frames arrive; memory is T + S frames at most.
#[derive(Debug)]
pub struct Windower {
    context: usize,
    stride: usize,
    frame_len: usize,
    /// Frames from `buffer_start` on.
    buffer: VecDeque<(FrameMeta, Vec<f32>)>,
    buffer_start: u64,
    next_window: u64,
    seen: u64,
    /// Repeats of each buffered distinct frame, by position.
    repeats: BTreeMap<u64, Vec<FrameMeta>>,
}

impl Windower {
    pub fn new(context_frames: usize, stride: usize, frame_len: usize) -> Self {
        assert!(context_frames >= 1 && (1..=context_frames).contains(&stride));
        Windower {
            context: context_frames,
            stride,
            frame_len,
            buffer: VecDeque::new(),
            buffer_start: 0,
            next_window: 0,
            seen: 0,
            repeats: BTreeMap::new(),
        }
    }

    /// Records a sampled frame that repeats the picture of the last pushed one. It must come
    /// after that frame and before the next [`Windower::push`].
    pub fn push_repeat(&mut self, frame: FrameMeta) {
        if let Some(last) = self.seen.checked_sub(1) {
            self.repeats.entry(last).or_default().push(frame);
        }
    }

    /// Adds the next sampled frame; returns the windows that became complete.
    pub fn push(&mut self, frame: FrameMeta, patches: Vec<f32>) -> Vec<Window> {
        debug_assert_eq!(patches.len(), self.frame_len);
        debug_assert_eq!(frame.position, self.seen);
        self.buffer.push_back((frame, patches));
        self.seen += 1;
        let mut out = Vec::new();
        // Window k needs frames up to kS+T (its last target).
        while self.seen > self.window_start(self.next_window) + self.context as u64 {
            out.push(self.emit(self.next_window, false));
            self.next_window += 1;
        }
        out
    }

    /// Emits the remaining windows at the end of the video (padding past the last frame).
    pub fn finish(&mut self) -> Vec<Window> {
        let mut out = Vec::new();
        if self.seen == 0 {
            return out;
        }
        let last = self.seen - 1;
        // Continue until the window that owns the embedding of the last frame.
        while self.next_window == 0 || self.first_owned(self.next_window) <= last {
            let is_final = self.first_owned(self.next_window + 1) > last;
            out.push(self.emit(self.next_window, is_final));
            self.next_window += 1;
        }
        out
    }

    fn window_start(&self, k: u64) -> u64 {
        k * self.stride as u64
    }

    /// First frame whose embedding window k owns.
    fn first_owned(&self, k: u64) -> u64 {
        if k == 0 {
            0
        } else {
            self.window_start(k) + (self.context - self.stride) as u64
        }
    }

    fn frame(&self, position: u64) -> Option<&(FrameMeta, Vec<f32>)> {
        position
            .checked_sub(self.buffer_start)
            .and_then(|i| self.buffer.get(i as usize))
    }

    fn emit(&mut self, k: u64, is_final: bool) -> Window {
        let start = self.window_start(k);
        let last_seen = self.seen - 1;
        let mut input = Vec::with_capacity(self.context * self.frame_len);
        for p in 0..self.context as u64 {
            let pos = (start + p).min(last_seen);
            input.extend_from_slice(&self.frame(pos).expect("window frame is buffered").1);
        }
        let first_position = if k == 0 {
            0
        } else {
            self.context - self.stride
        };
        let steps = (first_position..self.context)
            .filter(|p| start + (*p as u64) <= last_seen)
            .map(|p| {
                let at = start + p as u64;
                let frame = self.frame(at).expect("owned frame is buffered").0;
                let target = self.frame(at + 1).map(|(m, x)| (*m, x.clone()));
                OwnedStep {
                    position: p,
                    frame,
                    target,
                    repeats: Vec::new(),
                }
            })
            .collect::<Vec<OwnedStep>>();
        let mut steps = steps;
        for st in &mut steps {
            st.repeats = self.repeats.remove(&st.frame.position).unwrap_or_default();
        }
        let middle = (self.context - self.stride) / 2;
        let from = if k == 0 { 0 } else { middle };
        let to = if is_final {
            self.context
        } else {
            middle + self.stride
        };
        let boundary_steps = (from..to)
            .filter(|p| start + (*p as u64) <= last_seen)
            .map(|p| {
                (
                    p,
                    self.frame(start + p as u64)
                        .expect("owned frame is buffered")
                        .0,
                )
            })
            .collect();
        // Frames before the next window's start are no longer needed.
        let keep_from = self.window_start(k + 1).min(self.seen);
        while self.buffer_start < keep_from {
            self.buffer.pop_front();
            self.buffer_start += 1;
        }
        Window {
            input,
            steps,
            boundary_steps,
        }
    }
}

/// Recognizes sampled frames that repeat the previous distinct picture exactly or within the
/// encoder's noise: no patch's mean absolute difference from the last kept picture exceeds
/// `max_patch_mad_levels` grey levels (of 255). Footage whose real frame rate is below its
/// container's (duplicated frames) is then judged between distinct pictures. The default,
/// [`REPEAT_PATCH_MAD_LEVELS`], was measured on the base model's footage (models/README.md,
/// "Repeated frames").
#[derive(Debug, Clone)]
pub struct RepeatFilter {
    last: Option<Vec<f32>>,
    patch_dim: usize,
    /// Per value of a patch: grey levels per normalized unit (255 · std of its channel).
    scale: Vec<f32>,
    max_patch_mad_levels: f32,
}

pub const REPEAT_PATCH_MAD_LEVELS: f32 = 1.0;

impl RepeatFilter {
    pub fn new(patch_dim: usize, std: [f32; 3], max_patch_mad_levels: f32) -> Self {
        RepeatFilter {
            last: None,
            patch_dim,
            scale: (0..patch_dim).map(|i| 255.0 * std[i % 3]).collect(),
            max_patch_mad_levels,
        }
    }

    /// True when `patches` repeat the last kept picture; otherwise it becomes the new one.
    pub fn is_repeat(&mut self, patches: &[f32]) -> bool {
        if let Some(last) = &self.last {
            let repeat = last
                .chunks_exact(self.patch_dim)
                .zip(patches.chunks_exact(self.patch_dim))
                .all(|(a, b)| {
                    let sum: f32 = a
                        .iter()
                        .zip(b)
                        .zip(&self.scale)
                        .map(|((x, y), s)| (x - y).abs() * s)
                        .sum();
                    sum <= self.max_patch_mad_levels * self.patch_dim as f32
                });
            if repeat {
                return true;
            }
        }
        self.last = Some(patches.to_vec());
        false
    }
}

/// Mean squared error between a predicted and an actual frame (normalized patch space).
pub fn mean_squared_error(predicted: &[f32], actual: &[f32]) -> f32 {
    debug_assert_eq!(predicted.len(), actual.len());
    let sum: f64 = predicted
        .iter()
        .zip(actual)
        .map(|(p, a)| f64::from(p - a).powi(2))
        .sum();
    (sum / actual.len().max(1) as f64) as f32
}

/// Per-patch mean squared error (for the surprise heatmap).
pub fn patch_errors(predicted: &[f32], actual: &[f32], patch_dim: usize) -> Vec<f32> {
    predicted
        .chunks_exact(patch_dim)
        .zip(actual.chunks_exact(patch_dim))
        .map(|(p, a)| mean_squared_error(p, a))
        .collect()
}

/// Softmax of one row of logits (numerically stable).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(p: u64) -> FrameMeta {
        FrameMeta {
            position: p,
            index: p,
            pts_seconds: p as f64,
        }
    }

    /// Runs a windower over `n` frames whose single value is their position.
    fn run(n: u64, t: usize, s: usize) -> Vec<Window> {
        let mut w = Windower::new(t, s, 1);
        let mut out = vec![];
        for p in 0..n {
            out.extend(w.push(meta(p), vec![p as f32]));
        }
        out.extend(w.finish());
        out
    }

    proptest! {
        #[test]
        fn every_frame_owned_once_in_order(n in 1u64..80, t in 1usize..10, s_frac in 0.0f64..1.0) {
            let s = 1 + ((t - 1) as f64 * s_frac) as usize;
            let windows = run(n, t, s);
            let frames: Vec<u64> = windows.iter().flat_map(|w| w.steps.iter().map(|st| st.frame.position)).collect();
            prop_assert_eq!(frames, (0..n).collect::<Vec<_>>());
            let targets: Vec<u64> = windows.iter().flat_map(|w| w.steps.iter().filter_map(|st| st.target.as_ref().map(|t| t.0.position))).collect();
            prop_assert_eq!(targets, (1..n).collect::<Vec<_>>());
            let boundary: Vec<u64> = windows.iter().flat_map(|w| w.boundary_steps.iter().map(|(_, f)| f.position)).collect();
            prop_assert_eq!(boundary, (0..n).collect::<Vec<_>>());
            for w in &windows {
                for (p, f) in &w.boundary_steps {
                    prop_assert_eq!(w.input[*p], f.position as f32);
                }
            }
            for w in &windows {
                prop_assert_eq!(w.input.len(), t);
                for st in &w.steps {
                    // The input at the step's position is the step's own frame (causality).
                    prop_assert_eq!(w.input[st.position], st.frame.position as f32);
                    if let Some((m, x)) = &st.target { prop_assert_eq!(x[0], m.position as f32); }
                }
            }
        }
    }

    #[test]
    fn later_windows_own_only_their_well_contexted_half() {
        let windows = run(20, 8, 4);
        assert_eq!(windows[0].steps.len(), 8);
        assert!(windows[1..]
            .iter()
            .all(|w| w.steps.iter().all(|s| s.position >= 4)));
        // Window 1 starts at frame 4: input frames 4..12, owns frames 8..12.
        assert_eq!(
            windows[1].input,
            (4..12).map(|x| x as f32).collect::<Vec<_>>()
        );
        assert_eq!(windows[1].steps.first().unwrap().frame.position, 8);
    }

    #[test]
    fn short_video_pads_with_last_frame() {
        let windows = run(3, 8, 4);
        assert_eq!(windows.len(), 1);
        assert_eq!(
            windows[0].input,
            vec![0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
        );
        assert_eq!(windows[0].steps.len(), 3);
        assert!(windows[0].steps[2].target.is_none());
    }

    #[test]
    fn repeats_ride_on_the_frame_they_repeat() {
        let mut w = Windower::new(8, 4, 1);
        let mut out = vec![];
        let mut position = 0;
        for i in 0..30u64 {
            let m = FrameMeta {
                position,
                index: i,
                pts_seconds: i as f64,
            };
            if i % 3 != 0 {
                w.push_repeat(m);
            } else {
                out.extend(w.push(m, vec![position as f32]));
                position += 1;
            }
        }
        out.extend(w.finish());
        let rows: Vec<(u64, Vec<u64>)> = out
            .iter()
            .flat_map(|w| w.steps.iter())
            .map(|s| (s.frame.index, s.repeats.iter().map(|r| r.index).collect()))
            .collect();
        assert_eq!(rows.len(), 10);
        for (k, (index, reps)) in rows.iter().enumerate() {
            let i = 3 * k as u64;
            assert_eq!((*index, reps.clone()), (i, vec![i + 1, i + 2]));
        }
    }

    #[test]
    fn repeat_filter_takes_noise_but_not_a_moving_patch() {
        let std = [0.225; 3];
        let level = 1.0 / (255.0 * 0.225);
        let mut f = RepeatFilter::new(192, std, REPEAT_PATCH_MAD_LEVELS);
        let base = vec![0.0f32; 64 * 192];
        assert!(!f.is_repeat(&base));
        // half a grey level of noise everywhere: a repeat
        let noisy: Vec<f32> = (0..base.len())
            .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 } * level)
            .collect();
        assert!(f.is_repeat(&noisy));
        // one patch moved by 3 levels on average: a new picture, even though the frame's
        // mean difference is tiny
        let mut moved = base.clone();
        moved[5 * 192..6 * 192]
            .iter_mut()
            .for_each(|v| *v = 3.0 * level);
        assert!(!f.is_repeat(&moved));
        // compared with the last kept picture, not the previous frame
        assert!(f.is_repeat(&moved));
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0, -1000.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0] && p[3] == 0.0);
    }
}
