//! The rows of every CSV `analyze` writes, one `Serialize` struct per schema next to its
//! header, so a column change is one edit. Numbers are formatted here, to the decimals each
//! column has always had; an absent value is an empty field.

use serde::{Serialize, Serializer};

use crate::shots::{Shot, Transition};

/// Which shot lists are written per video (a run asks for a set of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScenesFormat {
    /// shots.csv only.
    Framegpt,
    /// shots.csv and PySceneDetect's scenes.csv.
    Pyscenedetect,
    /// scenes.edl: CMX3600 ([`crate::export`]).
    Edl,
    /// scenes.otio: OpenTimelineIO JSON.
    Otio,
    /// chapters.txt: FFmpeg ffmetadata chapters.
    Chapters,
    /// chapters.vtt: WebVTT chapters.
    Vtt,
}

pub const FRAMES_HEADER: [&str; 13] = [
    "video",
    "frame",
    "time_s",
    "surprise",
    "surprise_z",
    "is_cut",
    "shot",
    "label",
    "confidence",
    "repeated",
    "boundary_prob",
    "gradual_prob",
    "anomaly",
];

/// One row of frames.csv: one analyzed frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameRow<'a> {
    #[serde(serialize_with = "text")]
    pub video: &'a str,
    pub frame: u64,
    #[serde(serialize_with = "fixed::<3, _>")]
    pub time_s: f64,
    #[serde(serialize_with = "finite::<6, _>")]
    pub surprise: Option<f32>,
    #[serde(serialize_with = "finite::<3, _>")]
    pub surprise_z: Option<f32>,
    pub is_cut: u8,
    pub shot: usize,
    #[serde(serialize_with = "opt_text")]
    pub label: Option<&'a str>,
    #[serde(serialize_with = "opt_fixed::<4, _, _>")]
    pub confidence: Option<f32>,
    /// 1 when the frame repeats the previous picture (exactly or within encoder noise).
    pub repeated: u8,
    /// Contract-v2 models: probability that a hard cut starts a shot at this frame...
    #[serde(serialize_with = "opt_fixed::<4, _, _>")]
    pub boundary_prob: Option<f32>,
    /// ...and that the frame lies inside a gradual transition (dissolve or fade).
    #[serde(serialize_with = "opt_fixed::<4, _, _>")]
    pub gradual_prob: Option<f32>,
    /// Models adapted to a camera (`framegpt.normal`): how unusual the frame is for it
    /// ([`crate::normal`]); a repeated frame has the anomaly of the picture it repeats; empty on
    /// the first frame and without a normal.
    #[serde(serialize_with = "finite::<3, _>")]
    pub anomaly: Option<f32>,
}

pub const SHOTS_HEADER: [&str; 8] = [
    "video",
    "shot",
    "start_frame",
    "end_frame",
    "start_s",
    "end_s",
    "transition",
    "label",
];

/// One row of shots.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShotRow<'a> {
    #[serde(serialize_with = "text")]
    pub video: &'a str,
    pub shot: usize,
    pub start_frame: u64,
    pub end_frame: u64,
    #[serde(serialize_with = "fixed::<3, _>")]
    pub start_s: f64,
    #[serde(serialize_with = "fixed::<3, _>")]
    pub end_s: f64,
    /// How the shot began (empty for the first shot).
    pub transition: Option<&'static str>,
    /// The label most of the shot's frames have.
    #[serde(serialize_with = "opt_text")]
    pub label: Option<&'a str>,
}

/// The rows of shots.csv for one video.
pub fn shot_rows<'a>(
    video: &'a str,
    shots: &[Shot],
    labels: Option<&'a [String]>,
) -> Vec<ShotRow<'a>> {
    shots
        .iter()
        .enumerate()
        .map(|(i, s)| ShotRow {
            video,
            shot: i,
            start_frame: s.start_frame,
            end_frame: s.end_frame,
            start_s: s.start_s,
            end_s: s.end_s,
            transition: s.transition.map(Transition::as_str),
            label: match (labels, s.majority_label()) {
                (Some(names), Some(k)) => Some(names[k].as_str()),
                _ => None,
            },
        })
        .collect()
}

pub const CLIPS_HEADER: [&str; 16] = [
    "video",
    "status",
    "error",
    "duration_s",
    "frames_decoded",
    "frames_analyzed",
    "decode_errors",
    "shots",
    "mean_surprise",
    "max_surprise",
    "mean_anomaly",
    "max_anomaly",
    "max_anomaly_s",
    "top_label",
    "top_label_share",
    "elapsed_s",
];

/// Whether an input was analyzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Error,
}

/// One row of clips.csv: one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipRow {
    #[serde(serialize_with = "text")]
    pub video: String,
    pub status: Status,
    #[serde(serialize_with = "opt_error")]
    pub error: Option<String>,
    #[serde(serialize_with = "opt_fixed::<3, _, _>")]
    pub duration_s: Option<f64>,
    pub frames_decoded: u64,
    pub frames_analyzed: u64,
    pub decode_errors: u64,
    pub shots: u64,
    #[serde(serialize_with = "finite::<6, _>")]
    pub mean_surprise: Option<f32>,
    #[serde(serialize_with = "finite::<6, _>")]
    pub max_surprise: Option<f32>,
    /// Models adapted to a camera: the mean and the highest `anomaly` of the video's frames,
    /// and the time of the first frame that reached the highest (where to look first).
    #[serde(serialize_with = "finite::<3, _>")]
    pub mean_anomaly: Option<f32>,
    #[serde(serialize_with = "finite::<3, _>")]
    pub max_anomaly: Option<f32>,
    #[serde(serialize_with = "opt_fixed::<3, _, _>")]
    pub max_anomaly_s: Option<f64>,
    #[serde(serialize_with = "opt_text")]
    pub top_label: Option<String>,
    #[serde(serialize_with = "opt_fixed::<4, _, _>")]
    pub top_label_share: Option<f32>,
    #[serde(serialize_with = "fixed::<3, _>")]
    pub elapsed_s: f64,
}

impl ClipRow {
    /// The row of an input that produced no results.
    pub fn failed(video: String, error: String) -> Self {
        ClipRow {
            video,
            status: Status::Error,
            error: Some(error.trim_end().to_string()),
            duration_s: None,
            frames_decoded: 0,
            frames_analyzed: 0,
            decode_errors: 0,
            shots: 0,
            mean_surprise: None,
            max_surprise: None,
            mean_anomaly: None,
            max_anomaly: None,
            max_anomaly_s: None,
            top_label: None,
            top_label_share: None,
            elapsed_s: 0.0,
        }
    }

    /// The row as clips.csv fields (the form `run.json` keeps it in).
    pub fn to_record(&self) -> Vec<String> {
        to_record(self)
    }
}

pub const PYSCENEDETECT_HEADER: [&str; 10] = [
    "Scene Number",
    "Start Frame",
    "Start Timecode",
    "Start Time (seconds)",
    "End Frame",
    "End Timecode",
    "End Time (seconds)",
    "Length (frames)",
    "Length (timecode)",
    "Length (seconds)",
];

/// One row of PySceneDetect's `list-scenes` CSV (frames 1-based, end frame inclusive).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SceneRow {
    #[serde(rename = "Scene Number")]
    pub scene_number: usize,
    #[serde(rename = "Start Frame")]
    pub start_frame: u64,
    #[serde(rename = "Start Timecode")]
    pub start_timecode: String,
    #[serde(rename = "Start Time (seconds)", serialize_with = "fixed::<3, _>")]
    pub start_time_s: f64,
    #[serde(rename = "End Frame")]
    pub end_frame: u64,
    #[serde(rename = "End Timecode")]
    pub end_timecode: String,
    #[serde(rename = "End Time (seconds)", serialize_with = "fixed::<3, _>")]
    pub end_time_s: f64,
    #[serde(rename = "Length (frames)")]
    pub length_frames: u64,
    #[serde(rename = "Length (timecode)")]
    pub length_timecode: String,
    #[serde(rename = "Length (seconds)", serialize_with = "fixed::<3, _>")]
    pub length_s: f64,
}

/// PySceneDetect's scene list: its first line (the timecode list of the cuts) and rows.
pub fn scene_rows(shots: &[Shot]) -> (String, Vec<SceneRow>) {
    let cuts: Vec<String> = shots.iter().skip(1).map(|s| timecode(s.start_s)).collect();
    let first_line = format!("Timecode List:,{}", cuts.join(","));
    let rows = shots
        .iter()
        .enumerate()
        .map(|(i, s)| SceneRow {
            scene_number: i + 1,
            start_frame: s.start_frame + 1,
            start_timecode: timecode(s.start_s),
            start_time_s: s.start_s,
            end_frame: s.end_frame + 1,
            end_timecode: timecode(s.end_s),
            end_time_s: s.end_s,
            length_frames: s.end_frame + 1 - s.start_frame,
            length_timecode: timecode(s.end_s - s.start_s),
            length_s: s.end_s - s.start_s,
        })
        .collect();
    (first_line, rows)
}

/// `HH:MM:SS.mmm`.
fn timecode(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Any row as the CSV fields it is written as.
pub fn to_record<T: Serialize>(row: &T) -> Vec<String> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.serialize(row).expect("rows serialize to CSV");
    let bytes = w.into_inner().expect("in memory");
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    r.records()
        .next()
        .and_then(Result::ok)
        .map(|rec| rec.iter().map(String::from).collect())
        .unwrap_or_default()
}

/// A text cell as written. One a spreadsheet would take for a formula (it starts with `=`,
/// `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, as OWASP's "CSV
/// Injection" page advises; so does one that already starts with quotes before such a
/// character, so [`restore`] gives back every text exactly. Only text columns (video,
/// error, label) go through this; numbers never do.
pub fn neutralize(text: &str) -> std::borrow::Cow<'_, str> {
    if is_formula_like(text) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The text a [`neutralize`]d cell came from (for readers of our own CSVs).
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if is_formula_like(rest) => rest,
        _ => cell,
    }
}

fn is_formula_like(text: &str) -> bool {
    text.trim_start_matches('\'')
        .starts_with(['=', '+', '-', '@', '\t', '\r'])
}

fn text<T: AsRef<str>, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&neutralize(v.as_ref()))
}

/// A text cell; empty when absent.
fn opt_text<T: AsRef<str>, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => text(v, s),
        None => s.serialize_none(),
    }
}

/// An error cell: a text cell without trailing whitespace (FFmpeg's messages end in a
/// newline).
fn opt_error<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    opt_text(&v.as_deref().map(str::trim_end), s)
}

/// `v` with `D` decimals.
fn fixed<const D: usize, S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.prec$}", prec = D))
}

/// `v` with `D` decimals; empty when absent.
fn opt_fixed<const D: usize, S: Serializer, T: std::fmt::Display>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&format_args!("{v:.prec$}", prec = D)),
        None => s.serialize_str(""),
    }
}

/// `v` with `D` decimals; empty when absent or not finite.
fn finite<const D: usize, S: Serializer>(v: &Option<f32>, s: S) -> Result<S::Ok, S::Error> {
    opt_fixed::<D, S, f32>(&v.filter(|x| x.is_finite()), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header a row struct writes when csv derives it from the field names.
    fn derived_header<T: Serialize>(row: &T) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        text.lines().next().unwrap().to_string()
    }

    fn shot(start_frame: u64, end_frame: u64, start_s: f64, end_s: f64) -> Shot {
        Shot {
            start_frame,
            end_frame,
            start_s,
            end_s,
            transition: (start_frame > 0).then_some(Transition::Cut),
            label_counts: vec![],
        }
    }

    #[test]
    fn headers_match_the_row_fields() {
        let frame = FrameRow {
            video: "a.mp4",
            frame: 3,
            time_s: 0.12,
            surprise: Some(0.5),
            surprise_z: None,
            is_cut: 0,
            shot: 0,
            label: None,
            confidence: None,
            repeated: 0,
            boundary_prob: None,
            gradual_prob: None,
            anomaly: None,
        };
        assert_eq!(derived_header(&frame), FRAMES_HEADER.join(","));
        let shots = [shot(0, 9, 0.0, 1.0)];
        let rows = shot_rows("a.mp4", &shots, None);
        assert_eq!(derived_header(&rows[0]), SHOTS_HEADER.join(","));
        let clip = ClipRow::failed("a.mp4".into(), "bad".into());
        assert_eq!(derived_header(&clip), CLIPS_HEADER.join(","));
        let (_, scenes) = scene_rows(&shots);
        assert_eq!(derived_header(&scenes[0]), PYSCENEDETECT_HEADER.join(","));
    }

    #[test]
    fn numbers_keep_their_decimals_and_absent_values_are_empty() {
        let frame = FrameRow {
            video: "a,b.mp4",
            frame: 3,
            time_s: 0.1234,
            surprise: Some(f32::NAN),
            surprise_z: Some(1.23456),
            is_cut: 1,
            shot: 2,
            label: Some("bird"),
            confidence: Some(0.5),
            repeated: 0,
            boundary_prob: Some(0.98766),
            gradual_prob: None,
            anomaly: Some(12.34567),
        };
        assert_eq!(
            to_record(&frame),
            [
                "a,b.mp4", "3", "0.123", "", "1.235", "1", "2", "bird", "0.5000", "0", "0.9877",
                "", "12.346"
            ]
        );
        let clip = ClipRow::failed("x.mp4".into(), "cannot open".into());
        assert_eq!(
            clip.to_record(),
            [
                "x.mp4",
                "error",
                "cannot open",
                "",
                "0",
                "0",
                "0",
                "0",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "0.000"
            ]
        );
    }

    #[test]
    fn pyscenedetect_rows_are_one_based() {
        let shots = vec![shot(0, 49, 0.0, 2.0), shot(50, 99, 2.0, 4.0)];
        let (first, rows) = scene_rows(&shots);
        assert_eq!(first, "Timecode List:,00:00:02.000");
        assert_eq!(
            to_record(&rows[1])[..3],
            [
                "2".to_string(),
                "51".to_string(),
                "00:00:02.000".to_string()
            ]
        );
        assert_eq!(to_record(&rows[1])[7], "50");
    }

    #[test]
    fn formula_cells_are_neutralized_and_restored_exactly() {
        for (text, cell) in [
            ("=1+1.mp4", "'=1+1.mp4"),
            ("+x", "'+x"),
            ("-x", "'-x"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("'quoted", "'quoted"),
            ("a=b.mp4", "a=b.mp4"),
            ("", ""),
        ] {
            assert_eq!(neutralize(text), cell, "{text:?}");
            assert_eq!(restore(cell), text, "{cell:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn neutralized_cells_never_start_a_formula_and_restore(text in r"[=+@'\t\r a-z.\-]{0,10}") {
            let cell = neutralize(&text);
            proptest::prop_assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']));
            proptest::prop_assert_eq!(restore(&cell), text.as_str());
        }
    }
}
