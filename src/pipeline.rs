//! The threads of `analyze`, all in this file (fd `walk.rs`): stages joined by bounded
//! channels inside `std::thread::scope`, so memory stays flat however long the video.
//! What each stage computes lives in its own module; this file only moves it along.
//!
//! ```text
//! decode workers (--jobs, one file each) ──Work──▶ inference workers (one session each)
//!        decode · sample · patchify · window          model::run_windows · thumbnails
//!                                                          │ Scored
//!                                                          ▼
//!                                   one writer (this thread): per-file order restored,
//!                                   aggregate::FileOutput per file, clips.csv rows
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, Sender};
use rayon::prelude::*;

pub use crate::aggregate::OutputConfig;
use crate::aggregate::{FileOutput, StepResult};
use crate::decode::{self, DecodeError, DecodeOptions, DecodeSummary};
use crate::discover::InputFile;
use crate::model::{self, Model, ModelContract};
use crate::patchify::Patchifier;
use crate::progress::Progress;
pub use crate::rows::ClipRow;
use crate::sample::{SampleSpec, Sampler};
use crate::score::{self, FrameMeta, RepeatFilter, Window, Windower};
use crate::shots;
use crate::shots::BoundaryProbs;

/// What the pipeline needs to know, already validated.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub sample: SampleSpec,
    pub batch_windows: usize,
    pub window_stride: usize,
    pub decode_jobs: usize,
    pub ffmpeg_threads: usize,
    /// `--file-timeout`: one file's decoding ends with an error row after this long.
    pub file_timeout: Option<std::time::Duration>,
    pub output: OutputConfig,
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

impl RunReport {
    /// The report of a run with nothing to do.
    pub fn empty() -> Self {
        RunReport {
            rows: Vec::new(),
            interrupted: false,
            frames_analyzed: 0,
        }
    }
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

enum Scored {
    Batch {
        file: usize,
        seq: u64,
        steps: Vec<StepResult>,
        /// Contract v2: the boundary probabilities of the positions these windows own.
        boundary: Vec<(u64, BoundaryProbs)>,
    },
    Failed {
        file: usize,
        error: String,
    },
    Done(FileDone),
}

/// What every thread of one run reads.
struct Shared<'a> {
    config: &'a PipelineConfig,
    files: &'a [InputFile],
    contract: ModelContract,
    patchifier: Patchifier,
    progress: &'a Progress,
    cancel: &'a AtomicBool,
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
    let shared = Shared {
        config,
        files,
        patchifier: Patchifier::new(&contract),
        contract,
        progress,
        cancel,
    };
    let (job_tx, job_rx) = crossbeam_channel::unbounded::<usize>();
    for i in 0..files.len() {
        job_tx.send(i).expect("receiver alive");
    }
    drop(job_tx);
    let (work_tx, work_rx) = bounded::<Work>(4);
    let (scored_tx, scored_rx) = bounded::<Scored>(8);

    std::thread::scope(|scope| {
        for _ in 0..config.decode_jobs.min(files.len()).max(1) {
            let (job_rx, work_tx, shared) = (job_rx.clone(), work_tx.clone(), &shared);
            scope.spawn(move || decode_worker(shared, &job_rx, &work_tx));
        }
        drop(work_tx);
        for model in models {
            let (work_rx, scored_tx) = (work_rx.clone(), scored_tx.clone());
            scope.spawn(move || inference_worker(model, &work_rx, &scored_tx));
        }
        drop(scored_tx);
        drop(work_rx);
        Ok(Writer::new(&shared, on_finished).run(&scored_rx))
    })
}

/// Takes files from `jobs` until none is left (or the run is cancelled).
fn decode_worker(shared: &Shared<'_>, jobs: &Receiver<usize>, work: &Sender<Work>) {
    while let Ok(file) = jobs.recv() {
        if shared.cancel.load(Ordering::Relaxed) {
            break;
        }
        let Some(done) = decode_one(shared, file, work) else {
            break;
        };
        if work.send(Work::Done(done)).is_err() {
            break;
        }
    }
}

/// Decodes one file into batches of windows; None when the inference side hung up.
fn decode_one(shared: &Shared<'_>, file: usize, work: &Sender<Work>) -> Option<FileDone> {
    let (config, contract, patchifier) = (shared.config, &shared.contract, &shared.patchifier);
    let started = Instant::now();
    let input = &shared.files[file];
    let bar = shared.progress.file(&input.rel.to_string_lossy());
    let stride = config.window_stride.clamp(1, contract.context_frames);
    let mut windower = Windower::new(contract.context_frames, stride, patchifier.frame_len());
    let mut repeats = RepeatFilter::new(
        contract.patch_dim(),
        contract.std,
        score::REPEAT_PATCH_MAD_LEVELS,
    );
    let mut sampler = Sampler::new(config.sample.clone());
    let mut batcher = Batcher::new(file, config.batch_windows, work);
    let mut position = 0u64;
    let options = DecodeOptions {
        frame_width: contract.frame_width,
        frame_height: contract.frame_height,
        threads: config.ffmpeg_threads,
    };
    let opened = |info: &decode::VideoInfo| {
        let expected = config.sample.expected_frames(info.fps, info.duration_s);
        shared.progress.file_opened(&bar, input.size, expected)
    };
    let outcome = decode::decode_file_bounded(
        &input.path,
        options,
        config.file_timeout,
        &mut sampler,
        shared.cancel,
        opened,
        |frame| {
            let meta = FrameMeta {
                position,
                index: frame.index,
                pts_seconds: frame.pts_seconds,
            };
            shared.progress.frame(&bar);
            // A repeat of the last picture rides on that frame's results; only distinct
            // pictures enter the windows (surprise and boundaries are judged between them).
            let patches = patchifier.patchify(&frame.rgb);
            if repeats.is_repeat(&patches) {
                windower.push_repeat(meta);
            } else {
                position += 1;
                batcher.add(windower.push(meta, patches));
            }
            !batcher.hung_up
        },
    );
    if outcome.is_ok() {
        batcher.finish(windower.finish());
    }
    shared.progress.file_done(bar);
    (!batcher.hung_up).then_some(FileDone {
        file,
        batches: batcher.seq,
        started,
        outcome,
    })
}

/// Groups one file's windows into batches of `size` and sends them in sequence.
struct Batcher<'a> {
    file: usize,
    seq: u64,
    size: usize,
    pending: Vec<Window>,
    work: &'a Sender<Work>,
    hung_up: bool,
}

impl<'a> Batcher<'a> {
    fn new(file: usize, size: usize, work: &'a Sender<Work>) -> Self {
        Batcher {
            file,
            seq: 0,
            size,
            pending: Vec::with_capacity(size),
            work,
            hung_up: false,
        }
    }

    /// Adds windows; sends them all once a batch is full.
    fn add(&mut self, windows: Vec<Window>) {
        self.pending.extend(windows);
        if self.pending.len() >= self.size {
            let all = std::mem::replace(&mut self.pending, Vec::with_capacity(self.size));
            self.send(all);
        }
    }

    /// Sends the last windows, in batches of at most `size`.
    fn finish(&mut self, windows: Vec<Window>) {
        self.pending.extend(windows);
        while !self.pending.is_empty() {
            let n = self.pending.len().min(self.size);
            let chunk: Vec<Window> = self.pending.drain(..n).collect();
            self.send(chunk);
        }
    }

    fn send(&mut self, windows: Vec<Window>) {
        let batch = Batch {
            file: self.file,
            seq: self.seq,
            windows,
        };
        if self.work.send(Work::Batch(batch)).is_err() {
            self.hung_up = true;
        }
        self.seq += 1;
    }
}

fn inference_worker(mut model: Model, work: &Receiver<Work>, scored: &Sender<Scored>) {
    let contract = model.contract().clone();
    while let Ok(item) = work.recv() {
        let out = match item {
            Work::Done(done) => Scored::Done(done),
            Work::Batch(batch) => score_batch(&mut model, &contract, batch),
        };
        if scored.send(out).is_err() {
            break;
        }
    }
}

/// The model on one batch, plus each owned step's thumbnail for the shot detector.
fn score_batch(model: &mut Model, contract: &ModelContract, batch: Batch) -> Scored {
    let scores = match model::run_windows(model, &batch.windows) {
        Ok(s) => s,
        Err(e) => {
            return Scored::Failed {
                file: batch.file,
                error: e.to_string(),
            }
        }
    };
    let c = contract.patch_dim();
    let frame_len = contract.num_patches() * c;
    let steps = scores
        .steps
        .into_par_iter()
        .map(|s| {
            let w = &batch.windows[s.window];
            let patches = &w.input[s.position * frame_len..(s.position + 1) * frame_len];
            let (thumb, luma) = shots::thumbnail(patches, c, contract.mean, contract.std);
            StepResult {
                frame: s.frame,
                thumb,
                luma,
                embedding: s.embedding,
                probs: s.probs,
                next_surprise: s.next_error,
                next_anomaly: s.next_anomaly,
                repeats: s.repeats,
            }
        })
        .collect();
    Scored::Batch {
        file: batch.file,
        seq: batch.seq,
        steps,
        boundary: scores.boundary,
    }
}

/// The writer thread's state: open files, what each has received, finished rows.
struct Writer<'s, 'a> {
    shared: &'s Shared<'a>,
    on_finished: &'s mut dyn FnMut(&InputFile, &ClipRow),
    open: HashMap<usize, FileOutput>,
    done: HashMap<usize, FileDone>,
    received: HashMap<usize, u64>,
    failed: HashMap<usize, String>,
    rows: BTreeMap<usize, ClipRow>,
    interrupted: bool,
    frames_total: AtomicU64,
    started: Instant,
}

impl<'s, 'a> Writer<'s, 'a> {
    fn new(shared: &'s Shared<'a>, on_finished: &'s mut dyn FnMut(&InputFile, &ClipRow)) -> Self {
        Writer {
            shared,
            on_finished,
            open: HashMap::new(),
            done: HashMap::new(),
            received: HashMap::new(),
            failed: HashMap::new(),
            rows: BTreeMap::new(),
            interrupted: false,
            frames_total: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn run(mut self, scored: &Receiver<Scored>) -> RunReport {
        for msg in scored.iter() {
            let file = self.receive(msg);
            // Finalize a file once its end and all its batches are in.
            let complete = self
                .done
                .get(&file)
                .is_some_and(|d| self.received.get(&file).copied().unwrap_or(0) == d.batches);
            if complete {
                self.finalize(file);
            }
        }
        if self.shared.cancel.load(Ordering::Relaxed) {
            self.interrupted = true;
        }
        // Anything still open was interrupted: its temporary files and new folders go.
        for (_, out) in self.open.drain() {
            out.discard(&self.shared.config.output);
        }
        RunReport {
            rows: self.rows.into_iter().collect(),
            interrupted: self.interrupted,
            frames_analyzed: self.frames_total.load(Ordering::Relaxed),
        }
    }

    /// Books one message; returns the file it belongs to.
    fn receive(&mut self, msg: Scored) -> usize {
        match msg {
            Scored::Batch {
                file,
                seq,
                steps,
                boundary,
            } => {
                *self.received.entry(file).or_default() += 1;
                if !self.failed.contains_key(&file) {
                    let n = steps.iter().map(|s| 1 + s.repeats.len() as u64).sum();
                    if let Err(e) = self.write_batch(file, seq, steps, boundary) {
                        self.failed.insert(file, format!("{e:#}"));
                        self.discard(file);
                    }
                    let total = self.frames_total.fetch_add(n, Ordering::Relaxed) + n;
                    self.shared.progress.frames(total, self.started.elapsed());
                }
                file
            }
            Scored::Failed { file, error } => {
                *self.received.entry(file).or_default() += 1;
                self.failed.entry(file).or_insert(error);
                self.discard(file);
                file
            }
            Scored::Done(d) => {
                let file = d.file;
                self.done.insert(file, d);
                file
            }
        }
    }

    /// Drops a failed file's unfinished outputs.
    fn discard(&mut self, file: usize) {
        if let Some(out) = self.open.remove(&file) {
            out.discard(&self.shared.config.output);
        }
    }

    fn write_batch(
        &mut self,
        file: usize,
        seq: u64,
        steps: Vec<StepResult>,
        boundary: Vec<(u64, BoundaryProbs)>,
    ) -> Result<()> {
        let out = match self.open.entry(file) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(FileOutput::create(
                &self.shared.config.output,
                &self.shared.files[file],
                &self.shared.contract,
            )?),
        };
        out.accept(seq, steps, boundary)
    }

    /// Closes a file whose batches are all in: its outputs renamed into place, its row.
    fn finalize(&mut self, file: usize) {
        let d = self.done.remove(&file).expect("file is complete");
        let input = &self.shared.files[file];
        let video = crate::manifest::rel_key(&input.rel);
        let config = &self.shared.config.output;
        let mut output = self.open.remove(&file);
        let failed = self.failed.remove(&file);
        if d.outcome.is_err() || failed.is_some() {
            if let Some(out) = output.take() {
                out.discard(config);
            }
        }
        let mut row = match (d.outcome, failed) {
            (Err(DecodeError::Cancelled), _) => {
                self.interrupted = true;
                return;
            }
            (_, Some(error)) => ClipRow::failed(video, error),
            (Err(e), None) => ClipRow::failed(video, e.to_string()),
            (Ok(summary), None) => match output {
                Some(out) => out
                    .finish(config, &summary)
                    .unwrap_or_else(|e| ClipRow::failed(video, format!("{e:#}"))),
                None => ClipRow::failed(video, "no frame was analyzed".to_string()),
            },
        };
        row.elapsed_s = d.started.elapsed().as_secs_f64();
        if let Some(e) = &row.error {
            let line = format!("error: `{}`: {e}", input.path.display());
            self.shared.progress.println(&line);
        }
        (self.on_finished)(input, &row);
        self.rows.insert(file, row);
    }
}
