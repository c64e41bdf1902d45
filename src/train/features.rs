//! Per-frame features of the source files: the frozen backbone's `embeddings` through the
//! same pipeline as `analyze` (parallel decode, bounded memory), cached on disk; or, for
//! the no-model baseline, downscaled raw pixels.
//!
//! Cache: one folder per (file content, model, sampling settings):
//! `<cache>/<key>/{frames.csv, embeddings.npy, complete}`, where `key` is the sha256 of
//! the file's sha256, the model's sha256 and the settings. Hashing the content (not
//! size + mtime + path) costs one read of each file, far cheaper than decoding it, and
//! keeps the cache valid across copies, renames and `touch`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use ndarray::Array2;
use rayon::prelude::*;

use crate::aggregate::OutputConfig;
use crate::decode::{self, DecodeOptions};
use crate::digest::{sha256_file, sha256_hex};
use crate::discover::InputFile;
use crate::model::Model;
use crate::pipeline::{self, PipelineConfig};
use crate::progress::Progress;
use crate::sample::{SampleSpec, Sampler};
use crate::shots::DetectorConfig;
use crate::threads::ThreadBudget;

/// Bumped when the cached layout or meaning changes.
const CACHE_VERSION: &str = "framegpt-features-v1";
const COMPLETE_MARKER: &str = "complete";

/// Per-frame features of one source file, in presentation order.
#[derive(Debug, Clone)]
pub struct SourceFeatures {
    pub times_s: Vec<f64>,
    /// [frames, D].
    pub x: Array2<f32>,
}

/// What feature extraction did.
#[derive(Debug, Default)]
pub struct Extracted {
    pub sources: BTreeMap<PathBuf, Result<SourceFeatures, String>>,
    pub cache_hits: usize,
    pub decoded: usize,
}

/// How the backbone is run over the sources.
pub struct EmbeddingJob<'a> {
    pub model_path: &'a Path,
    pub model_sha256: &'a str,
    pub cache_dir: &'a Path,
    pub sample: &'a SampleSpec,
    pub window_stride: usize,
    pub threads: ThreadBudget,
    pub progress: bool,
}

fn cache_key(file_sha: &str, job: &EmbeddingJob<'_>) -> String {
    let s = job.sample;
    let settings = format!(
        "{CACHE_VERSION}\nfile {file_sha}\nmodel {}\nevery {} fps {:?} max_frames {:?} start {} end {:?} keyframes {} stride {}",
        job.model_sha256,
        s.every,
        s.target_fps,
        s.max_frames,
        s.start_s,
        s.end_s,
        s.keyframes_only,
        job.window_stride
    );
    sha256_hex(settings.as_bytes())[..32].to_string()
}

/// Embeddings of every source, from the cache where present; the rest runs through
/// [`pipeline::run`] in one batch, written into the cache.
pub fn extract_embeddings(
    sources: &[PathBuf],
    model: Model,
    job: &EmbeddingJob<'_>,
    cancel: &AtomicBool,
) -> Result<Extracted> {
    let hashed: Vec<(PathBuf, std::io::Result<String>)> = sources
        .par_iter()
        .map(|p| (p.clone(), sha256_file(p)))
        .collect();
    let mut out = Extracted::default();
    let mut todo: Vec<(PathBuf, String)> = Vec::new();
    for (path, sha) in hashed {
        let sha = match sha {
            Ok(s) => s,
            Err(e) => {
                out.sources.insert(path, Err(format!("cannot read: {e}")));
                continue;
            }
        };
        let key = cache_key(&sha, job);
        let dir = job.cache_dir.join(&key);
        if dir.join(COMPLETE_MARKER).is_file() {
            match read_cached(&dir) {
                Ok(f) => {
                    out.cache_hits += 1;
                    out.sources.insert(path, Ok(f));
                    continue;
                }
                Err(e) => {
                    tracing::warn!("ignoring a broken cache entry `{}`: {e:#}", dir.display())
                }
            }
        }
        todo.push((path, key));
    }
    if todo.is_empty() {
        return Ok(out);
    }
    fs_err::create_dir_all(job.cache_dir).with_context(|| {
        format!(
            "failed to create the feature cache `{}`",
            job.cache_dir.display()
        )
    })?;
    let files: Vec<InputFile> = todo
        .iter()
        .map(|(path, key)| InputFile {
            path: path.clone(),
            rel: PathBuf::from(key),
            size: fs_err::metadata(path).map(|m| m.len()).unwrap_or(0),
        })
        .collect();
    let config = PipelineConfig {
        sample: job.sample.clone(),
        batch_windows: 8,
        window_stride: job.window_stride,
        decode_jobs: job.threads.decode_jobs,
        ffmpeg_threads: job.threads.ffmpeg_per_file,
        output: OutputConfig {
            output_dir: job.cache_dir.to_path_buf(),
            embeddings: true,
            scenes_format: Vec::new(),
            detector: DetectorConfig::default(),
        },
    };
    let progress = Progress::new(job.progress, files.iter().map(|f| f.size).sum());
    let report = pipeline::run(
        &config,
        &files,
        vec![model],
        &progress,
        cancel,
        &mut |_, _| {},
    )?;
    progress.finish();
    anyhow::ensure!(!report.interrupted, "interrupted");
    for (index, row) in &report.rows {
        let (path, key) = &todo[*index];
        let dir = job.cache_dir.join(key);
        if let Some(e) = &row.error {
            let _ = fs_err::remove_dir_all(&dir);
            out.sources.insert(path.clone(), Err(e.clone()));
            continue;
        }
        let read = read_cached(&dir);
        if read.is_ok() {
            fs_err::write(dir.join(COMPLETE_MARKER), b"")?;
        }
        out.decoded += 1;
        out.sources
            .insert(path.clone(), read.map_err(|e| format!("{e:#}")));
    }
    Ok(out)
}

fn read_cached(dir: &Path) -> Result<SourceFeatures> {
    let frames_path = dir.join("frames.csv");
    let mut reader = csv::Reader::from_path(&frames_path)
        .with_context(|| format!("failed to read `{}`", frames_path.display()))?;
    let col = reader
        .headers()?
        .iter()
        .position(|h| h == "time_s")
        .context("frames.csv has no `time_s` column")?;
    let mut times_s = Vec::new();
    for r in reader.records() {
        times_s.push(r?[col].parse::<f64>()?);
    }
    let x = crate::npy::read_f32_2d(&dir.join("embeddings.npy"))?;
    anyhow::ensure!(
        x.nrows() == times_s.len(),
        "embeddings.npy has {} rows but frames.csv {}",
        x.nrows(),
        times_s.len()
    );
    Ok(SourceFeatures { times_s, x })
}

/// The no-model baseline's features: each sampled frame downscaled to `side`×`side` RGB,
/// values in [0, 1]. Not cached (decoding to a tiny size is fast).
pub fn extract_pixels(sources: &[PathBuf], sample: &SampleSpec, side: u32) -> Extracted {
    let cancel = AtomicBool::new(false);
    let results: Vec<(PathBuf, Result<SourceFeatures, String>)> = sources
        .par_iter()
        .map(|path| {
            let mut sampler = Sampler::new(sample.clone());
            let mut times_s = Vec::new();
            let mut data = Vec::new();
            let options = DecodeOptions {
                frame_width: side,
                frame_height: side,
                threads: 1,
            };
            let r = decode::decode_file(path, options, &mut sampler, &cancel, |f| {
                times_s.push(f.pts_seconds);
                data.extend(f.rgb.iter().map(|&v| f32::from(v) / 255.0));
                true
            });
            let r = match r {
                Ok(s) if s.error.is_none() => {
                    let d = (side * side * 3) as usize;
                    Ok(SourceFeatures {
                        x: Array2::from_shape_vec((times_s.len(), d), data).expect("rows of d"),
                        times_s,
                    })
                }
                Ok(s) => Err(s.error.map(|e| e.to_string()).unwrap_or_default()),
                Err(e) => Err(e.to_string()),
            };
            (path.clone(), r)
        })
        .collect();
    Extracted {
        decoded: results.len(),
        sources: results.into_iter().collect(),
        cache_hits: 0,
    }
}

/// The rows of `f` in [start_s, end_s), minus the first `skip` of them (frames whose
/// causal embedding has seen little of the clip).
pub fn slice_clip(
    f: &SourceFeatures,
    start_s: Option<f64>,
    end_s: Option<f64>,
    skip: usize,
) -> Vec<usize> {
    let (s, e) = (start_s.unwrap_or(0.0), end_s.unwrap_or(f64::INFINITY));
    f.times_s
        .iter()
        .enumerate()
        .filter(|(_, &t)| t >= s - 1e-9 && t < e - 1e-9)
        .map(|(i, _)| i)
        .skip(skip)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_slice_by_time_and_skip_their_first_frames() {
        let f = SourceFeatures {
            times_s: (0..10).map(|i| i as f64 * 0.5).collect(),
            x: Array2::zeros((10, 1)),
        };
        assert_eq!(slice_clip(&f, Some(1.0), Some(3.0), 0), vec![2, 3, 4, 5]);
        assert_eq!(slice_clip(&f, Some(1.0), Some(3.0), 1), vec![3, 4, 5]);
        assert_eq!(slice_clip(&f, None, None, 8), vec![8, 9]);
    }
}
