//! Shot boundaries from surprise: hard cuts, dissolves and fades, with flashes suppressed.
//!
//! Online and causal with a fixed delay: the decision for frame t uses frames ≤ t + L
//! (L = `lookahead` sampled frames) and the statistics of the frames before t. So it gives
//! the same answer whether a video arrives whole or in pieces, and memory stays flat.
//!
//! The score is content-adaptive: surprise is compared in log space with the median and
//! the spread (MAD) of the recent past, so one threshold means the same on a dark, static
//! talk and on a football match.

use std::collections::VecDeque;

/// Kind of transition that starts a shot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Cut,
    Dissolve,
    Fade,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Cut => "cut",
            Transition::Dissolve => "dissolve",
            Transition::Fade => "fade",
        }
    }
}

/// What the detector sees of one sampled frame.
#[derive(Debug, Clone)]
pub struct FrameSignal {
    /// Prediction error of this frame from the frames before it (None for the first).
    pub surprise: Option<f32>,
    /// Mean of each patch per channel, normalized (N·3 values): a tiny thumbnail used to
    /// tell a flash (content comes back) and a fade (through black) from a cut.
    pub thumb: Vec<f32>,
    /// Mean luminance of the frame in [0, 1].
    pub luma: f32,
    /// The model's boundary probabilities for this frame (contract v2): a hard cut starts a
    /// shot here, and this frame lies inside a gradual transition. `None` for v1 models,
    /// which use the surprise rules.
    pub learned: Option<BoundaryProbs>,
}

/// Per-frame output of a contract-v2 model's `boundary` tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundaryProbs {
    pub cut: f32,
    pub gradual: f32,
}

/// The decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameDecision {
    pub surprise_z: Option<f32>,
    /// Set on the first frame of a new shot.
    pub boundary: Option<Transition>,
}

/// One shot of a video, in analyzed frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    pub start_frame: u64,
    pub end_frame: u64,
    pub start_s: f64,
    pub end_s: f64,
    /// How the shot began (None for the first shot).
    pub transition: Option<Transition>,
    /// Frames per label index (empty without a classification head).
    pub label_counts: Vec<u64>,
}

impl Shot {
    /// The label most of the shot's frames have.
    pub fn majority_label(&self) -> Option<usize> {
        let (k, n) = self
            .label_counts
            .iter()
            .enumerate()
            .max_by_key(|(k, n)| (**n, std::cmp::Reverse(*k)))?;
        (*n > 0).then_some(k)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Past frames used for the adaptive median/MAD.
    pub history: usize,
    /// Frames of delay: flashes are judged by whether the content comes back within it.
    pub lookahead: usize,
    /// A hard cut is a one-frame spike: its surprise over the largest of the two frames
    /// before and after it (plus the recent median, which keeps noise on static shots
    /// from looking like spikes) must exceed this...
    pub cut_peak: f32,
    /// ...and its surprise must be at least this many times the recent median.
    pub cut_ratio: f32,
    /// A candidate is a flash when the frame `lookahead` later is closer to the frame
    /// before it than this fraction of the jump.
    pub flash_return: f32,
    /// Mean luminance under which a frame counts as black (fades).
    pub black_luma: f32,
    /// Dissolves are judged over a window of `dissolve_half` frames either side of the
    /// frame: the picture must travel far (`dissolve_change`, RMS thumbnail distance in
    /// normalized units) along a nearly straight path (`dissolve_straightness` = distance /
    /// path length; a cross-fade is a straight line between two pictures, camera motion
    /// wanders), no single step may carry more than `dissolve_max_step` of the distance
    /// (that is a cut or a flash), and the model must be surprised over the window
    /// (`dissolve_z`, the window's mean log surprise against the recent past).
    pub dissolve_half: usize,
    pub dissolve_change: f32,
    pub dissolve_straightness: f32,
    pub dissolve_max_step: f32,
    pub dissolve_z: f32,
    /// No two boundaries closer than this many sampled frames.
    pub min_shot: usize,
    /// With a learned boundary output (contract v2): a cut is a peak of the cut probability
    /// (above the two frames before it, not below the two after) of at least `learned_cut`;
    /// a dissolve starts where the gradual probability stays at least `learned_gradual` for
    /// `learned_gradual_frames` frames. The model's metadata `framegpt.boundary_rule` sets
    /// them (chosen by its leave-one-source-out validation); flashes and fades keep the
    /// rules above.
    pub learned_cut: f32,
    pub learned_gradual: f32,
    pub learned_gradual_frames: usize,
    /// With a learned boundary output, a return from black is a fade only if the gradual
    /// probability reached this somewhere in the black run, the two frames before it or
    /// the three from the return on (dark footage that dips under `black_luma` is no fade);
    /// and a fade-out already reported as a dissolve (its gradual run unbroken since) is
    /// not reported again when the picture returns. 0 keeps every return from black.
    pub learned_fade_gradual: f32,
    /// With a learned boundary output, a dissolve must also travel a straight path: over
    /// the pictures from two before it to `lookahead` after it, the thumbnail distance from
    /// first to last is at least this fraction of the path length (a cross-fade between
    /// still pictures is 1; camera motion wanders). 0 turns the check off.
    pub learned_straightness: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            history: 48,
            lookahead: 6,
            cut_peak: 2.7,
            cut_ratio: 5.0,
            flash_return: 0.4,
            black_luma: 0.06,
            dissolve_half: 5,
            dissolve_change: 0.36,
            dissolve_straightness: 0.75,
            dissolve_max_step: 0.5,
            dissolve_z: 1.5,
            min_shot: 6,
            learned_cut: 0.5,
            learned_gradual: 0.5,
            learned_gradual_frames: 3,
            learned_fade_gradual: 0.0,
            learned_straightness: 0.0,
        }
    }
}

impl DetectorConfig {
    /// Applies `key=value,key=value` overrides (the `FRAMEGPT_DETECTOR` development knob,
    /// used to tune on a benchmark without rebuilding).
    pub fn with_overrides(mut self, spec: &str) -> Result<Self, String> {
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, found `{pair}`"))?;
            let bad = || format!("invalid value `{value}` for `{key}`");
            let f = || value.parse::<f32>().map_err(|_| bad());
            let u = || value.parse::<usize>().map_err(|_| bad());
            match key {
                "history" => self.history = u()?,
                "lookahead" => self.lookahead = u()?,
                "cut_peak" => self.cut_peak = f()?,
                "cut_ratio" => self.cut_ratio = f()?,
                "flash_return" => self.flash_return = f()?,
                "black_luma" => self.black_luma = f()?,
                "dissolve_half" => self.dissolve_half = u()?,
                "dissolve_change" => self.dissolve_change = f()?,
                "dissolve_straightness" => self.dissolve_straightness = f()?,
                "dissolve_max_step" => self.dissolve_max_step = f()?,
                "dissolve_z" => self.dissolve_z = f()?,
                "min_shot" => self.min_shot = u()?,
                "cut" | "learned_cut" => self.learned_cut = f()?,
                "grad" | "learned_gradual" => self.learned_gradual = f()?,
                "grad_min" | "learned_gradual_frames" => self.learned_gradual_frames = u()?,
                "fade_grad" | "learned_fade_gradual" => self.learned_fade_gradual = f()?,
                "straight" | "learned_straightness" => self.learned_straightness = f()?,
                _ => return Err(format!("unknown detector setting `{key}`")),
            }
        }
        if self.lookahead < self.dissolve_half.max(2).max(self.learned_gradual_frames) {
            return Err(format!(
                "lookahead {} must be at least dissolve_half {}, learned_gradual_frames {} and 2",
                self.lookahead, self.dissolve_half, self.learned_gradual_frames
            ));
        }
        Ok(self)
    }
}

/// The reference `surprise_z` is measured against: the log surprise of the last
/// `capacity` frames that were not unusual themselves. Causal (a frame is scored against
/// frames before it only, no look-ahead), so it streams. While a frame scores above
/// [`ZReference::FREEZE_Z`] the reference does not take it in: a long event (a shake, a
/// speed-up, an object crossing) stays unusual for its whole length instead of becoming
/// its own baseline within half a window. After [`ZReference::MAX_FROZEN`] such frames in
/// a row it takes them in again, so a lasting change (a new scene, the lights switched
/// on) becomes the new normal.
#[derive(Debug, Clone)]
struct ZReference {
    values: VecDeque<f32>,
    capacity: usize,
    frozen_run: usize,
}

impl ZReference {
    /// A frame at least this far above the reference is kept out of it.
    const FREEZE_Z: f32 = 2.0;
    /// Consecutive kept-out frames after which they are taken in anyway (about 5 s at
    /// 30 frames/s; the benchmark's events last 0.5–2 s).
    const MAX_FROZEN: usize = 150;

    fn new(capacity: usize) -> Self {
        ZReference {
            values: VecDeque::with_capacity(capacity + 1),
            capacity: capacity.max(3),
            frozen_run: 0,
        }
    }

    /// The robust z of `x` against the reference (None until it holds 3 frames), then
    /// `x` joins the reference unless it is unusual or a boundary's own spike.
    fn score_and_learn(&mut self, x: f32, boundary: bool) -> Option<f32> {
        let z = (self.values.len() >= 3).then(|| {
            let mut v: Vec<f32> = self.values.iter().copied().collect();
            let med = median(&mut v);
            let mut dev: Vec<f32> = v.iter().map(|y| (y - med).abs()).collect();
            let mad = median(&mut dev);
            (x - med) / (1.4826 * mad).max(0.15)
        });
        let unusual = z.is_some_and(|z| z > Self::FREEZE_Z);
        self.frozen_run = if unusual { self.frozen_run + 1 } else { 0 };
        if !boundary && (!unusual || self.frozen_run > Self::MAX_FROZEN) {
            self.values.push_back(x);
            if self.values.len() > self.capacity {
                self.values.pop_front();
            }
        }
        z
    }
}

struct Pending {
    position: u64,
    log_surprise: Option<f32>,
    z: Option<f32>,
    thumb: Vec<f32>,
    luma: f32,
    learned: Option<BoundaryProbs>,
}

/// The streaming detector for one video.
pub struct ShotDetector {
    cfg: DetectorConfig,
    /// Log-surprise of past frames (decided ones), for the adaptive statistics.
    history: VecDeque<f32>,
    /// The reference of the reported `surprise_z`.
    z_reference: ZReference,
    /// Frames waiting for their lookahead, oldest first; also keeps the frames just before.
    window: VecDeque<Pending>,
    /// Frames already decided that stay in `window` as the past (for flash/dissolve checks).
    past_len: usize,
    next_position: u64,
    last_boundary: Option<u64>,
    in_black: bool,
    /// Set while a flash is in progress: the last position at which it may end.
    flash_until: Option<u64>,
    /// Learned rule: a boundary was already placed in the current run of frames whose
    /// gradual probability is above the threshold.
    gradual_run_done: bool,
    /// The kind of the last boundary placed.
    last_kind: Option<Transition>,
    /// Learned rule: the highest gradual probability of the current black run (and the two
    /// frames before it).
    black_gradual: f32,
}

impl ShotDetector {
    pub fn new(cfg: DetectorConfig) -> Self {
        ShotDetector {
            z_reference: ZReference::new(cfg.history),
            cfg,
            history: VecDeque::new(),
            window: VecDeque::new(),
            past_len: 0,
            next_position: 0,
            last_boundary: None,
            in_black: false,
            flash_until: None,
            gradual_run_done: false,
            last_kind: None,
            black_gradual: 0.0,
        }
    }

    pub fn lookahead(&self) -> usize {
        self.cfg.lookahead
    }

    /// Adds the next frame; returns the decisions for frames whose lookahead is complete.
    pub fn push(&mut self, signal: FrameSignal) -> Vec<FrameDecision> {
        let log_surprise = signal.surprise.map(|s| (s.max(0.0) + 1e-4).ln());
        self.window.push_back(Pending {
            position: self.next_position,
            log_surprise,
            z: None,
            thumb: signal.thumb,
            luma: signal.luma,
            learned: signal.learned,
        });
        self.next_position += 1;
        let mut out = Vec::new();
        while self.window.len() - self.past_len > self.cfg.lookahead {
            out.push(self.decide_next());
        }
        out
    }

    /// Decides the frames still waiting (end of video).
    pub fn finish(&mut self) -> Vec<FrameDecision> {
        let mut out = Vec::new();
        while self.window.len() > self.past_len {
            out.push(self.decide_next());
        }
        out
    }

    fn decide_next(&mut self) -> FrameDecision {
        let i = self.past_len;
        let z = self.window[i].log_surprise.and_then(|x| self.robust_z(x));
        self.window[i].z = z;
        let boundary = self.classify(i, z);
        // The reported score has its own reference (frozen during unusual stretches); the
        // boundary rules keep theirs, so shots do not change.
        let z = self.window[i]
            .log_surprise
            .and_then(|x| self.z_reference.score_and_learn(x, boundary.is_some()));
        if let Some(x) = self.window[i].log_surprise {
            // A boundary's own spike does not raise the bar for the next shot.
            if boundary.is_none() {
                self.history.push_back(x);
                if self.history.len() > self.cfg.history {
                    self.history.pop_front();
                }
            }
        }
        if boundary.is_some() {
            self.last_boundary = Some(self.window[i].position);
            self.last_kind = boundary;
        }
        self.past_len += 1;
        // Keep as much past as the checks look back over.
        let keep_past = self.cfg.dissolve_half + 2;
        while self.past_len > keep_past {
            self.window.pop_front();
            self.past_len -= 1;
        }
        FrameDecision {
            surprise_z: z,
            boundary,
        }
    }

    fn robust_z(&self, x: f32) -> Option<f32> {
        if self.history.len() < 3 {
            return None;
        }
        let mut v: Vec<f32> = self.history.iter().copied().collect();
        let med = median(&mut v);
        let mut dev: Vec<f32> = v.iter().map(|y| (y - med).abs()).collect();
        let mad = median(&mut dev);
        // A floor on the spread: on a static clip the MAD is ~0 and noise would look huge.
        Some((x - med) / (1.4826 * mad).max(0.15))
    }

    fn recent_median(&self) -> Option<f32> {
        if self.history.is_empty() {
            return None;
        }
        let mut v: Vec<f32> = self.history.iter().copied().collect();
        Some(median(&mut v))
    }

    fn classify(&mut self, i: usize, z: Option<f32>) -> Option<Transition> {
        let cfg = self.cfg.clone();
        let position = self.window[i].position;
        let too_close = self
            .last_boundary
            .is_some_and(|b| position < b + cfg.min_shot as u64);
        let luma = self.window[i].luma;
        let learned = self.window[i].learned;
        if learned.is_some_and(|p| p.gradual < cfg.learned_gradual) {
            self.gradual_run_done = false;
        }
        // Fades through black: a shot starts at the first frame that leaves black.
        let black = luma < cfg.black_luma;
        let was_black = std::mem::replace(&mut self.in_black, black);
        if black && learned.is_some() {
            let from = if was_black { i } else { i.saturating_sub(2) };
            let most = self.max_gradual(from..=i);
            self.black_gradual = if was_black {
                self.black_gradual.max(most)
            } else {
                most
            };
        }
        if was_black && !black {
            if too_close {
                return None;
            }
            if learned.is_some() {
                let reported =
                    self.last_kind == Some(Transition::Dissolve) && self.gradual_run_done;
                let ahead = self.max_gradual(i..=(i + 2).min(self.window.len() - 1));
                if reported || self.black_gradual.max(ahead) < cfg.learned_fade_gradual {
                    return None;
                }
            }
            self.gradual_run_done = true;
            return Some(Transition::Fade);
        }
        if black || i == 0 || too_close {
            return None;
        }
        if let Some(p) = learned {
            return self.classify_learned(i, p);
        }
        let (Some(_), Some(x)) = (z, self.window[i].log_surprise) else {
            return None;
        };
        let median = self.recent_median().unwrap_or(x).exp();
        let surprise = x.exp();
        let at = |j: isize| {
            usize::try_from(j)
                .ok()
                .and_then(|j| self.window.get(j))
                .and_then(|p| p.log_surprise.map(f32::exp))
        };
        let i = i as isize;
        // The frame right after a cut is still predicted from the old shot's frames, so its
        // surprise stays raised: it must only be lower than the peak, and the peak is
        // measured against the frames before and the one after it.
        if at(i + 1).is_some_and(|next| next >= surprise) {
            return None;
        }
        let neighbours = [i - 2, i - 1, i + 2]
            .into_iter()
            .filter_map(at)
            .fold(0.0f32, f32::max);
        let i = i as usize;
        let peak = (surprise + median) / (neighbours + median);
        if peak > cfg.cut_peak && surprise > cfg.cut_ratio * median {
            if self.ends_flash(i) {
                return None;
            }
            if self.is_flash(i) {
                let until = position + cfg.lookahead as u64;
                self.flash_until = Some(until);
                return None;
            }
            return Some(Transition::Cut);
        }
        if self.is_dissolve(i) {
            return Some(Transition::Dissolve);
        }
        None
    }

    /// The learned rule (see [`DetectorConfig::learned_cut`]); fades and `too_close` are
    /// already handled. `models/boundary.py` (`detect`) runs the same rule for validation.
    fn classify_learned(&mut self, i: usize, p: BoundaryProbs) -> Option<Transition> {
        let cfg = self.cfg.clone();
        let prob = |j: usize, f: fn(&BoundaryProbs) -> f32| {
            self.window.get(j).and_then(|q| q.learned.as_ref()).map(f)
        };
        let cut = |q: &BoundaryProbs| q.cut;
        let gradual = |q: &BoundaryProbs| q.gradual;
        let before_lower = [i.checked_sub(2), i.checked_sub(1)]
            .into_iter()
            .flatten()
            .filter_map(|j| prob(j, cut))
            .all(|c| p.cut > c);
        let after_not_higher = [i + 1, i + 2]
            .into_iter()
            .filter_map(|j| prob(j, cut))
            .all(|c| p.cut >= c);
        if p.cut >= cfg.learned_cut && before_lower && after_not_higher {
            if self.ends_flash(i) || self.returns_to_recent(i) {
                return None;
            }
            if self.is_flash(i) {
                self.flash_until = Some(self.window[i].position + cfg.lookahead as u64);
                return None;
            }
            self.gradual_run_done = p.gradual >= cfg.learned_gradual;
            return Some(Transition::Cut);
        }
        let run = (i..i + cfg.learned_gradual_frames)
            .all(|j| prob(j, gradual).is_some_and(|g| g >= cfg.learned_gradual));
        if !self.gradual_run_done && run && self.straightness(i) >= cfg.learned_straightness {
            let lo = i.saturating_sub(2);
            let hi = (i + cfg.lookahead).min(self.window.len() - 1);
            let dark = self
                .window
                .range(lo..=hi)
                .any(|q| q.luma < 2.0 * cfg.black_luma);
            if !dark {
                self.gradual_run_done = true;
                return Some(Transition::Dissolve);
            }
        }
        None
    }

    /// How straight the thumbnails travel from two pictures before `i` to `lookahead` after
    /// it: first-to-last distance over the path length (1 when fewer than 3 steps or no
    /// motion). `models/boundary.py` (`straightness`) computes the same.
    fn straightness(&self, i: usize) -> f32 {
        let lo = i.saturating_sub(2);
        let hi = (i + self.cfg.lookahead).min(self.window.len() - 1);
        if hi < lo + 3 {
            return 1.0;
        }
        let path: f32 = (lo..hi)
            .map(|j| thumb_distance(&self.window[j].thumb, &self.window[j + 1].thumb))
            .sum();
        if path <= 0.0 {
            return 1.0;
        }
        thumb_distance(&self.window[lo].thumb, &self.window[hi].thumb) / path
    }

    /// The highest learned gradual probability over `range` of the window (0 without one).
    fn max_gradual(&self, range: std::ops::RangeInclusive<usize>) -> f32 {
        self.window
            .range(range)
            .filter_map(|q| q.learned.map(|p| p.gradual))
            .fold(0.0, f32::max)
    }

    /// A gradual transition centred on frame `i` (see [`DetectorConfig::dissolve_half`]).
    fn is_dissolve(&self, i: usize) -> bool {
        let cfg = &self.cfg;
        let h = cfg.dissolve_half;
        if i < h || i + h >= self.window.len() {
            return false;
        }
        let frames: Vec<&Pending> = self.window.range(i - h..=i + h).collect();
        // Through black is a fade, handled on its own.
        if frames.iter().any(|p| p.luma < 2.0 * cfg.black_luma) {
            return false;
        }
        let change = thumb_distance(&frames[0].thumb, &frames[2 * h].thumb);
        if change < cfg.dissolve_change {
            return false;
        }
        let steps: Vec<f32> = frames
            .windows(2)
            .map(|w| thumb_distance(&w[0].thumb, &w[1].thumb))
            .collect();
        let path: f32 = steps.iter().sum();
        let max_step = steps.iter().copied().fold(0.0, f32::max);
        if change < cfg.dissolve_straightness * path || max_step > cfg.dissolve_max_step * change {
            return false;
        }
        let logs: Vec<f32> = frames.iter().filter_map(|p| p.log_surprise).collect();
        if logs.len() < h || self.history.len() < 3 {
            return false;
        }
        let mean = logs.iter().sum::<f32>() / logs.len() as f32;
        self.robust_z(mean).is_some_and(|z| z > cfg.dissolve_z)
    }

    /// Inside a flash (up to `lookahead` frames after it began): the spikes of the flash
    /// itself and of the jump back to the content before it are not cuts.
    fn ends_flash(&mut self, i: usize) -> bool {
        match self.flash_until {
            Some(until) if self.window[i].position <= until => true,
            _ => {
                self.flash_until = None;
                false
            }
        }
    }

    /// The end of a flash whose start was not a cut candidate: the picture at `i` is back to
    /// one of the `lookahead` pictures before the jump.
    fn returns_to_recent(&self, i: usize) -> bool {
        let jump = thumb_distance(&self.window[i - 1].thumb, &self.window[i].thumb);
        let from = i.saturating_sub(self.cfg.lookahead);
        (from..i.saturating_sub(1)).any(|j| {
            thumb_distance(&self.window[j].thumb, &self.window[i].thumb)
                < self.cfg.flash_return * jump
        })
    }

    /// A flash: the content after the spike returns to what it was before.
    fn is_flash(&self, i: usize) -> bool {
        let before = &self.window[i - 1].thumb;
        let jump = thumb_distance(before, &self.window[i].thumb);
        self.window
            .iter()
            .skip(i + 2)
            .any(|later| thumb_distance(before, &later.thumb) < self.cfg.flash_return * jump)
    }
}

/// Root-mean-square difference of two thumbnails.
pub fn thumb_distance(a: &[f32], b: &[f32]) -> f32 {
    let sum: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (sum / a.len().max(1) as f32).sqrt()
}

fn median(v: &mut [f32]) -> f32 {
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m
}

/// Thumbnail (per-patch channel means) and mean luminance of one patchified frame.
pub fn thumbnail(
    patches: &[f32],
    patch_dim: usize,
    mean: [f32; 3],
    std: [f32; 3],
) -> (Vec<f32>, f32) {
    let mut thumb = Vec::with_capacity(patches.len() / patch_dim * 3);
    let mut luma_sum = 0.0f64;
    for patch in patches.chunks_exact(patch_dim) {
        let mut sums = [0.0f32; 3];
        for (i, v) in patch.iter().enumerate() {
            sums[i % 3] += v;
        }
        let n = (patch_dim / 3) as f32;
        let means = sums.map(|s| s / n);
        thumb.extend_from_slice(&means);
        let rgb: Vec<f32> = (0..3).map(|c| means[c] * std[c] + mean[c]).collect();
        luma_sum += f64::from(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
    }
    let patches_n = (patches.len() / patch_dim).max(1);
    (thumb, (luma_sum / patches_n as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surprise_z_stays_high_through_a_long_event_and_thaws_after_a_lasting_change() {
        let mut r = ZReference::new(48);
        let noise = |k: usize| ((k * 7919) % 13) as f32 * 0.02;
        for k in 0..100 {
            r.score_and_learn(-3.0 + noise(k), false);
        }
        // A 60-frame event, 10x the surprise (ln 10 = 2.3 higher): unusual throughout.
        let event: Vec<f32> = (0..60)
            .map(|k| r.score_and_learn(-0.7 + noise(k), false).unwrap())
            .collect();
        assert!(event.iter().all(|&z| z > 5.0), "{event:?}");
        // Back to normal: z near 0 at once.
        assert!(r.score_and_learn(-3.0, false).unwrap().abs() < 1.0);
        // A change that lasts past MAX_FROZEN becomes the new normal.
        let last = (0..ZReference::MAX_FROZEN + 100)
            .map(|k| r.score_and_learn(-0.7 + noise(k), false).unwrap())
            .last()
            .unwrap();
        assert!(last.abs() < 1.0, "{last}");
    }

    fn frame(surprise: f32, level: f32) -> FrameSignal {
        FrameSignal {
            surprise: Some(surprise),
            thumb: vec![level; 12],
            luma: 0.5 + level / 10.0,
            learned: None,
        }
    }

    fn learned(cut: f32, gradual: f32, level: f32) -> FrameSignal {
        FrameSignal {
            learned: Some(BoundaryProbs { cut, gradual }),
            ..frame(0.02, level)
        }
    }

    fn boundaries(out: &[FrameDecision]) -> Vec<(usize, Transition)> {
        out.iter()
            .enumerate()
            .filter_map(|(i, d)| d.boundary.map(|b| (i, b)))
            .collect()
    }

    /// The rule here and `detect()` in models/boundary.py (which the leave-source-out
    /// validation scores) decide alike: the same boundaries, of the same kinds, on the heads'
    /// probabilities for real test videos (fixture: `models/boundary.py golden`).
    #[test]
    fn learned_rule_matches_the_python_replica() {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/boundary_rule_golden.json"))
                .unwrap();
        let floats = |v: &serde_json::Value| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        let mut seen = std::collections::BTreeSet::new();
        for (rule_name, rule) in golden["rules"].as_object().unwrap() {
            let cfg = DetectorConfig::default()
                .with_overrides(rule.as_str().unwrap())
                .unwrap();
            for video in golden["videos"].as_array().unwrap() {
                let (cut, gradual, luma) = (
                    floats(&video["cut"]),
                    floats(&video["gradual"]),
                    floats(&video["luma"]),
                );
                let signals: Vec<FrameSignal> = (0..cut.len())
                    .map(|i| FrameSignal {
                        surprise: (i > 0).then_some(0.02),
                        thumb: floats(&video["thumb"][i]),
                        luma: luma[i],
                        learned: Some(BoundaryProbs {
                            cut: cut[i],
                            gradual: gradual[i],
                        }),
                    })
                    .collect();
                let got: Vec<(usize, &str)> = boundaries(&run_with(cfg.clone(), signals))
                    .into_iter()
                    .map(|(i, t)| (i, t.as_str()))
                    .collect();
                let want: Vec<(usize, &str)> = video["expected"][rule_name]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| (b[0].as_u64().unwrap() as usize, b[1].as_str().unwrap()))
                    .collect();
                assert_eq!(got, want, "{} with the {rule_name} rule", video["name"]);
                seen.extend(want.iter().map(|b| b.1));
            }
        }
        // the fixture exercises every kind
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    #[test]
    fn learned_cut_is_a_peak_of_the_cut_probability() {
        // 0.9 at 30 with a raised neighbour after it: one cut, at the peak
        let signals: Vec<FrameSignal> = (0..60)
            .map(|i| match i {
                30 => learned(0.9, 0.0, 1.0),
                31 => learned(0.6, 0.0, 1.0),
                29 => learned(0.3, 0.0, 0.0),
                _ => learned(0.01, 0.0, if i > 30 { 1.0 } else { 0.0 }),
            })
            .collect();
        assert_eq!(boundaries(&run(signals)), vec![(30, Transition::Cut)]);
    }

    #[test]
    fn learned_cut_below_threshold_or_on_a_flash_is_not_a_cut() {
        let weak: Vec<FrameSignal> = (0..40)
            .map(|i| learned(if i == 20 { 0.45 } else { 0.0 }, 0.0, 0.0))
            .collect();
        assert!(boundaries(&run(weak)).is_empty());
        // the picture jumps at 20 and is back at 22: a flash, whatever the model says
        let flash: Vec<FrameSignal> = (0..40)
            .map(|i| {
                learned(
                    if i == 20 { 0.95 } else { 0.0 },
                    0.0,
                    if i == 20 || i == 21 { 3.0 } else { 0.0 },
                )
            })
            .collect();
        assert!(boundaries(&run(flash)).is_empty());
    }

    #[test]
    fn learned_cut_where_the_picture_returns_from_a_flash_is_not_a_cut() {
        // frames 20-21 bright, the model only fires on the return at 22
        let signals: Vec<FrameSignal> = (0..40)
            .map(|i| {
                learned(
                    if i == 22 { 0.95 } else { 0.0 },
                    0.0,
                    if i == 20 || i == 21 { 3.0 } else { 0.0 },
                )
            })
            .collect();
        assert!(boundaries(&run(signals)).is_empty());
    }

    #[test]
    fn learned_gradual_run_gives_one_dissolve_at_its_start() {
        let signals: Vec<FrameSignal> = (0..80)
            .map(|i| {
                let g = if (30..50).contains(&i) { 0.9 } else { 0.1 };
                learned(0.0, g, i as f32 / 80.0)
            })
            .collect();
        assert_eq!(boundaries(&run(signals)), vec![(30, Transition::Dissolve)]);
        // two frames above the threshold are not enough for the default of three
        let short: Vec<FrameSignal> = (0..40)
            .map(|i| learned(0.0, if i == 10 || i == 11 { 0.9 } else { 0.0 }, 0.0))
            .collect();
        assert!(boundaries(&run(short)).is_empty());
    }

    #[test]
    fn learned_fade_needs_the_gradual_probability_and_is_reported_once() {
        let cfg = DetectorConfig {
            learned_fade_gradual: 0.5,
            ..DetectorConfig::default()
        };
        let with_luma = |gradual: f32, luma: f32| FrameSignal {
            luma,
            ..learned(0.0, gradual, 0.0)
        };
        // dark footage dipping under black_luma while the model sees no transition
        let dark: Vec<FrameSignal> = (0..40)
            .map(|i| with_luma(0.05, if (20..23).contains(&i) { 0.05 } else { 0.07 }))
            .collect();
        assert!(boundaries(&run_with(cfg.clone(), dark.clone())).is_empty());
        assert_eq!(
            boundaries(&run(dark)),
            vec![(23, Transition::Fade)],
            "without the setting every return from black is a fade"
        );
        // a short fade through black the model marks as gradual: one fade, at the return
        let short: Vec<FrameSignal> = (0..70)
            .map(|i| match i {
                40..=44 => with_luma(0.95, 0.5 - 0.1 * (i - 39) as f32),
                45..=47 => with_luma(0.95, 0.0),
                48..=52 => with_luma(0.95, 0.1 * (i - 47) as f32),
                _ => with_luma(0.05, 0.5),
            })
            .collect();
        assert_eq!(
            boundaries(&run_with(cfg.clone(), short)),
            vec![(48, Transition::Fade)]
        );
        // a long fade-out first reported as a dissolve is not reported again at the return
        let long: Vec<FrameSignal> = (0..80)
            .map(|i| match i {
                20..=39 => with_luma(0.95, 0.5 - 0.025 * (i - 19) as f32),
                40..=42 => with_luma(0.95, 0.0),
                43..=47 => with_luma(0.95, 0.1 * (i - 42) as f32),
                _ => with_luma(0.05, 0.5),
            })
            .collect();
        assert_eq!(
            boundaries(&run_with(cfg, long)),
            vec![(20, Transition::Dissolve)]
        );
    }

    #[test]
    fn learned_dissolve_must_travel_a_straight_path_when_asked() {
        let cfg = DetectorConfig {
            learned_straightness: 0.7,
            ..DetectorConfig::default()
        };
        let with_thumb = |gradual: f32, thumb: Vec<f32>| FrameSignal {
            thumb,
            ..learned(0.0, gradual, 0.0)
        };
        // a cross-fade: every thumbnail value moves steadily from 0 to 1
        let fade: Vec<FrameSignal> = (0..60)
            .map(|i| {
                let a = ((i as f32 - 20.0) / 12.0).clamp(0.0, 1.0);
                with_thumb(if (20..32).contains(&i) { 0.9 } else { 0.1 }, vec![a; 12])
            })
            .collect();
        assert_eq!(
            boundaries(&run_with(cfg.clone(), fade)),
            vec![(20, Transition::Dissolve)]
        );
        // the same probabilities while the picture goes back and forth (a camera shake)
        let shake: Vec<FrameSignal> = (0..60)
            .map(|i| {
                let g = if (20..32).contains(&i) { 0.9 } else { 0.1 };
                with_thumb(g, vec![if i % 2 == 0 { 0.0 } else { 0.5 }; 12])
            })
            .collect();
        assert!(boundaries(&run_with(cfg, shake.clone())).is_empty());
        assert_eq!(
            boundaries(&run(shake)),
            vec![(20, Transition::Dissolve)],
            "off by default"
        );
    }

    fn run(signals: Vec<FrameSignal>) -> Vec<FrameDecision> {
        run_with(DetectorConfig::default(), signals)
    }

    fn run_with(cfg: DetectorConfig, signals: Vec<FrameSignal>) -> Vec<FrameDecision> {
        let mut d = ShotDetector::new(cfg);
        let mut out = vec![];
        for s in signals {
            out.extend(d.push(s));
        }
        out.extend(d.finish());
        out
    }

    fn noise(i: usize) -> f32 {
        0.02 + 0.005 * ((i * 7919 % 13) as f32 / 13.0)
    }

    #[test]
    fn a_spike_with_new_content_is_a_cut() {
        let signals: Vec<FrameSignal> = (0..60)
            .map(|i| {
                if i == 30 {
                    frame(1.0, 1.0)
                } else {
                    frame(noise(i), if i >= 30 { 1.0 } else { 0.0 })
                }
            })
            .collect();
        let out = run(signals);
        assert_eq!(out.len(), 60);
        let cuts: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, d)| d.boundary.is_some())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(cuts, vec![30]);
        assert_eq!(out[30].boundary, Some(Transition::Cut));
    }

    #[test]
    fn overrides_parse_and_refuse_nonsense() {
        let c = DetectorConfig::default()
            .with_overrides("cut_peak=3.5, dissolve_half=4")
            .unwrap();
        assert_eq!((c.cut_peak, c.dissolve_half), (3.5, 4));
        for bad in ["nope=1", "cut_peak", "cut_peak=x", "lookahead=1"] {
            assert!(
                DetectorConfig::default().with_overrides(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_flash_is_not_a_cut() {
        let signals: Vec<FrameSignal> = (0..60)
            .map(|i| match i {
                30 | 31 => frame(1.0, 2.0),
                32 => frame(1.0, 0.0),
                _ => frame(noise(i), 0.0),
            })
            .collect();
        assert!(run(signals).iter().all(|d| d.boundary.is_none()));
    }

    #[test]
    fn causal_decisions_do_not_depend_on_the_future_past_the_lookahead() {
        let signals: Vec<FrameSignal> = (0..80)
            .map(|i| {
                if i % 25 == 24 {
                    frame(2.0, ((i + 1) / 25) as f32)
                } else {
                    frame(noise(i), ((i + 1) / 25) as f32)
                }
            })
            .collect();
        let whole = run(signals.clone());
        assert!(whole.iter().filter(|d| d.boundary.is_some()).count() >= 3);
        for cut_at in [10, 30, 49, 60] {
            let prefix = run(signals[..cut_at].to_vec());
            let settled = cut_at - DetectorConfig::default().lookahead;
            assert_eq!(
                &whole[..settled],
                &prefix[..settled],
                "video cut at {cut_at}"
            );
        }
    }
}
