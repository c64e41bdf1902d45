//! Output files: RFC-4180 CSV and NumPy `.npy`, each written to a temporary name in its
//! final folder and renamed into place when complete, so a final name never holds a
//! partial file. Dropping a writer without `finish` discards its file.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

use crate::shots::Transition;

pub const FRAMES_HEADER: [&str; 9] = [
    "video",
    "frame",
    "time_s",
    "surprise",
    "surprise_z",
    "is_cut",
    "shot",
    "label",
    "confidence",
];
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
pub const CLIPS_HEADER: [&str; 13] = [
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
    "top_label",
    "top_label_share",
    "elapsed_s",
];

/// A file written under a temporary name next to its final path.
pub struct AtomicFile {
    tmp: NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(dir)
            .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Flushes to disk and renames into place.
    pub fn commit(mut self) -> Result<()> {
        self.tmp.as_file_mut().flush()?;
        self.tmp.as_file().sync_data().ok();
        self.tmp
            .persist(&self.path)
            .map_err(|e| e.error)
            .with_context(|| format!("failed to write `{}`", self.path.display()))?;
        Ok(())
    }
}

/// Removes temporary files an earlier run left behind when it was killed (SIGKILL, power
/// loss): `.NAME.XXXXXX.tmp`, the pattern [`AtomicFile`] uses, and nothing else.
pub fn remove_stale_temporaries(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && is_temporary_name(&name) {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!("cannot remove stale `{}`: {e}", entry.path().display());
            }
        }
    }
}

pub fn is_temporary_name(name: &str) -> bool {
    let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    stem.rsplit_once('.').is_some_and(|(base, rand)| {
        !base.is_empty() && rand.len() == 6 && rand.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// Writes a whole CSV atomically.
pub fn write_csv_atomic<R: AsRef<[String]>>(
    path: &Path,
    header: &[&str],
    rows: &[R],
) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    {
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file.file()));
        w.write_record(header)?;
        for r in rows {
            w.write_record(r.as_ref())?;
        }
        w.flush()?;
    }
    file.commit()
}

/// Streams rows into a CSV that appears under its final name only when finished.
pub struct CsvStream {
    writer: csv::Writer<std::io::BufWriter<std::fs::File>>,
    file: AtomicFile,
}

impl CsvStream {
    pub fn create(path: &Path, header: &[&str]) -> Result<Self> {
        let mut file = AtomicFile::create(path)?;
        let handle = file.file().try_clone()?;
        let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(handle));
        writer.write_record(header)?;
        Ok(CsvStream { writer, file })
    }

    pub fn row<I, T>(&mut self, fields: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.writer.write_record(fields)?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.writer.flush()?;
        drop(self.writer);
        self.file.commit()
    }
}

/// Streams float32 rows into a `.npy` file of shape [rows, cols] (NumPy format 1.0).
///
/// `ndarray-npy` needs the whole array in memory; this writes the header with room for
/// any row count and fixes the count at the end, so memory stays flat however long the
/// video.
pub struct NpyStream {
    out: std::io::BufWriter<std::fs::File>,
    file: AtomicFile,
    cols: usize,
    rows: u64,
}

const NPY_HEADER_LEN: usize = 128;

impl NpyStream {
    pub fn create(path: &Path, cols: usize) -> Result<Self> {
        let mut file = AtomicFile::create(path)?;
        let handle = file.file().try_clone()?;
        let mut out = std::io::BufWriter::new(handle);
        out.write_all(&npy_header(0, cols))?;
        Ok(NpyStream {
            out,
            file,
            cols,
            rows: 0,
        })
    }

    pub fn row(&mut self, values: &[f32]) -> Result<()> {
        anyhow::ensure!(
            values.len() == self.cols,
            "embedding has {} values, expected {}",
            values.len(),
            self.cols
        );
        for v in values {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.out.flush()?;
        let mut f = self.out.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&npy_header(self.rows, self.cols))?;
        drop(f);
        self.file.commit()
    }
}

fn npy_header(rows: u64, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let pad = NPY_HEADER_LEN - 10 - dict.len() - 1;
    h.extend_from_slice(&((NPY_HEADER_LEN - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    debug_assert_eq!(h.len(), NPY_HEADER_LEN);
    h
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

pub fn shot_rows(video: &str, shots: &[Shot], labels: Option<&[String]>) -> Vec<Vec<String>> {
    shots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                video.to_string(),
                i.to_string(),
                s.start_frame.to_string(),
                s.end_frame.to_string(),
                format!("{:.3}", s.start_s),
                format!("{:.3}", s.end_s),
                s.transition.map_or("", Transition::as_str).to_string(),
                match (labels, s.majority_label()) {
                    (Some(names), Some(k)) => names[k].clone(),
                    _ => String::new(),
                },
            ]
        })
        .collect()
}

/// PySceneDetect's `list-scenes` CSV (frames 1-based, end frame inclusive, as it writes them).
pub fn pyscenedetect_rows(shots: &[Shot]) -> (String, Vec<Vec<String>>) {
    let timecode = |s: f64| {
        let ms = (s * 1000.0).round() as u64;
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let cuts: Vec<String> = shots.iter().skip(1).map(|s| timecode(s.start_s)).collect();
    let first_line = format!("Timecode List:,{}", cuts.join(","));
    let rows = shots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let len_frames = s.end_frame + 1 - s.start_frame;
            vec![
                (i + 1).to_string(),
                (s.start_frame + 1).to_string(),
                timecode(s.start_s),
                format!("{:.3}", s.start_s),
                (s.end_frame + 1).to_string(),
                timecode(s.end_s),
                format!("{:.3}", s.end_s),
                len_frames.to_string(),
                timecode(s.end_s - s.start_s),
                format!("{:.3}", s.end_s - s.start_s),
            ]
        })
        .collect();
    (first_line, rows)
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

/// Writes PySceneDetect's scene list (its first line is the timecode list, then the table).
pub fn write_pyscenedetect(path: &Path, shots: &[Shot]) -> Result<()> {
    let (first, rows) = pyscenedetect_rows(shots);
    let mut file = AtomicFile::create(path)?;
    {
        let mut buf = std::io::BufWriter::new(file.file());
        writeln!(buf, "{first}")?;
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(buf);
        w.write_record(PYSCENEDETECT_HEADER)?;
        for r in rows {
            w.write_record(&r)?;
        }
        w.flush()?;
    }
    file.commit()
}

/// Formats an optional float for CSV (empty when absent).
pub fn opt_f32(v: Option<f32>, decimals: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or(String::new(), |x| format!("{x:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_stream_round_trip_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.npy");
        let mut w = NpyStream::create(&path, 3).unwrap();
        w.row(&[1.0, 2.0, 3.0]).unwrap();
        w.row(&[4.0, 5.0, 6.0]).unwrap();
        assert!(!path.exists(), "nothing under the final name before finish");
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), NPY_HEADER_LEN + 6 * 4);
        let header = String::from_utf8_lossy(&bytes[10..NPY_HEADER_LEN]);
        assert!(header.contains("'shape': (2, 3)"), "{header}");
        assert_eq!(
            f32::from_le_bytes(
                bytes[NPY_HEADER_LEN + 20..NPY_HEADER_LEN + 24]
                    .try_into()
                    .unwrap()
            ),
            6.0
        );
    }

    #[test]
    fn temporary_names_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let file = AtomicFile::create(&dir.path().join("frames.csv")).unwrap();
        let name = file
            .tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(is_temporary_name(&name), "{name}");
        for other in [
            "frames.csv",
            ".hidden",
            ".x.tmp",
            ".frames.csv.abc.tmp",
            "a.frames.csv.abcdef.tmp",
        ] {
            assert!(!is_temporary_name(other), "{other}");
        }
        std::mem::forget(file); // as if killed
        remove_stale_temporaries(dir.path());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn dropped_stream_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames.csv");
        let mut s = CsvStream::create(&path, &FRAMES_HEADER).unwrap();
        s.row(["a", "1", "0.0", "", "", "0", "0", "", ""]).unwrap();
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn pyscenedetect_rows_are_one_based() {
        let shots = vec![
            Shot {
                start_frame: 0,
                end_frame: 49,
                start_s: 0.0,
                end_s: 2.0,
                transition: None,
                label_counts: vec![],
            },
            Shot {
                start_frame: 50,
                end_frame: 99,
                start_s: 2.0,
                end_s: 4.0,
                transition: Some(Transition::Cut),
                label_counts: vec![],
            },
        ];
        let (first, rows) = pyscenedetect_rows(&shots);
        assert_eq!(first, "Timecode List:,00:00:02.000");
        assert_eq!(
            rows[1][..3],
            [
                "2".to_string(),
                "51".to_string(),
                "00:00:02.000".to_string()
            ]
        );
    }
}
