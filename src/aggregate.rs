//! Per-file aggregation, on the writer thread: the owned steps of one video arrive in
//! batches (in any order), are put back in order, and become frames.csv rows as the shot
//! detector decides each frame, embeddings.npy rows, the shot list (shots.csv and, when
//! asked, scenes.csv) and finally the video's clips.csv row. No threads here.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use anyhow::Result;

use crate::decode::DecodeSummary;
use crate::discover::InputFile;
use crate::model::ModelContract;
use crate::npy::NpyStream;
use crate::rows::{self, ClipRow, FrameRow, ScenesFormat, Status};
use crate::score::FrameMeta;
use crate::shots::{BoundaryProbs, DetectorConfig, FrameDecision, FrameSignal, Shot, ShotDetector};
use crate::write::{self, CsvStream};

/// What the per-file outputs are and where they go.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Each input's files go to `output_dir/<input's relative path>/`.
    pub output_dir: PathBuf,
    /// Write embeddings.npy.
    pub embeddings: bool,
    /// Shot lists besides shots.csv (sorted, no duplicates, never `Framegpt`).
    pub scenes_format: Vec<ScenesFormat>,
    pub detector: DetectorConfig,
}

impl OutputConfig {
    /// Per-input files a finished input has.
    pub fn files(&self) -> Vec<&'static str> {
        let mut f = vec!["frames.csv", "shots.csv"];
        if self.embeddings {
            f.push("embeddings.npy");
        }
        f.extend(
            self.scenes_format
                .iter()
                .filter_map(|&s| crate::export::file_name(s)),
        );
        f
    }
}

/// What inference gives the writer for one owned step.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub frame: FrameMeta,
    /// The shot detector's thumbnail and mean luminance of the frame.
    pub thumb: Vec<f32>,
    pub luma: f32,
    pub embedding: Vec<f32>,
    pub probs: Option<Vec<f32>>,
    /// Surprise of the next sampled frame, when there is one.
    pub next_surprise: Option<f32>,
    /// Its `anomaly`, when the model has a per-camera normal.
    pub next_anomaly: Option<f32>,
    /// Frames after this one that repeat its picture: they get rows of their own with this
    /// frame's results (surprise 0, never a boundary, `repeated` = 1).
    pub repeats: Vec<FrameMeta>,
}

/// One batch of a file as inference returns it: owned steps, and the boundary
/// probabilities of the positions its windows own.
type Batch = (Vec<StepResult>, Vec<(u64, BoundaryProbs)>);

/// A frame waiting for its shot decision, with what its rows need.
struct Waiting {
    frame: FrameMeta,
    surprise: Option<f32>,
    anomaly: Option<f32>,
    label: Option<(usize, f32)>,
    learned: Option<BoundaryProbs>,
    repeats: Vec<FrameMeta>,
}

/// Mean and maximum of one per-frame column over a video, and when the maximum was first
/// reached.
#[derive(Debug, Default)]
struct ColumnStats {
    sum: f64,
    count: u64,
    max: Option<f32>,
    max_at: Option<f64>,
}

impl ColumnStats {
    fn add(&mut self, v: f32, time_s: f64) {
        self.sum += f64::from(v);
        self.count += 1;
        if self.max.is_none_or(|m| v > m) {
            self.max = Some(v);
            self.max_at = Some(time_s);
        }
    }

    fn mean(&self) -> Option<f32> {
        (self.count > 0).then(|| (self.sum / self.count as f64) as f32)
    }
}

/// The outputs of one video while it is being written.
pub struct FileOutput {
    video: String,
    dir: PathBuf,
    /// The input file (the OpenTimelineIO export references it).
    source: PathBuf,
    labels: Option<Vec<String>>,
    frames: CsvStream,
    npy: Option<NpyStream>,
    detector: ShotDetector,
    /// Contract v2: a frame's boundary probabilities may come from the next window, so
    /// frames wait in `unscored` until theirs are in `boundary`.
    learned: bool,
    boundary: BTreeMap<u64, BoundaryProbs>,
    unscored: VecDeque<StepResult>,
    waiting: VecDeque<Waiting>,
    carried_surprise: Option<f32>,
    carried_anomaly: Option<f32>,
    next_seq: u64,
    reorder: BTreeMap<u64, Batch>,
    shots: Vec<Shot>,
    frames_written: u64,
    last_pts: f64,
    surprise: ColumnStats,
    anomaly: ColumnStats,
    label_counts: Vec<u64>,
}

impl FileOutput {
    /// Opens frames.csv (and embeddings.npy) under temporary names.
    pub fn create(
        config: &OutputConfig,
        input: &InputFile,
        contract: &ModelContract,
    ) -> Result<Self> {
        let dir = config.output_dir.join(&input.rel);
        let frames = CsvStream::create(&dir.join("frames.csv"), &rows::FRAMES_HEADER)?;
        let npy = if config.embeddings {
            Some(NpyStream::create(
                &dir.join("embeddings.npy"),
                contract.embedding_dim,
            )?)
        } else {
            None
        };
        Ok(FileOutput {
            video: crate::manifest::rel_key(&input.rel),
            dir,
            source: input.path.clone(),
            labels: contract.labels.clone(),
            frames,
            npy,
            detector: ShotDetector::new(config.detector.clone()),
            learned: contract.boundary.is_some(),
            boundary: BTreeMap::new(),
            unscored: VecDeque::new(),
            waiting: VecDeque::new(),
            carried_surprise: None,
            carried_anomaly: None,
            next_seq: 0,
            reorder: BTreeMap::new(),
            shots: Vec::new(),
            frames_written: 0,
            last_pts: 0.0,
            surprise: ColumnStats::default(),
            anomaly: ColumnStats::default(),
            label_counts: vec![0; contract.num_labels()],
        })
    }

    /// Takes batch `seq` of this file; writes every batch that is now in order.
    pub fn accept(
        &mut self,
        seq: u64,
        steps: Vec<StepResult>,
        boundary: Vec<(u64, BoundaryProbs)>,
    ) -> Result<()> {
        self.reorder.insert(seq, (steps, boundary));
        while let Some((steps, boundary)) = self.reorder.remove(&self.next_seq) {
            self.next_seq += 1;
            self.boundary.extend(boundary);
            self.unscored.extend(steps);
            self.score_ready(false)?;
        }
        Ok(())
    }

    /// Passes on the frames whose boundary probabilities are in (all of them at the end).
    fn score_ready(&mut self, at_end: bool) -> Result<()> {
        while let Some(front) = self.unscored.front() {
            let learned = self.boundary.remove(&front.frame.position);
            if self.learned && learned.is_none() && !at_end {
                break;
            }
            let s = self.unscored.pop_front().expect("front exists");
            self.step(s, learned)?;
        }
        Ok(())
    }

    fn step(&mut self, s: StepResult, learned: Option<BoundaryProbs>) -> Result<()> {
        let surprise = self.carried_surprise.take();
        self.carried_surprise = s.next_surprise;
        let anomaly = std::mem::replace(&mut self.carried_anomaly, s.next_anomaly);
        if let Some(v) = surprise {
            self.surprise.add(v, s.frame.pts_seconds);
        }
        if let Some(npy) = &mut self.npy {
            for _ in 0..=s.repeats.len() {
                npy.row(&s.embedding)?;
            }
        }
        let label = s.probs.as_ref().and_then(|p| {
            p.iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))
        });
        if let Some((k, _)) = label {
            self.label_counts[k] += 1;
        }
        self.waiting.push_back(Waiting {
            frame: s.frame,
            surprise,
            anomaly,
            label,
            learned,
            repeats: s.repeats,
        });
        let decisions = self.detector.push(FrameSignal {
            surprise,
            thumb: s.thumb,
            luma: s.luma,
            learned,
        });
        self.write_decided(decisions)
    }

    fn write_decided(&mut self, decisions: Vec<FrameDecision>) -> Result<()> {
        for d in decisions {
            let w = self
                .waiting
                .pop_front()
                .expect("a decision per waiting frame");
            let (meta, surprise, label) = (w.frame, w.surprise, w.label);
            self.extend_shots(&meta, &d, label, &w.repeats);
            let is_cut = d.boundary.is_some() && self.frames_written > 0;
            let (label_name, confidence) = match (label, &self.labels) {
                (Some((k, p)), Some(names)) => (Some(names[k].as_str()), Some(p)),
                _ => (None, None),
            };
            self.frames.row(&FrameRow {
                video: &self.video,
                frame: meta.index,
                time_s: meta.pts_seconds,
                surprise,
                surprise_z: d.surprise_z,
                is_cut: u8::from(is_cut),
                shot: self.shots.len() - 1,
                label: label_name,
                confidence,
                repeated: 0,
                boundary_prob: w.learned.map(|p| p.cut),
                gradual_prob: w.learned.map(|p| p.gradual),
                anomaly: w.anomaly,
            })?;
            // A repeated picture brings nothing new: surprise 0, no boundary, the label and
            // the anomaly of the picture it repeats.
            for r in &w.repeats {
                self.frames.row(&FrameRow {
                    video: &self.video,
                    frame: r.index,
                    time_s: r.pts_seconds,
                    surprise: Some(0.0),
                    surprise_z: None,
                    is_cut: 0,
                    shot: self.shots.len() - 1,
                    label: label_name,
                    confidence,
                    repeated: 1,
                    boundary_prob: None,
                    gradual_prob: None,
                    // How unusual the picture is, unlike how much it changed, carries over.
                    anomaly: w.anomaly,
                })?;
            }
            if let Some(a) = w.anomaly {
                self.anomaly.add(a, meta.pts_seconds);
            }
            for r in &w.repeats {
                self.surprise.add(0.0, r.pts_seconds);
                if let Some(a) = w.anomaly {
                    self.anomaly.add(a, r.pts_seconds);
                }
            }
            self.frames_written += 1 + w.repeats.len() as u64;
            self.last_pts = w.repeats.last().map_or(meta.pts_seconds, |r| r.pts_seconds);
        }
        Ok(())
    }

    /// Opens a shot at a boundary (or at the first frame) and adds the frame to it.
    fn extend_shots(
        &mut self,
        meta: &FrameMeta,
        d: &FrameDecision,
        label: Option<(usize, f32)>,
        repeats: &[FrameMeta],
    ) {
        if self.shots.is_empty() || d.boundary.is_some() {
            if let Some(last) = self.shots.last_mut() {
                last.end_s = meta.pts_seconds;
            }
            let transition = if self.shots.is_empty() {
                None
            } else {
                d.boundary
            };
            self.shots.push(Shot {
                start_frame: meta.index,
                end_frame: meta.index,
                start_s: meta.pts_seconds,
                end_s: meta.pts_seconds,
                transition,
                label_counts: vec![0; self.label_counts.len()],
            });
        }
        let shot = self.shots.last_mut().expect("a shot was opened");
        shot.end_frame = repeats.last().map_or(meta.index, |r| r.index);
        if let Some((k, _)) = label {
            shot.label_counts[k] += 1 + repeats.len() as u64;
            self.label_counts[k] += repeats.len() as u64;
        }
    }

    /// Flushes the detector, closes the last shot, renames everything into place and
    /// returns the video's clips.csv row. When any file cannot be written (a full disk),
    /// none of the video's files is kept: no orphan shots.csv next to a missing frames.csv.
    pub fn finish(self, config: &OutputConfig, summary: &DecodeSummary) -> Result<ClipRow> {
        let dir = self.dir.clone();
        let result = self.finish_files(config, summary);
        if result.is_err() {
            for name in config.files() {
                let _ = std::fs::remove_file(dir.join(name));
            }
            write::remove_empty_dirs(&dir, &config.output_dir);
        }
        result
    }

    /// Drops a video's unfinished outputs (their temporaries go) and the folders that
    /// were made only for them.
    pub fn discard(self, config: &OutputConfig) {
        let dir = self.dir.clone();
        drop(self);
        write::remove_empty_dirs(&dir, &config.output_dir);
    }

    fn finish_files(mut self, config: &OutputConfig, summary: &DecodeSummary) -> Result<ClipRow> {
        self.score_ready(true)?;
        let decisions = self.detector.finish();
        self.write_decided(decisions)?;
        let frame_s = summary.info.fps.map_or(0.0, |f| 1.0 / f);
        if let Some(last) = self.shots.last_mut() {
            last.end_s = self.last_pts + frame_s;
        }
        write::write_csv_atomic(
            &self.dir.join("shots.csv"),
            &rows::SHOTS_HEADER,
            &rows::shot_rows(&self.video, &self.shots, self.labels.as_deref()),
        )?;
        if config.scenes_format.contains(&ScenesFormat::Pyscenedetect) {
            write::write_pyscenedetect(&self.dir.join("scenes.csv"), &self.shots)?;
        }
        crate::export::write_scene_files(
            &self.dir,
            &config.scenes_format,
            &self.video,
            &self.source,
            &crate::export::spans(&self.shots),
            summary.info.fps,
        )?;
        let row = self.clip_row(summary);
        self.frames.finish()?;
        if let Some(npy) = self.npy {
            npy.finish()?;
        }
        Ok(row)
    }

    fn clip_row(&self, summary: &DecodeSummary) -> ClipRow {
        let top = self
            .label_counts
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| **c);
        let top_label = match (&self.labels, top) {
            (Some(names), Some((k, count))) if self.frames_written > 0 => {
                Some((names[k].clone(), *count as f32 / self.frames_written as f32))
            }
            _ => None,
        };
        let error = summary.error.as_ref().map(ToString::to_string);
        ClipRow {
            video: self.video.clone(),
            status: if error.is_some() {
                Status::Error
            } else {
                Status::Ok
            },
            error,
            duration_s: summary.info.duration_s.or(Some(summary.end_seconds)),
            frames_decoded: summary.frames_decoded,
            frames_analyzed: self.frames_written,
            decode_errors: summary.decode_errors,
            shots: self.shots.len() as u64,
            mean_surprise: self.surprise.mean(),
            max_surprise: self.surprise.max,
            mean_anomaly: self.anomaly.mean(),
            max_anomaly: self.anomaly.max,
            max_anomaly_s: self.anomaly.max_at,
            top_label_share: top_label.as_ref().map(|(_, s)| *s),
            top_label: top_label.map(|(l, _)| l),
            elapsed_s: 0.0,
        }
    }
}
