//! `framegpt merge DIR... -o OUT`: joins the output folders of sharded runs into the files
//! a single run over all inputs would have written. Refuses shards made with different
//! models or settings, shards of different splits, and unfinished shards.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{GlobalArgs, MergeArgs};
use crate::exit::{ExitCode, UsageError};
use crate::manifest::{self, InputRecord, Manifest, MANIFEST_FILE};
use crate::rows;
use crate::write::{self, AtomicFile};

/// `merge`'s arguments, checked: the shard folders with their manifests.
pub struct MergeSettings {
    pub shards: Vec<(PathBuf, Manifest)>,
    pub output: PathBuf,
    pub quiet: bool,
}

impl MergeSettings {
    /// Loads every folder's manifest and checks that the folders belong together.
    pub fn from_args(args: &MergeArgs, global: &GlobalArgs) -> Result<Self, UsageError> {
        let mut shards: Vec<(PathBuf, Manifest)> = Vec::new();
        for dir in &args.dirs {
            let m = Manifest::load(dir).map_err(UsageError)?.ok_or_else(|| {
                UsageError::msg(format!(
                    "`{}` has no {MANIFEST_FILE}: not a framegpt output folder",
                    dir.display()
                ))
            })?;
            shards.push((dir.clone(), m));
        }
        check_compatible(&shards).map_err(UsageError)?;
        Ok(MergeSettings {
            shards,
            output: args.output.clone(),
            quiet: global.quiet,
        })
    }
}

pub fn run(args: &MergeArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let settings = MergeSettings::from_args(args, global)?;
    let (shards, output) = (&settings.shards, &settings.output);
    let mut entries: Vec<(PathBuf, &Path, &InputRecord)> = Vec::new();
    for (dir, m) in shards {
        for rec in m.inputs.values() {
            entries.push((rec.rel_path(), dir.as_path(), rec));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(UsageError::msg(format!(
            "input `{}` is in both `{}` and `{}`: these folders overlap",
            w[0].0.display(),
            w[0].1.display(),
            w[1].1.display()
        ))
        .into());
    }

    fs_err::create_dir_all(output)?;
    let mut files_copied = 0;
    for (video, dir, rec) in &entries {
        if rec.status != "ok" && !dir.join(video).is_dir() {
            continue;
        }
        let src = dir.join(video);
        if src.is_dir() {
            for entry in fs_err::read_dir(&src)? {
                let entry = entry?;
                let name = entry.file_name();
                if entry.file_type()?.is_file() && !name.to_string_lossy().starts_with('.') {
                    copy_atomic(&entry.path(), &output.join(video).join(&name))?;
                    files_copied += 1;
                }
            }
        }
    }
    // clips.csv rows: inputs in path order, then the inputs that matched nothing (recorded
    // by shard 0 only, in its clips.csv but not in its manifest).
    let mut records: Vec<Vec<String>> = entries.iter().map(|(_, _, rec)| rec.row.clone()).collect();
    let first = shards
        .iter()
        .find(|(_, m)| m.shard.is_none_or(|s| s.index == 0))
        .unwrap_or(&shards[0]);
    records.extend(unmatched_rows(&first.0, &first.1)?);
    write::write_csv_atomic(&output.join("clips.csv"), &rows::CLIPS_HEADER, &records)?;

    let mut merged = Manifest::new(
        shards[0].1.identity.clone(),
        None,
        entries
            .iter()
            .map(|(v, _, _)| manifest::rel_key(v))
            .collect(),
    );
    for (_, _, rec) in &entries {
        merged.inputs.insert(rec.video.clone(), (*rec).clone());
    }
    merged.complete = true;
    merged.save(output)?;
    if !settings.quiet {
        eprintln!(
            "merged {} folders: {} inputs, {} files; results: `{}`",
            shards.len(),
            entries.len(),
            files_copied,
            output.join("clips.csv").display()
        );
    }
    let failed = records
        .iter()
        .filter(|r| r.get(1).is_some_and(|s| s != "ok"))
        .count();
    Ok(if failed > 0 {
        ExitCode::SomeInputsFailed
    } else {
        ExitCode::Success
    })
}

fn check_compatible(shards: &[(PathBuf, Manifest)]) -> Result<()> {
    let (dir0, m0) = &shards[0];
    for (dir, m) in shards {
        if m.identity.model_sha256 != m0.identity.model_sha256 {
            anyhow::bail!(
                "`{}` and `{}` were made with different models (sha256 {} vs {})",
                dir0.display(),
                dir.display(),
                short(&m0.identity.model_sha256),
                short(&m.identity.model_sha256)
            );
        }
        if m.identity.settings != m0.identity.settings {
            anyhow::bail!(
                "`{}` and `{}` were made with different settings:\n  {}\n  {}",
                dir0.display(),
                dir.display(),
                m0.identity.settings,
                m.identity.settings
            );
        }
        if !m.complete {
            anyhow::bail!(
                "`{}` is unfinished ({} of {} inputs done)\nhint: re-run that shard's command; it resumes where it stopped",
                dir.display(),
                m.inputs.len(),
                m.assigned.len()
            );
        }
    }
    let counts: Vec<Option<usize>> = shards
        .iter()
        .map(|(_, m)| m.shard.map(|s| s.count))
        .collect();
    if counts.iter().any(|c| *c != counts[0]) {
        anyhow::bail!("the folders come from different splits (shard counts {counts:?})");
    }
    if let Some(count) = counts[0] {
        let mut seen = vec![None::<&Path>; count];
        for (dir, m) in shards {
            let i = m.shard.expect("same split").index;
            if let Some(other) = seen[i] {
                anyhow::bail!(
                    "`{}` and `{}` are both shard {i}/{count}",
                    other.display(),
                    dir.display()
                );
            }
            seen[i] = Some(dir);
        }
        let missing: Vec<String> = seen
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_none())
            .map(|(i, _)| format!("{i}/{count}"))
            .collect();
        if !missing.is_empty() {
            anyhow::bail!("shards missing: {}", missing.join(", "));
        }
    }
    Ok(())
}

fn unmatched_rows(dir: &Path, m: &Manifest) -> Result<Vec<Vec<String>>> {
    let path = dir.join("clips.csv");
    let mut reader = csv::Reader::from_path(&path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec?;
        let video = rec.get(0).unwrap_or_default();
        if !m.inputs.keys().any(|k| rows::neutralize(k) == video) {
            rows.push(rec.iter().map(String::from).collect());
        }
    }
    Ok(rows)
}

fn copy_atomic(src: &Path, dst: &Path) -> Result<()> {
    let mut out = AtomicFile::create(dst)?;
    let mut input = fs_err::File::open(src)?;
    std::io::copy(&mut input, out.file())?;
    out.commit()
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
