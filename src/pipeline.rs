//! The threads of `analyze`, all in this file (fd `walk.rs`): stages joined by bounded
//! channels inside `std::thread::scope`, so memory stays flat however long the video.
//!
//! ```text
//! decode workers (--jobs, one file each) ──Work──▶ inference workers (one session each)
//!        decode · sample · patchify · window          run model · surprise · thumbnails
//!                                                          │ Scored
//!                                                          ▼
//!                                   one writer (this thread): per-file order restored,
//!                                   shot detection, atomic CSV/.npy, clips.csv rows
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, Sender};
use ndarray::Array4;
use rayon::prelude::*;

use crate::cli::ScenesFormat;
use crate::decode::{self, DecodeError, DecodeOptions, DecodeSummary};
use crate::discover::InputFile;
use crate::model::{Model, ModelContract};
use crate::patchify::Patchifier;
use crate::progress::Progress;
use crate::sample::{SampleSpec, Sampler};
use crate::score::{self, FrameMeta, Window, Windower};
use crate::shots::{self, DetectorConfig, FrameSignal, ShotDetector};
use crate::write::{self, CsvStream, NpyStream, Shot};

/// What the pipeline needs to know, already validated.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub output_dir: PathBuf,
    pub sample: SampleSpec,
    pub batch_windows: usize,
    pub window_stride: usize,
    pub decode_jobs: usize,
    pub ffmpeg_threads: usize,
    pub embeddings: bool,
    pub scenes_format: ScenesFormat,
    pub detector: DetectorConfig,
}

/// One row of clips.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRow {
    pub video: String,
    pub error: Option<String>,
    pub duration_s: Option<f64>,
    pub frames_decoded: u64,
    pub frames_analyzed: u64,
    pub decode_errors: u64,
    pub shots: u64,
    pub mean_surprise: Option<f32>,
    pub max_surprise: Option<f32>,
    pub top_label: Option<(String, f32)>,
    pub elapsed_s: f64,
}

impl ClipRow {
    pub fn failed(video: String, error: String) -> Self {
        ClipRow {
            video,
            error: Some(error),
            duration_s: None,
            frames_decoded: 0,
            frames_analyzed: 0,
            decode_errors: 0,
            shots: 0,
            mean_surprise: None,
            max_surprise: None,
            top_label: None,
            elapsed_s: 0.0,
        }
    }

    pub fn to_record(&self) -> Vec<String> {
        let f = |v: Option<f64>, d: usize| v.map_or(String::new(), |x| format!("{x:.d$}"));
        vec![
            self.video.clone(),
            if self.error.is_some() { "error" } else { "ok" }.to_string(),
            self.error.clone().unwrap_or_default(),
            f(self.duration_s, 3),
            self.frames_decoded.to_string(),
            self.frames_analyzed.to_string(),
            self.decode_errors.to_string(),
            self.shots.to_string(),
            write::opt_f32(self.mean_surprise, 6),
            write::opt_f32(self.max_surprise, 6),
            self.top_label
                .as_ref()
                .map_or(String::new(), |(l, _)| l.clone()),
            self.top_label
                .as_ref()
                .map_or(String::new(), |(_, s)| format!("{s:.4}")),
            format!("{:.3}", self.elapsed_s),
        ]
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// (input index, row) in input order; inputs not finished because of an interrupt
    /// have no row.
    pub rows: Vec<(usize, ClipRow)>,
    pub interrupted: bool,
    pub frames_analyzed: u64,
}

struct Batch {
    file: usize,
    seq: u64,
    windows: Vec<Window>,
}

struct FileDone {
    file: usize,
    batches: u64,
    started: Instant,
    outcome: Result<DecodeSummary, DecodeError>,
}

enum Work {
    Batch(Batch),
    Done(FileDone),
}

/// What the inference stage returns for one owned step.
struct StepResult {
    frame: FrameMeta,
    thumb: Vec<f32>,
    luma: f32,
    embedding: Vec<f32>,
    probs: Option<Vec<f32>>,
    /// Surprise of the next sampled frame, when there is one.
    next_surprise: Option<f32>,
}

enum Scored {
    Batch {
        file: usize,
        seq: u64,
        steps: Vec<StepResult>,
    },
    Failed {
        file: usize,
        error: String,
    },
    Done(FileDone),
}

/// Runs the whole pipeline over `files` with one inference worker per model.
pub fn run(
    config: &PipelineConfig,
    files: &[InputFile],
    models: Vec<Model>,
    progress: &Progress,
    cancel: &AtomicBool,
    on_finished: &mut dyn FnMut(&InputFile, &ClipRow),
) -> Result<RunReport> {
    let contract = models
        .first()
        .expect("at least one model")
        .contract()
        .clone();
    let patchifier = Patchifier::new(&contract);
    let (job_tx, job_rx) = crossbeam_channel::unbounded::<usize>();
    for i in 0..files.len() {
        job_tx.send(i).expect("receiver alive");
    }
    drop(job_tx);
    let (work_tx, work_rx) = bounded::<Work>(4);
    let (scored_tx, scored_rx) = bounded::<Scored>(8);
    let frames_total = AtomicU64::new(0);
    let started = Instant::now();

    std::thread::scope(|scope| {
        for _ in 0..config.decode_jobs.min(files.len()).max(1) {
            let (job_rx, work_tx) = (job_rx.clone(), work_tx.clone());
            let (patchifier, contract) = (&patchifier, &contract);
            scope.spawn(move || {
                decode_worker(
                    config, files, contract, patchifier, &job_rx, &work_tx, progress, cancel,
                )
            });
        }
        drop(work_tx);
        for model in models {
            let (work_rx, scored_tx) = (work_rx.clone(), scored_tx.clone());
            scope.spawn(move || inference_worker(model, &work_rx, &scored_tx));
        }
        drop(scored_tx);
        drop(work_rx);
        writer(
            config,
            files,
            &contract,
            &scored_rx,
            progress,
            cancel,
            &frames_total,
            started,
            on_finished,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn decode_worker(
    config: &PipelineConfig,
    files: &[InputFile],
    contract: &ModelContract,
    patchifier: &Patchifier,
    jobs: &Receiver<usize>,
    work: &Sender<Work>,
    progress: &Progress,
    cancel: &AtomicBool,
) {
    let stride = config.window_stride.clamp(1, contract.context_frames);
    while let Ok(file) = jobs.recv() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        let input = &files[file];
        let bar = progress.file(&input.rel.to_string_lossy());
        let mut windower = Windower::new(contract.context_frames, stride, patchifier.frame_len());
        let mut sampler = Sampler::new(config.sample.clone());
        let mut pending: Vec<Window> = Vec::with_capacity(config.batch_windows);
        let mut seq = 0u64;
        let mut position = 0u64;
        let mut send_failed = false;
        let mut flush = |pending: &mut Vec<Window>, force: bool| -> bool {
            if pending.is_empty() || (!force && pending.len() < config.batch_windows) {
                return true;
            }
            let windows = std::mem::replace(pending, Vec::with_capacity(config.batch_windows));
            let ok = work.send(Work::Batch(Batch { file, seq, windows })).is_ok();
            seq += 1;
            ok
        };
        let options = DecodeOptions {
            frame_width: contract.frame_width,
            frame_height: contract.frame_height,
            threads: config.ffmpeg_threads,
        };
        let opened = |info: &decode::VideoInfo| {
            progress.file_opened(
                &bar,
                input.size,
                config.sample.expected_frames(info.fps, info.duration_s),
            )
        };
        let outcome = decode::decode_file_with(
            &input.path,
            options,
            &mut sampler,
            cancel,
            opened,
            |frame| {
                let meta = FrameMeta {
                    position,
                    index: frame.index,
                    pts_seconds: frame.pts_seconds,
                };
                position += 1;
                progress.frame(&bar);
                pending.extend(windower.push(meta, patchifier.patchify(&frame.rgb)));
                if !flush(&mut pending, false) {
                    send_failed = true;
                }
                !send_failed
            },
        );
        if outcome.is_ok() {
            pending.extend(windower.finish());
            while !pending.is_empty() {
                let rest: Vec<Window> = pending
                    .drain(..pending.len().min(config.batch_windows))
                    .collect();
                let mut chunk = rest;
                if !flush(&mut chunk, true) {
                    send_failed = true;
                }
            }
        }
        progress.file_done(bar);
        if send_failed
            || work
                .send(Work::Done(FileDone {
                    file,
                    batches: seq,
                    started,
                    outcome,
                }))
                .is_err()
        {
            break;
        }
    }
}

fn inference_worker(mut model: Model, work: &Receiver<Work>, scored: &Sender<Scored>) {
    let contract = model.contract().clone();
    let (t, n, c) = (
        contract.context_frames,
        contract.num_patches(),
        contract.patch_dim(),
    );
    let frame_len = n * c;
    while let Ok(item) = work.recv() {
        let out = match item {
            Work::Done(done) => Scored::Done(done),
            Work::Batch(batch) => {
                let b = batch.windows.len();
                let mut data = Vec::with_capacity(b * t * frame_len);
                for w in &batch.windows {
                    data.extend_from_slice(&w.input);
                }
                let input =
                    Array4::from_shape_vec((b, t, n, c), data).expect("windows have T·N·C values");
                match model.run(input.view()) {
                    Err(e) => Scored::Failed {
                        file: batch.file,
                        error: e.to_string(),
                    },
                    Ok(output) => {
                        let steps = batch
                            .windows
                            .par_iter()
                            .enumerate()
                            .flat_map_iter(|(i, w)| {
                                let output = &output;
                                w.steps.iter().map(move |st| {
                                    let p = st.position;
                                    let frame_patches =
                                        &w.input[p * frame_len..(p + 1) * frame_len];
                                    let (thumb, luma) = shots::thumbnail(
                                        frame_patches,
                                        c,
                                        contract.mean,
                                        contract.std,
                                    );
                                    let pred = output.next_patches.slice(ndarray::s![i, p, .., ..]);
                                    let pred = pred.as_slice().expect("standard layout");
                                    let next_surprise = st
                                        .target
                                        .as_ref()
                                        .map(|(_, actual)| score::mean_squared_error(pred, actual));
                                    let embedding =
                                        output.embeddings.slice(ndarray::s![i, p, ..]).to_vec();
                                    let probs = output.logits.as_ref().map(|l| {
                                        score::softmax(&l.slice(ndarray::s![i, p, ..]).to_vec())
                                    });
                                    StepResult {
                                        frame: st.frame,
                                        thumb,
                                        luma,
                                        embedding,
                                        probs,
                                        next_surprise,
                                    }
                                })
                            })
                            .collect();
                        Scored::Batch {
                            file: batch.file,
                            seq: batch.seq,
                            steps,
                        }
                    }
                }
            }
        };
        if scored.send(out).is_err() {
            break;
        }
    }
}

/// Per-file state of the writer.
struct FileOutput {
    video: String,
    labels: Option<Vec<String>>,
    frames: CsvStream,
    npy: Option<NpyStream>,
    detector: ShotDetector,
    /// Frames waiting for their shot decision.
    waiting: VecDeque<(FrameMeta, Option<f32>, Option<(usize, f32)>)>,
    carried_surprise: Option<f32>,
    next_seq: u64,
    reorder: BTreeMap<u64, Vec<StepResult>>,
    shots: Vec<Shot>,
    frames_written: u64,
    last_pts: f64,
    surprise_sum: f64,
    surprise_count: u64,
    surprise_max: Option<f32>,
    label_counts: Vec<u64>,
}

impl FileOutput {
    fn create(
        config: &PipelineConfig,
        input: &InputFile,
        contract: &ModelContract,
    ) -> Result<Self> {
        let dir = config.output_dir.join(&input.rel);
        let frames = CsvStream::create(&dir.join("frames.csv"), &write::FRAMES_HEADER)?;
        let npy = if config.embeddings {
            Some(NpyStream::create(
                &dir.join("embeddings.npy"),
                contract.embedding_dim,
            )?)
        } else {
            None
        };
        Ok(FileOutput {
            video: input.rel.to_string_lossy().to_string(),
            labels: contract.labels.clone(),
            frames,
            npy,
            detector: ShotDetector::new(config.detector.clone()),
            waiting: VecDeque::new(),
            carried_surprise: None,
            next_seq: 0,
            reorder: BTreeMap::new(),
            shots: Vec::new(),
            frames_written: 0,
            last_pts: 0.0,
            surprise_sum: 0.0,
            surprise_count: 0,
            surprise_max: None,
            label_counts: vec![0; contract.num_labels()],
        })
    }

    fn accept(&mut self, seq: u64, steps: Vec<StepResult>) -> Result<()> {
        self.reorder.insert(seq, steps);
        while let Some(steps) = self.reorder.remove(&self.next_seq) {
            self.next_seq += 1;
            for step in steps {
                self.step(step)?;
            }
        }
        Ok(())
    }

    fn step(&mut self, s: StepResult) -> Result<()> {
        let surprise = self.carried_surprise.take();
        self.carried_surprise = s.next_surprise;
        if let Some(v) = surprise {
            self.surprise_sum += f64::from(v);
            self.surprise_count += 1;
            self.surprise_max = Some(self.surprise_max.map_or(v, |m| m.max(v)));
        }
        if let Some(npy) = &mut self.npy {
            npy.row(&s.embedding)?;
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
        self.waiting.push_back((s.frame, surprise, label));
        let decisions = self.detector.push(FrameSignal {
            surprise,
            thumb: s.thumb,
            luma: s.luma,
        });
        self.write_decided(decisions)
    }

    fn write_decided(&mut self, decisions: Vec<shots::FrameDecision>) -> Result<()> {
        for d in decisions {
            let (meta, surprise, label) = self
                .waiting
                .pop_front()
                .expect("a decision per waiting frame");
            let new_shot = self.shots.is_empty() || d.boundary.is_some();
            if new_shot {
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
            shot.end_frame = meta.index;
            if let Some((k, _)) = label {
                shot.label_counts[k] += 1;
            }
            let is_cut = d.boundary.is_some() && self.frames_written > 0;
            let (label_name, confidence) = match (label, &self.labels) {
                (Some((k, p)), Some(names)) => (names[k].clone(), format!("{p:.4}")),
                _ => (String::new(), String::new()),
            };
            self.frames.row([
                self.video.clone(),
                meta.index.to_string(),
                format!("{:.3}", meta.pts_seconds),
                write::opt_f32(surprise, 6),
                write::opt_f32(d.surprise_z, 3),
                u8::from(is_cut).to_string(),
                (self.shots.len() - 1).to_string(),
                label_name,
                confidence,
            ])?;
            self.frames_written += 1;
            self.last_pts = meta.pts_seconds;
        }
        Ok(())
    }

    /// Flushes the detector, closes the last shot and renames everything into place.
    fn finish(
        mut self,
        config: &PipelineConfig,
        input: &InputFile,
        summary: &DecodeSummary,
    ) -> Result<ClipRow> {
        let decisions = self.detector.finish();
        self.write_decided(decisions)?;
        let frame_s = summary.info.fps.map_or(0.0, |f| 1.0 / f);
        if let Some(last) = self.shots.last_mut() {
            last.end_s = self.last_pts + frame_s;
        }
        let dir = config.output_dir.join(&input.rel);
        write::write_csv_atomic(
            &dir.join("shots.csv"),
            &write::SHOTS_HEADER,
            &write::shot_rows(&self.video, &self.shots, self.labels.as_deref()),
        )?;
        if config.scenes_format == ScenesFormat::Pyscenedetect {
            write::write_pyscenedetect(&dir.join("scenes.csv"), &self.shots)?;
        }
        self.frames.finish()?;
        if let Some(npy) = self.npy {
            npy.finish()?;
        }
        let top_label = match (
            &self.labels,
            self.label_counts
                .iter()
                .enumerate()
                .max_by_key(|(_, c)| **c),
        ) {
            (Some(names), Some((k, count))) if self.frames_written > 0 => {
                Some((names[k].clone(), *count as f32 / self.frames_written as f32))
            }
            _ => None,
        };
        Ok(ClipRow {
            video: self.video,
            error: summary.error.as_ref().map(ToString::to_string),
            duration_s: summary.info.duration_s.or(Some(summary.end_seconds)),
            frames_decoded: summary.frames_decoded,
            frames_analyzed: self.frames_written,
            decode_errors: summary.decode_errors,
            shots: self.shots.len() as u64,
            mean_surprise: (self.surprise_count > 0)
                .then(|| (self.surprise_sum / self.surprise_count as f64) as f32),
            max_surprise: self.surprise_max,
            top_label,
            elapsed_s: 0.0,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn writer(
    config: &PipelineConfig,
    files: &[InputFile],
    contract: &ModelContract,
    scored: &Receiver<Scored>,
    progress: &Progress,
    cancel: &AtomicBool,
    frames_total: &AtomicU64,
    started: Instant,
    on_finished: &mut dyn FnMut(&InputFile, &ClipRow),
) -> Result<RunReport> {
    let mut open: HashMap<usize, FileOutput> = HashMap::new();
    let mut done: HashMap<usize, FileDone> = HashMap::new();
    let mut received: HashMap<usize, u64> = HashMap::new();
    let mut failed: HashMap<usize, String> = HashMap::new();
    let mut rows: BTreeMap<usize, ClipRow> = BTreeMap::new();
    let mut interrupted = false;

    for msg in scored.iter() {
        let file = match msg {
            Scored::Batch { file, seq, steps } => {
                *received.entry(file).or_default() += 1;
                if !failed.contains_key(&file) {
                    let n = steps.len() as u64;
                    let result = match open.entry(file) {
                        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            FileOutput::create(config, &files[file], contract).map(|o| v.insert(o))
                        }
                    }
                    .and_then(|out| out.accept(seq, steps));
                    if let Err(e) = result {
                        failed.insert(file, format!("{e:#}"));
                        open.remove(&file);
                    }
                    let total = frames_total.fetch_add(n, Ordering::Relaxed) + n;
                    progress.frames(total, started.elapsed());
                }
                file
            }
            Scored::Failed { file, error } => {
                *received.entry(file).or_default() += 1;
                failed.entry(file).or_insert(error);
                open.remove(&file);
                file
            }
            Scored::Done(d) => {
                let file = d.file;
                done.insert(file, d);
                file
            }
        };
        // Finalize a file once its end and all its batches are in.
        let complete = done
            .get(&file)
            .is_some_and(|d| received.get(&file).copied().unwrap_or(0) == d.batches);
        if !complete {
            continue;
        }
        let d = done.remove(&file).expect("checked above");
        let input = &files[file];
        let video = input.rel.to_string_lossy().to_string();
        let output = open.remove(&file);
        let mut row = match (d.outcome, failed.remove(&file)) {
            (Err(DecodeError::Cancelled), _) => {
                interrupted = true;
                continue;
            }
            (_, Some(error)) => ClipRow::failed(video, error),
            (Err(e), None) => ClipRow::failed(video, e.to_string()),
            (Ok(summary), None) => match output {
                Some(out) => out.finish(config, input, &summary).unwrap_or_else(|e| {
                    ClipRow::failed(input.rel.to_string_lossy().to_string(), format!("{e:#}"))
                }),
                None => ClipRow::failed(video, "no frame was analyzed".to_string()),
            },
        };
        row.elapsed_s = d.started.elapsed().as_secs_f64();
        if let Some(e) = &row.error {
            progress.println(&format!("error: `{}`: {e}", input.path.display()));
        }
        on_finished(input, &row);
        rows.insert(file, row);
    }
    if cancel.load(Ordering::Relaxed) {
        interrupted = true;
    }
    // Anything still open was interrupted: dropping it discards its temporary files.
    drop(open);
    Ok(RunReport {
        rows: rows.into_iter().collect(),
        interrupted,
        frames_analyzed: frames_total.load(Ordering::Relaxed),
    })
}
