//! Editor exports of a video's shot list: CMX3600 EDL, OpenTimelineIO JSON, FFmpeg
//! chapters (ffmetadata) and WebVTT chapters. Pure functions from shots + frame rate to
//! text; [`write_scene_files`] puts them beside `shots.csv`.
//!
//! Frame numbers are decoded-frame indices (as in `shots.csv`), so EDL and OTIO cut points
//! are frame-exact; chapters and VTT use the shots' times in milliseconds.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::rows::ScenesFormat;
use crate::shots::Shot;
use crate::write;

/// One shot as the exports need it: frames inclusive, times in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ShotSpan {
    pub start_frame: u64,
    pub end_frame: u64,
    pub start_s: f64,
    pub end_s: f64,
    /// `cut`, `dissolve`, `fade`; None for the first shot.
    pub transition: Option<String>,
}

/// The spans of a video's shots.
pub fn spans(shots: &[Shot]) -> Vec<ShotSpan> {
    shots
        .iter()
        .map(|s| ShotSpan {
            start_frame: s.start_frame,
            end_frame: s.end_frame,
            start_s: s.start_s,
            end_s: s.end_s,
            transition: s.transition.map(|t| t.as_str().to_string()),
        })
        .collect()
}

impl ShotSpan {
    /// Frames in the shot (end inclusive).
    pub fn len_frames(&self) -> u64 {
        self.end_frame + 1 - self.start_frame.min(self.end_frame)
    }

    fn title(&self, index: usize) -> String {
        match &self.transition {
            Some(t) => format!("Shot {} ({t})", index + 1),
            None => format!("Shot {}", index + 1),
        }
    }
}

/// The file name each format is written to (None: `shots.csv` itself).
pub fn file_name(format: ScenesFormat) -> Option<&'static str> {
    match format {
        ScenesFormat::Framegpt => None,
        ScenesFormat::Pyscenedetect => Some("scenes.csv"),
        ScenesFormat::Edl => Some("scenes.edl"),
        ScenesFormat::Otio => Some("scenes.otio"),
        ScenesFormat::Chapters => Some("chapters.txt"),
        ScenesFormat::Vtt => Some("chapters.vtt"),
    }
}

/// SMPTE non-drop-frame timecode `HH:MM:SS:FF` at the nominal (rounded) rate, the way
/// PySceneDetect's `save-edl` and OpenTimelineIO's CMX3600 reader count frames.
pub fn smpte_timecode(frame: u64, fps: f64) -> String {
    let rate = (fps.round() as u64).max(1);
    let (ff, secs) = (frame % rate, frame / rate);
    format!(
        "{:02}:{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ff
    )
}

/// CMX3600 EDL, as PySceneDetect's `save-edl` writes it: one event per shot, source in =
/// the shot's first frame, source out = one past its last (CMX out points are exclusive),
/// record times laid end to end from zero.
pub fn edl(title: &str, clip_name: &str, shots: &[ShotSpan], fps: f64) -> String {
    let mut s = format!(
        "TITLE: {}\nFCM: NON-DROP FRAME\n\n",
        one_line(title).to_uppercase()
    );
    let mut record = 0;
    for (i, shot) in shots.iter().enumerate() {
        let len = shot.len_frames();
        s.push_str(&format!(
            "{:03}  AX       V     C        {} {} {} {}\n* FROM CLIP NAME: {}\n\n",
            i + 1,
            smpte_timecode(shot.start_frame, fps),
            smpte_timecode(shot.start_frame + len, fps),
            smpte_timecode(record, fps),
            smpte_timecode(record + len, fps),
            one_line(clip_name)
        ));
        record += len;
    }
    s
}

/// An OpenTimelineIO timeline (`Timeline.1` JSON): one video track, one clip per shot,
/// each clip's source range in frames of the video's rate, all referencing `media_url`.
pub fn otio(name: &str, media_url: &str, shots: &[ShotSpan], fps: f64) -> String {
    let time = |v: u64| json!({"OTIO_SCHEMA": "RationalTime.1", "rate": fps, "value": v as f64});
    let range = |start: u64, len: u64| json!({"OTIO_SCHEMA": "TimeRange.1", "start_time": time(start), "duration": time(len)});
    let total = shots.last().map_or(0, |s| s.end_frame + 1);
    let clips: Vec<serde_json::Value> = shots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "OTIO_SCHEMA": "Clip.2",
                "name": s.title(i),
                "metadata": {"framegpt": {
                    "shot": i,
                    "transition": s.transition,
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                }},
                "source_range": range(s.start_frame, s.len_frames()),
                "effects": [],
                "markers": [],
                "enabled": true,
                "media_references": {"DEFAULT_MEDIA": {
                    "OTIO_SCHEMA": "ExternalReference.1",
                    "name": name,
                    "metadata": {},
                    "available_range": range(0, total),
                    "available_image_bounds": null,
                    "target_url": media_url,
                }},
                "active_media_reference_key": "DEFAULT_MEDIA",
            })
        })
        .collect();
    let timeline = json!({
        "OTIO_SCHEMA": "Timeline.1",
        "name": name,
        "metadata": {"framegpt": {"fps": fps}},
        "global_start_time": null,
        "tracks": {
            "OTIO_SCHEMA": "Stack.1",
            "name": "tracks",
            "metadata": {},
            "source_range": null,
            "effects": [],
            "markers": [],
            "enabled": true,
            "children": [{
                "OTIO_SCHEMA": "Track.1",
                "name": "V1",
                "metadata": {},
                "source_range": null,
                "effects": [],
                "markers": [],
                "enabled": true,
                "kind": "Video",
                "children": clips,
            }],
        },
    });
    let mut text = serde_json::to_string_pretty(&timeline).expect("JSON values serialize");
    text.push('\n');
    text
}

/// FFmpeg's ffmetadata with one chapter per shot (`ffmpeg -i VIDEO -i chapters.txt
/// -map_metadata 1 -codec copy OUT`), times in milliseconds.
pub fn ffmetadata_chapters(title: &str, shots: &[ShotSpan]) -> String {
    let mut s = format!(";FFMETADATA1\ntitle={}\n", ffmetadata_escape(title));
    for (i, shot) in shots.iter().enumerate() {
        s.push_str(&format!(
            "\n[CHAPTER]\nTIMEBASE=1/1000\nSTART={}\nEND={}\ntitle={}\n",
            millis(shot.start_s),
            millis(shot.end_s).max(millis(shot.start_s) + 1),
            ffmetadata_escape(&shot.title(i))
        ));
    }
    s
}

/// WebVTT chapters (`<track kind="chapters">`), one cue per shot.
pub fn vtt_chapters(shots: &[ShotSpan]) -> String {
    let mut s = String::from("WEBVTT\n");
    for (i, shot) in shots.iter().enumerate() {
        let start = millis(shot.start_s);
        s.push_str(&format!(
            "\n{}\n{} --> {}\n{}\n",
            i + 1,
            vtt_time(start),
            vtt_time(millis(shot.end_s).max(start + 1)),
            shot.title(i)
        ));
    }
    s
}

/// Writes the files of every requested format into `dir` (atomically, one by one).
/// `fps` None (a stream that declares no frame rate) skips the frame-based formats with a
/// warning: an EDL at a guessed rate would put the cuts on the wrong frames.
pub fn write_scene_files(
    dir: &Path,
    formats: &[ScenesFormat],
    video: &str,
    media_path: &Path,
    shots: &[ShotSpan],
    fps: Option<f64>,
) -> Result<()> {
    for &format in formats {
        let Some(name) = file_name(format) else {
            continue;
        };
        let text = match (format, fps) {
            (ScenesFormat::Edl | ScenesFormat::Otio, None) => {
                tracing::warn!("`{video}` declares no frame rate: `{name}` not written");
                continue;
            }
            (ScenesFormat::Edl, Some(fps)) => edl(video, &clip_name(video), shots, fps),
            (ScenesFormat::Otio, Some(fps)) => otio(video, &file_url(media_path), shots, fps),
            (ScenesFormat::Chapters, _) => ffmetadata_chapters(video, shots),
            (ScenesFormat::Vtt, _) => vtt_chapters(shots),
            // Written by `write` (its CSV dialect lives there).
            (ScenesFormat::Pyscenedetect | ScenesFormat::Framegpt, _) => continue,
        };
        write::write_atomic(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

fn clip_name(video: &str) -> String {
    Path::new(video)
        .file_name()
        .map_or(video.to_string(), |n| n.to_string_lossy().to_string())
}

/// `file://` URL of an absolute path (percent-encoding what a URL cannot hold).
fn file_url(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut url = String::from("file://");
    for b in abs.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(b as char)
            }
            _ => url.push_str(&format!("%{b:02X}")),
        }
    }
    url
}

fn millis(s: f64) -> u64 {
    (s.max(0.0) * 1000.0).round() as u64
}

fn vtt_time(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// ffmetadata escapes `=`, `;`, `#`, `\` and newlines with a backslash.
fn ffmetadata_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '=' | ';' | '#' | '\\' | '\n') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shots() -> Vec<ShotSpan> {
        vec![
            ShotSpan {
                start_frame: 0,
                end_frame: 59,
                start_s: 0.0,
                end_s: 3.0,
                transition: None,
            },
            ShotSpan {
                start_frame: 60,
                end_frame: 83,
                start_s: 3.0,
                end_s: 4.2,
                transition: Some("cut".into()),
            },
        ]
    }

    #[test]
    fn timecodes_count_frames_at_the_nominal_rate() {
        for (frame, fps, want) in [
            (0, 20.0, "00:00:00:00"),
            (60, 20.0, "00:00:03:00"),
            (61, 20.0, "00:00:03:01"),
            (29, 29.97, "00:00:00:29"),
            (30, 29.97, "00:00:01:00"),
            (25 * 3661 + 7, 25.0, "01:01:01:07"),
        ] {
            assert_eq!(smpte_timecode(frame, fps), want, "{frame} @ {fps}");
        }
    }

    #[test]
    fn edl_events_are_contiguous_with_exclusive_out_points() {
        let text = edl("cut.mp4", "cut.mp4", &shots(), 20.0);
        assert!(
            text.starts_with("TITLE: CUT.MP4\nFCM: NON-DROP FRAME\n\n"),
            "{text}"
        );
        assert!(text.contains(
            "001  AX       V     C        00:00:00:00 00:00:03:00 00:00:00:00 00:00:03:00\n"
        ));
        assert!(text.contains(
            "002  AX       V     C        00:00:03:00 00:00:04:04 00:00:03:00 00:00:04:04\n"
        ));
        assert_eq!(text.matches("* FROM CLIP NAME: cut.mp4").count(), 2);
    }

    #[test]
    fn chapters_and_vtt_have_one_entry_per_shot() {
        let ff = ffmetadata_chapters("a=b.mp4", &shots());
        assert!(ff.starts_with(";FFMETADATA1\ntitle=a\\=b.mp4\n"), "{ff}");
        assert_eq!(ff.matches("[CHAPTER]").count(), 2);
        assert!(
            ff.contains("START=3000\nEND=4200\ntitle=Shot 2 (cut)\n"),
            "{ff}"
        );
        let vtt = vtt_chapters(&shots());
        assert!(vtt.starts_with("WEBVTT\n\n1\n00:00:00.000 --> 00:00:03.000\nShot 1\n"));
        assert!(vtt.contains("\n2\n00:00:03.000 --> 00:00:04.200\nShot 2 (cut)\n"));
    }

    #[test]
    fn otio_clips_carry_frame_ranges() {
        let v: serde_json::Value =
            serde_json::from_str(&otio("cut.mp4", "file:///x/cut.mp4", &shots(), 20.0)).unwrap();
        let clips = v["tracks"]["children"][0]["children"].as_array().unwrap();
        assert_eq!(clips.len(), 2);
        assert_eq!(clips[1]["source_range"]["start_time"]["value"], 60.0);
        assert_eq!(clips[1]["source_range"]["duration"]["value"], 24.0);
    }

    #[test]
    fn file_urls_escape_what_urls_cannot_hold() {
        assert_eq!(
            file_url(Path::new("/a b/c#d.mp4")),
            "file:///a%20b/c%23d.mp4"
        );
    }
}
