//! `report.html`: an output folder made visible. Everything comes from the folder itself:
//! `clips.csv`, each video's `frames.csv` and `shots.csv`, and `run.json` for where the
//! source videos are (their thumbnails are decoded again, one frame per shot, see
//! [`thumbs`]). One self-contained file: inline CSS, inline SVG, thumbnails as data URIs,
//! a few lines of inline JavaScript for paging; no network, no external script or font.
//!
//! A run with more than [`INLINE_VIDEOS_MAX`] videos keeps `report.html` an index (paged,
//! errors first) and gives each video its own self-contained page beside its `frames.csv`,
//! so a run of 10,000 files is still a page a browser opens at once.

mod html;
pub mod thumbs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Deserialize;

use crate::manifest::Manifest;
use crate::write::write_atomic;

pub const REPORT_FILE: &str = "report.html";
/// Above this many videos, details go to one page per video.
pub const INLINE_VIDEOS_MAX: usize = 100;

/// One row of `clips.csv`, kept as text (the report shows it as written) plus the fields
/// the report reasons about.
#[derive(Debug, Clone)]
pub struct ClipEntry {
    pub columns: Vec<(String, String)>,
    pub video: String,
    pub ok: bool,
    pub error: String,
    pub duration_s: Option<f64>,
    pub decode_errors: u64,
}

impl ClipEntry {
    fn get(&self, name: &str) -> &str {
        self.columns
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// One row of `frames.csv`; `boundary_prob`, `repeated` and `anomaly` are optional columns.
#[derive(Debug, Clone, Deserialize)]
pub struct FrameEntry {
    pub frame: u64,
    pub time_s: f64,
    pub surprise: Option<f64>,
    pub label: Option<String>,
    pub confidence: Option<f64>,
    #[serde(default)]
    pub boundary_prob: Option<f64>,
    #[serde(default)]
    pub repeated: Option<u8>,
    /// Models adapted to a camera (`framegpt adapt`).
    #[serde(default)]
    pub anomaly: Option<f64>,
}

/// One row of `shots.csv`.
#[derive(Debug, Clone, Deserialize)]
pub struct ShotEntry {
    pub shot: u64,
    pub start_frame: u64,
    pub end_frame: u64,
    pub start_s: f64,
    pub end_s: f64,
    pub transition: Option<String>,
    pub label: Option<String>,
}

/// What the report knows about one video.
pub struct VideoData {
    pub clip: ClipEntry,
    pub frames: Vec<FrameEntry>,
    pub shots: Vec<ShotEntry>,
    pub has_boundary_prob: bool,
    pub has_repeated: bool,
    /// Why frames/shots could not be read, when they could not.
    pub load_error: Option<String>,
    /// One JPEG per shot (None where that shot's frame could not be decoded).
    pub thumbnails: Vec<Option<Vec<u8>>>,
    /// Why there are no thumbnails, when there are none.
    pub thumbnail_note: Option<String>,
}

/// Reads `dir/clips.csv` and the per-video files, decodes thumbnails, and writes
/// `dir/report.html` (plus per-video pages for large runs). Returns the report's path.
pub fn write_report(dir: &Path, threads: usize) -> Result<PathBuf> {
    write_report_with(dir, threads, INLINE_VIDEOS_MAX)
}

fn write_report_with(dir: &Path, threads: usize, inline_max: usize) -> Result<PathBuf> {
    let clips_path = dir.join("clips.csv");
    let mut clips = read_clips(&clips_path)
        .with_context(|| format!("failed to read `{}`", clips_path.display()))?;
    // Errors first, then the run's order.
    clips.sort_by_key(|c| c.ok);
    let sources = source_paths(dir);
    let inline = clips.len() <= inline_max;
    let title = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .context("failed to start the report's threads")?;
    let sections: Vec<Result<String>> = pool.install(|| {
        clips
            .par_iter()
            .enumerate()
            .map(|(i, clip)| {
                let data = load_video(dir, clip, sources.get(&clip.video).map(PathBuf::as_path));
                let section = html::video_section(i, &data);
                if inline {
                    Ok(section)
                } else {
                    let back = "../".repeat(clip.video.split('/').count()) + REPORT_FILE;
                    let body = format!(
                        "<p><a href=\"{}\">← all videos</a></p>\n{section}",
                        html::esc(&back)
                    );
                    let page = html::page(&format!("{} — framegpt", clip.video), &body, "");
                    write_atomic(&dir.join(&clip.video).join(REPORT_FILE), page.as_bytes())?;
                    Ok(String::new())
                }
            })
            .collect()
    });
    let mut body = html::index(&title, &clips, inline);
    for s in sections {
        body.push_str(&s?);
    }
    let path = dir.join(REPORT_FILE);
    let page = html::page("framegpt report", &body, html::INDEX_SCRIPT);
    write_atomic(&path, page.as_bytes())?;
    Ok(path)
}

fn read_clips(path: &Path) -> Result<Vec<ClipEntry>> {
    let mut r = csv::Reader::from_path(path)?;
    let header: Vec<String> = r.headers()?.iter().map(String::from).collect();
    anyhow::ensure!(
        header.iter().any(|h| h == "video"),
        "no `video` column: not a framegpt clips.csv"
    );
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec?;
        let columns: Vec<(String, String)> = header
            .iter()
            .cloned()
            .zip(rec.iter().map(String::from))
            .collect();
        let mut c = ClipEntry {
            columns,
            video: String::new(),
            ok: false,
            error: String::new(),
            duration_s: None,
            decode_errors: 0,
        };
        c.video = crate::rows::restore(c.get("video")).to_string();
        c.ok = c.get("status") == "ok";
        c.error = c.get("error").to_string();
        c.duration_s = c.get("duration_s").parse().ok();
        c.decode_errors = c.get("decode_errors").parse().unwrap_or(0);
        out.push(c);
    }
    Ok(out)
}

/// Source video paths by output name, from `run.json` (absent: no thumbnails).
fn source_paths(dir: &Path) -> BTreeMap<String, PathBuf> {
    match Manifest::load(dir) {
        Ok(Some(m)) => m
            .inputs
            .into_values()
            .map(|rec| (rec.video, rec.path))
            .collect(),
        Ok(None) => BTreeMap::new(),
        Err(e) => {
            tracing::warn!("report: ignoring `run.json`: {e:#}");
            BTreeMap::new()
        }
    }
}

fn load_video(dir: &Path, clip: &ClipEntry, source: Option<&Path>) -> VideoData {
    let mut data = VideoData {
        clip: clip.clone(),
        frames: Vec::new(),
        shots: Vec::new(),
        has_boundary_prob: false,
        has_repeated: false,
        load_error: None,
        thumbnails: Vec::new(),
        thumbnail_note: None,
    };
    let video_dir = dir.join(&clip.video);
    let frames_path = video_dir.join("frames.csv");
    if !frames_path.exists() {
        if clip.ok {
            data.load_error = Some(format!("`{}` is missing", frames_path.display()));
        }
        return data;
    }
    let loaded = read_rows::<FrameEntry>(&frames_path).and_then(|(header, frames)| {
        let (_, shots) = read_rows::<ShotEntry>(&video_dir.join("shots.csv"))?;
        Ok((header, frames, shots))
    });
    match loaded {
        Ok((header, frames, shots)) => {
            data.has_boundary_prob = header.iter().any(|h| h == "boundary_prob");
            data.has_repeated = header.iter().any(|h| h == "repeated");
            data.frames = frames;
            data.shots = shots;
        }
        Err(e) => {
            data.load_error = Some(format!("{e:#}"));
            return data;
        }
    }
    match source {
        None => data.thumbnail_note = Some("the source video is not recorded in `run.json`".into()),
        Some(path) if !path.exists() => {
            data.thumbnail_note = Some(format!("source `{}` not found", path.display()))
        }
        Some(path) => {
            let starts: Vec<f64> = data.shots.iter().map(|s| s.start_s).collect();
            match thumbs::shot_thumbnails(path, &starts, thumbs::THUMB_HEIGHT) {
                Ok(t) => data.thumbnails = t,
                Err(e) => {
                    data.thumbnail_note = Some(format!("cannot decode `{}`: {e:#}", path.display()))
                }
            }
        }
    }
    data
}

fn read_rows<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<(Vec<String>, Vec<T>)> {
    let mut r = csv::Reader::from_path(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let header = r.headers()?.iter().map(String::from).collect();
    let rows = r
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output folder as `analyze` leaves it, written by hand (no source videos).
    fn folder(videos: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut clips = String::from("video,status,error,duration_s,frames_decoded,frames_analyzed,decode_errors,shots,mean_surprise,max_surprise,mean_anomaly,max_anomaly,max_anomaly_s,top_label,top_label_share,elapsed_s\n");
        for v in videos {
            clips.push_str(&format!("{v},ok,,1.000,20,20,0,2,0.1,2.0,,,,,,0.1\n"));
            let d = dir.path().join(v);
            fs_err::create_dir_all(&d).unwrap();
            let mut frames = String::from(
                "video,frame,time_s,surprise,surprise_z,is_cut,shot,label,confidence\n",
            );
            for k in 0..20 {
                let s = if k == 0 {
                    String::new()
                } else {
                    format!("{}", if k == 10 { 2.0 } else { 0.1 })
                };
                frames.push_str(&format!(
                    "{v},{k},{:.3},{s},,{},{},,\n",
                    k as f64 / 20.0,
                    u8::from(k == 10),
                    u8::from(k >= 10)
                ));
            }
            fs_err::write(d.join("frames.csv"), frames).unwrap();
            fs_err::write(
                d.join("shots.csv"),
                format!("video,shot,start_frame,end_frame,start_s,end_s,transition,label\n{v},0,0,9,0.000,0.500,,\n{v},1,10,19,0.500,1.000,cut,\n"),
            )
            .unwrap();
        }
        fs_err::write(dir.path().join("clips.csv"), clips).unwrap();
        dir
    }

    #[test]
    fn large_runs_get_an_index_and_one_page_per_video() {
        let dir = folder(&["a.mp4", "sub/b c.mp4", "d.mp4"]);
        let index = write_report_with(dir.path(), 1, 2).unwrap();
        let html = fs_err::read_to_string(&index).unwrap();
        assert!(
            !html.contains("<section class=\"video\""),
            "details stay out of the index"
        );
        assert!(
            html.contains("href=\"sub/b%20c.mp4/report.html\""),
            "{html}"
        );
        for v in ["a.mp4", "sub/b c.mp4", "d.mp4"] {
            let page = fs_err::read_to_string(dir.path().join(v).join(REPORT_FILE)).unwrap();
            assert_eq!(
                page.matches("data-boundary=\"cut\" data-frame=\"10\"")
                    .count(),
                1
            );
            assert!(page.contains("no pictures: the source video is not recorded"));
            let back = "../".repeat(v.split('/').count()) + "report.html";
            assert!(page.contains(&format!("<a href=\"{back}\">")), "{page}");
        }
    }

    #[test]
    fn small_runs_are_one_page() {
        let dir = folder(&["a.mp4", "d.mp4"]);
        let html = fs_err::read_to_string(write_report(dir.path(), 1).unwrap()).unwrap();
        assert_eq!(html.matches("<section class=\"video\"").count(), 2);
        assert!(html.contains("href=\"#v1\""));
        assert!(!dir.path().join("a.mp4").join(REPORT_FILE).exists());
    }
}
