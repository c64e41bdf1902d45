//! Which decoded frames are analyzed: `--every N`, `--fps F`, `--max-frames N`,
//! `--start`/`--end` (seconds). Pure: decides from the frame index and timestamp alone, so
//! the decoder converts only the frames kept.

/// The sampling settings, validated by [`crate::settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSpec {
    /// Keep every N-th frame of the range (1 = all).
    pub every: u64,
    /// Keep the first frame at or after each tick of a `target_fps` grid.
    pub target_fps: Option<f64>,
    pub max_frames: Option<u64>,
    /// Range start in seconds from the stream start (inclusive).
    pub start_s: f64,
    /// Range end in seconds (exclusive).
    pub end_s: Option<f64>,
    /// Decode key frames only (the decoder skips the others before decoding them).
    pub keyframes_only: bool,
}

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            every: 1,
            target_fps: None,
            max_frames: None,
            start_s: 0.0,
            end_s: None,
            keyframes_only: false,
        }
    }
}

impl SampleSpec {
    /// True when sampling stops before the end of the stream on purpose, so a shorter
    /// decode is not evidence of truncation.
    pub fn may_stop_early(&self) -> bool {
        self.max_frames.is_some() || self.end_s.is_some()
    }
}

impl SampleSpec {
    /// About how many frames this spec keeps from a video (for progress bars; None when
    /// the video does not say enough).
    pub fn expected_frames(&self, fps: Option<f64>, duration_s: Option<f64>) -> Option<u64> {
        let duration = duration_s?;
        let span = (self.end_s.unwrap_or(duration).min(duration) - self.start_s).max(0.0);
        let n = match (self.target_fps, fps) {
            (Some(target), Some(fps)) => span * target.min(fps),
            (Some(target), None) => span * target,
            (None, Some(fps)) if !self.keyframes_only => span * fps / self.every as f64,
            _ => return None,
        };
        let n = n.round() as u64;
        Some(self.max_frames.map_or(n, |m| n.min(m)).max(1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Skip,
    /// Nothing after this frame can be kept: stop decoding.
    Stop,
}

/// Applies a [`SampleSpec`] to the decoded frames of one video, in presentation order.
#[derive(Debug, Clone)]
pub struct Sampler {
    spec: SampleSpec,
    in_range: u64,
    kept: u64,
    next_tick_s: Option<f64>,
}

/// Half a microsecond: timestamps are rationals turned into f64.
const EPS_S: f64 = 5e-7;

impl Sampler {
    pub fn new(spec: SampleSpec) -> Self {
        Sampler {
            spec,
            in_range: 0,
            kept: 0,
            next_tick_s: None,
        }
    }

    pub fn spec(&self) -> &SampleSpec {
        &self.spec
    }

    pub fn kept(&self) -> u64 {
        self.kept
    }

    /// True once `max_frames` frames were kept.
    pub fn is_full(&self) -> bool {
        self.spec.max_frames.is_some_and(|m| self.kept >= m)
    }

    pub fn decide(&mut self, pts_seconds: f64) -> Decision {
        if self.is_full() {
            return Decision::Stop;
        }
        if self
            .spec
            .end_s
            .is_some_and(|end| pts_seconds >= end - EPS_S)
        {
            return Decision::Stop;
        }
        if pts_seconds < self.spec.start_s - EPS_S {
            return Decision::Skip;
        }
        let position = self.in_range;
        self.in_range += 1;
        let keep = match self.spec.target_fps {
            Some(fps) => {
                let start = self.spec.start_s;
                let tick = *self.next_tick_s.get_or_insert(start);
                if pts_seconds + EPS_S >= tick {
                    // The next tick strictly after this frame (frames may skip ticks).
                    let k = ((pts_seconds - start) * fps + EPS_S * fps).floor() + 1.0;
                    self.next_tick_s = Some(start + k / fps);
                    true
                } else {
                    false
                }
            }
            None => position.is_multiple_of(self.spec.every),
        };
        if keep {
            self.kept += 1;
            Decision::Keep
        } else {
            Decision::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kept(spec: SampleSpec, fps: f64, n: u64) -> Vec<u64> {
        let mut s = Sampler::new(spec);
        let mut out = vec![];
        for i in 0..n {
            match s.decide(i as f64 / fps) {
                Decision::Keep => out.push(i),
                Decision::Skip => {}
                Decision::Stop => break,
            }
        }
        out
    }

    #[test]
    fn table() {
        let d = SampleSpec::default;
        let cases: Vec<(SampleSpec, Vec<u64>)> = vec![
            (d(), (0..10).collect()),
            (SampleSpec { every: 3, ..d() }, vec![0, 3, 6, 9]),
            (
                SampleSpec {
                    max_frames: Some(4),
                    ..d()
                },
                vec![0, 1, 2, 3],
            ),
            (
                SampleSpec {
                    target_fps: Some(2.0),
                    ..d()
                },
                vec![0, 5],
            ),
            (
                SampleSpec {
                    target_fps: Some(5.0),
                    ..d()
                },
                vec![0, 2, 4, 6, 8],
            ),
            (
                SampleSpec {
                    start_s: 0.2,
                    end_s: Some(0.3),
                    ..d()
                },
                vec![2],
            ),
            (
                SampleSpec {
                    start_s: 0.1,
                    every: 4,
                    ..d()
                },
                vec![1, 5, 9],
            ),
            (
                SampleSpec {
                    start_s: 0.15,
                    target_fps: Some(4.0),
                    ..d()
                },
                vec![2, 4, 7, 9],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(kept(spec.clone(), 10.0, 10), want, "{spec:?}");
        }
    }

    #[test]
    fn expected_frames_follow_the_spec() {
        let d = SampleSpec::default;
        assert_eq!(d().expected_frames(Some(25.0), Some(10.0)), Some(250));
        assert_eq!(
            SampleSpec { every: 5, ..d() }.expected_frames(Some(25.0), Some(10.0)),
            Some(50)
        );
        assert_eq!(
            SampleSpec {
                target_fps: Some(2.0),
                ..d()
            }
            .expected_frames(Some(25.0), Some(10.0)),
            Some(20)
        );
        let ranged = SampleSpec {
            start_s: 2.0,
            end_s: Some(4.0),
            max_frames: Some(30),
            ..d()
        };
        assert_eq!(ranged.expected_frames(Some(25.0), Some(10.0)), Some(30));
        assert_eq!(
            SampleSpec {
                keyframes_only: true,
                ..d()
            }
            .expected_frames(Some(25.0), Some(10.0)),
            None
        );
        assert_eq!(d().expected_frames(Some(25.0), None), None);
    }

    #[test]
    fn fps_grid_on_29_97() {
        // 29.97 fps sampled at 2 fps: one frame per half second, never two on one tick.
        let got = kept(
            SampleSpec {
                target_fps: Some(2.0),
                ..Default::default()
            },
            30000.0 / 1001.0,
            300,
        );
        assert_eq!(got.len(), 20);
        assert!(
            got.windows(2)
                .all(|w| (w[1] - w[0]) == 15 || (w[1] - w[0]) == 16),
            "{got:?}"
        );
    }

    proptest! {
        #[test]
        fn every_n_keeps_ceil_len_over_n(n in 1u64..500, every in 1u64..20) {
            let got = kept(SampleSpec { every, ..Default::default() }, 25.0, n);
            prop_assert_eq!(got.len() as u64, n.div_ceil(every));
        }

        #[test]
        fn fps_never_exceeds_target_rate(n in 1u64..600, src in 5.0f64..60.0, target in 0.5f64..30.0) {
            let got = kept(SampleSpec { target_fps: Some(target), ..Default::default() }, src, n);
            let duration = n as f64 / src;
            prop_assert!(got.len() as f64 <= (duration * target).floor() + 1.0);
            // Kept frames are never closer than one tick apart (minus a source frame of jitter).
            for w in got.windows(2) {
                prop_assert!((w[1] - w[0]) as f64 / src >= 1.0 / target - 1.0 / src - 1e-9);
            }
        }

        #[test]
        fn max_frames_is_respected(n in 0u64..200, max in 0u64..50) {
            let got = kept(SampleSpec { max_frames: Some(max), ..Default::default() }, 25.0, n);
            prop_assert_eq!(got.len() as u64, n.min(max));
        }
    }
}
