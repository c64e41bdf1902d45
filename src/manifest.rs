//! The run manifest (`run.json`): what produced an output folder and, per input, what
//! came of it. It is what makes a re-run resume: an input whose entry still matches (same
//! size and modification time, same model, same result-affecting settings, status ok,
//! outputs present) is skipped. Written atomically after every finished input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::discover::InputFile;
use crate::rows::{ClipRow, Status};
use crate::write::write_atomic;

pub const MANIFEST_FILE: &str = "run.json";
pub const MANIFEST_VERSION: u32 = 1;

/// Everything that changes what an input's outputs contain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    pub model_sha256: String,
    /// The result-affecting settings, as a canonical string (sampling, windows, outputs).
    pub settings: String,
}

/// How the input list was split, when it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRecord {
    pub video: String,
    /// The input's path relative to its root: where its outputs are (lossless, unlike
    /// `video`, for a name that is not UTF-8; empty in manifests written before it was).
    #[serde(default, with = "lossless_path")]
    pub rel: PathBuf,
    #[serde(with = "lossless_path")]
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: u128,
    pub status: String,
    pub error: Option<String>,
    pub elapsed_s: f64,
    /// The input's clips.csv row.
    pub row: Vec<String>,
}

impl InputRecord {
    /// The record of an input this run finished (ok or failed), with its clips.csv row.
    pub fn finished(input: &InputFile, row: &ClipRow) -> Self {
        let (size, mtime_ns) = fingerprint(&input.path).unwrap_or((input.size, 0));
        InputRecord {
            video: row.video.clone(),
            rel: input.rel.clone(),
            path: input.path.clone(),
            size,
            mtime_ns,
            status: match row.status {
                Status::Ok => "ok",
                Status::Error => "error",
            }
            .to_string(),
            error: row.error.clone(),
            elapsed_s: row.elapsed_s,
            row: row.to_record(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub framegpt_version: String,
    pub identity: RunIdentity,
    pub shard: Option<ShardInfo>,
    /// Inputs assigned to this run (relative output paths), in processing order.
    pub assigned: Vec<String>,
    /// Finished inputs by relative output path.
    pub inputs: BTreeMap<String, InputRecord>,
    pub complete: bool,
}

impl Manifest {
    pub fn new(identity: RunIdentity, shard: Option<ShardInfo>, assigned: Vec<String>) -> Self {
        Manifest {
            manifest_version: MANIFEST_VERSION,
            framegpt_version: env!("CARGO_PKG_VERSION").to_string(),
            identity,
            shard,
            assigned,
            inputs: BTreeMap::new(),
            complete: false,
        }
    }

    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = fs_err::read_to_string(&path)?;
        let m = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not a framegpt run manifest", path.display()))?;
        Ok(Some(m))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(MANIFEST_FILE), &serde_json::to_vec_pretty(self)?)
    }

    /// Takes over from `previous` every input whose record can be reused as it is (see
    /// [`Manifest::reusable`]); returns the others, in order: what this run analyzes.
    pub fn reuse(
        &mut self,
        previous: Option<&Manifest>,
        inputs: &[&InputFile],
        out_dir: &Path,
        needs: &[&str],
    ) -> Vec<InputFile> {
        let mut to_run = Vec::new();
        for &input in inputs {
            match previous.and_then(|p| p.reusable(input, out_dir, needs)) {
                Some(rec) => self.record(rec.clone()),
                None => to_run.push(input.clone()),
            }
        }
        to_run
    }

    /// Records a finished input.
    pub fn record(&mut self, rec: InputRecord) {
        self.inputs.insert(rec.video.clone(), rec);
    }

    /// The finished record for `input` when it can be reused as it is.
    pub fn reusable(
        &self,
        input: &InputFile,
        out_dir: &Path,
        needs: &[&str],
    ) -> Option<&InputRecord> {
        let rec = self.inputs.get(&rel_key(&input.rel))?;
        let (size, mtime) = fingerprint(&input.path)?;
        let outputs_present = needs
            .iter()
            .all(|f| out_dir.join(&input.rel).join(f).is_file());
        (rec.status == "ok" && rec.size == size && rec.mtime_ns == mtime && outputs_present)
            .then_some(rec)
    }
}

impl InputRecord {
    /// Where the input's outputs are, relative to the output folder.
    pub fn rel_path(&self) -> PathBuf {
        if self.rel.as_os_str().is_empty() {
            PathBuf::from(&self.video)
        } else {
            self.rel.clone()
        }
    }
}

/// An input's key in the manifest and its `video` cell: the relative path, with each byte
/// that is not UTF-8 written `\xNN`, so two such names never share a key (a lossy `�`
/// would merge them).
pub fn rel_key(rel: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut key = String::new();
    for chunk in rel.as_os_str().as_bytes().utf8_chunks() {
        key.push_str(chunk.valid());
        for b in chunk.invalid() {
            key.push_str(&format!("\\x{b:02X}"));
        }
    }
    key
}

/// Paths in run.json: a string when the path is UTF-8, else `{"unix_bytes": [...]}`, so a
/// name that is not UTF-8 survives the round trip (serde's own `PathBuf` refuses it).
mod lossless_path {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Bytes { unix_bytes: Vec<u8> },
    }

    pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
        match path.to_str() {
            Some(text) => Repr::Text(text.to_string()),
            None => Repr::Bytes {
                unix_bytes: path.as_os_str().as_bytes().to_vec(),
            },
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        Ok(match Repr::deserialize(d)? {
            Repr::Text(text) => PathBuf::from(text),
            Repr::Bytes { unix_bytes } => PathBuf::from(OsString::from_vec(unix_bytes)),
        })
    }
}

/// Size and modification time (ns since the epoch) of a file.
pub fn fingerprint(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((meta.len(), mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::new(
            RunIdentity {
                model_sha256: "ab".into(),
                settings: "fps=5".into(),
            },
            Some(ShardInfo { index: 1, count: 3 }),
            vec!["a.mp4".into()],
        );
        m.inputs.insert(
            "a.mp4".into(),
            InputRecord {
                video: "a.mp4".into(),
                rel: <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(
                    b"caf\xe9.mp4".to_vec(),
                )
                .into(),
                path: "/x/a.mp4".into(),
                size: 10,
                mtime_ns: 12345678901234567890,
                status: "ok".into(),
                error: None,
                elapsed_s: 1.5,
                row: vec!["a.mp4".into(), "ok".into()],
            },
        );
        m.save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m));
    }
}
