//! `--shard I/N`: a deterministic slice of the sorted input list, so the same command runs
//! as the tasks of a Kubernetes Indexed Job or a Slurm job array. Inputs are spread by
//! size (largest first, each to the shard with the fewest bytes so far; ties by path and
//! shard number), so shards finish at about the same time whatever the file sizes.

use crate::discover::InputFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// 0-based.
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for ShardSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid shard `{s}`: expected I/N with 0 <= I < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(ShardSpec { index, count })
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard a cluster engine assigned this task, from its environment variables:
/// Slurm job arrays (`SLURM_ARRAY_TASK_ID`, `_COUNT`, `_MIN`, `_STEP`) or Kubernetes
/// Indexed Jobs (`JOB_COMPLETION_INDEX` with `FRAMEGPT_SHARD_COUNT`, which the Job spec
/// sets to its `completions`).
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<ShardSpec>, String> {
    let num = |name: &str| -> Result<Option<usize>, String> {
        match get(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}=`{v}` is not a number")),
        }
    };
    if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let count = num("SLURM_ARRAY_TASK_COUNT")?
            .ok_or("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")?;
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let index = id
            .checked_sub(min)
            .ok_or("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?
            / step;
        return shard(index, count, "SLURM_ARRAY_TASK_ID").map(Some);
    }
    if let Some(index) = num("JOB_COMPLETION_INDEX")? {
        let count = num("FRAMEGPT_SHARD_COUNT")?.ok_or(
            "JOB_COMPLETION_INDEX is set but FRAMEGPT_SHARD_COUNT is not\nhint: set FRAMEGPT_SHARD_COUNT to the Job's `completions` (see docs/kubernetes-indexed-job.yaml)",
        )?;
        return shard(index, count, "JOB_COMPLETION_INDEX").map(Some);
    }
    Ok(None)
}

fn shard(index: usize, count: usize, var: &str) -> Result<ShardSpec, String> {
    if count == 0 || index >= count {
        return Err(format!(
            "{var} gives shard {index} of {count}, which does not exist"
        ));
    }
    Ok(ShardSpec { index, count })
}

/// Indices (into `files`, which is sorted by path) of the inputs this shard takes, in order.
pub fn assign(files: &[InputFile], spec: ShardSpec) -> Vec<usize> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| {
        files[b]
            .size
            .cmp(&files[a].size)
            .then_with(|| files[a].rel.cmp(&files[b].rel))
    });
    let mut load = vec![0u64; spec.count];
    let mut mine = Vec::new();
    for i in order {
        let target = (0..spec.count)
            .min_by_key(|&s| (load[s], s))
            .expect("count > 0");
        load[target] += files[i].size.max(1);
        if target == spec.index {
            mine.push(i);
        }
    }
    mine.sort_unstable();
    mine
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn files(sizes: &[u64]) -> Vec<InputFile> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, s)| InputFile {
                path: format!("/v/{i:03}.mp4").into(),
                rel: format!("{i:03}.mp4").into(),
                size: *s,
            })
            .collect()
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "2/5".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 2, count: 5 })
        );
        for bad in ["5/5", "1", "a/2", "0/0", "-1/3"] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_slurm_and_kubernetes_environments() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            from_env(move |k| m.get(k).cloned())
        };
        assert_eq!(env(&[]), Ok(None));
        assert_eq!(
            env(&[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "1")
            ]),
            Ok(Some(ShardSpec { index: 2, count: 4 }))
        );
        assert_eq!(
            env(&[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_STEP", "2")
            ]),
            Ok(Some(ShardSpec { index: 2, count: 3 }))
        );
        assert_eq!(
            env(&[("JOB_COMPLETION_INDEX", "0"), ("FRAMEGPT_SHARD_COUNT", "2")]),
            Ok(Some(ShardSpec { index: 0, count: 2 }))
        );
        assert!(env(&[("JOB_COMPLETION_INDEX", "0")])
            .unwrap_err()
            .contains("FRAMEGPT_SHARD_COUNT"));
        assert!(env(&[("JOB_COMPLETION_INDEX", "2"), ("FRAMEGPT_SHARD_COUNT", "2")]).is_err());
    }

    #[test]
    fn balances_by_size() {
        let f = files(&[100, 1, 1, 1, 1, 90, 5, 5]);
        let a = assign(&f, ShardSpec { index: 0, count: 2 });
        let b = assign(&f, ShardSpec { index: 1, count: 2 });
        let bytes = |s: &[usize]| s.iter().map(|&i| f[i].size).sum::<u64>();
        assert!(bytes(&a).abs_diff(bytes(&b)) <= 10, "{a:?} {b:?}");
    }

    proptest! {
        #[test]
        fn shards_partition_the_inputs(sizes in proptest::collection::vec(0u64..1000, 0..40), count in 1usize..7) {
            let f = files(&sizes);
            let mut all: Vec<usize> = (0..count).flat_map(|i| assign(&f, ShardSpec { index: i, count })).collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..f.len()).collect::<Vec<_>>());
        }
    }
}
