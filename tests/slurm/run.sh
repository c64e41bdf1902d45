#!/usr/bin/env bash
# Integration test on a real engine: a single-node Slurm cluster (Debian's slurmctld,
# slurmd, munge; started by hand in daemon mode, no systemd) runs `framegpt analyze` as an
# `sbatch --array` job over samples/, then a `--dependency=afterok` merge job; the merged
# output must equal a single run. Daemons are stopped (by pid) when the test ends.
#
#   tests/slurm/run.sh            (root; installs the Slurm packages when missing)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$ROOT/target/release/framegpt
SHARDS=3
fail() { echo "slurm: $*" >&2; echo "slurm: 0 passed, 1 failed"; exit 1; }
[[ -x $BIN ]] || fail "build first: cargo build --release"
if [[ $(id -u) != 0 ]]; then
  echo "slurm: needs root to start the daemons"; echo "slurm: 0 passed, 1 failed"; exit 1
fi
missing=()
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "slurm: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

W=$(mktemp -d /tmp/framegpt-slurm.XXXXXX)
chmod 755 "$W"
stop() {
  for f in slurmd slurmctld munged; do
    [[ -f $W/$f.pid ]] && kill "$(cat "$W/$f.pid")" 2>/dev/null || true
  done
  sleep 1
  for f in slurmd slurmctld munged; do
    [[ -f $W/$f.pid ]] && kill -9 "$(cat "$W/$f.pid")" 2>/dev/null || true
  done
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$W"
}
trap stop EXIT

# munge with a private key and socket.
mkdir -p "$W/munge"
chmod 700 "$W/munge"
dd if=/dev/urandom of="$W/munge/munge.key" bs=1 count=1024 status=none
chmod 400 "$W/munge/munge.key"
munged --force --key-file="$W/munge/munge.key" --socket="$W/munge/munge.sock" \
  --pid-file="$W/munged.pid" --log-file="$W/munge/munged.log" --seed-file="$W/munge/munged.seed"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HOST=$(hostname -s)
MEM=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') * 8 / 10 ))
CPUS=$(nproc)
mkdir -p "$W/state" "$W/spool"
cat > "$W/slurm.conf" <<CONF
ClusterName=framegpt-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$W/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/slurmctld.log
SlurmdLogFile=$W/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
DependencyParameters=kill_invalid_depend
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$W/slurm.conf
slurmctld
slurmd -N "$HOST"
for _ in $(seq 60); do
  sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed)' && break
  sleep 0.5
done
sinfo -h -o '%T' | grep -qE '^(idle|mixed)' || { cat "$W/slurmctld.log" "$W/slurmd.log" >&2; fail "the node never came up"; }

# The array job (one task per shard) and the merge job that waits for all of it.
OUT=$W/out
array=$(sbatch --parsable --array=0-$((SHARDS - 1)) --cpus-per-task=1 -o "$W/task-%a.log" \
  --wrap "$BIN --no-progress analyze $ROOT/samples -r -o $OUT --threads 1")
sbatch --parsable --wait --dependency=afterok:"$array" -o "$W/merge.log" \
  --wrap "$BIN --no-progress merge $OUT/shard-*-of-$SHARDS -o $W/merged" >/dev/null \
  || { cat "$W"/task-*.log "$W/merge.log" >&2 2>/dev/null; fail "the merge job failed"; }
for i in $(seq 0 $((SHARDS - 1))); do
  [[ -f $OUT/shard-$i-of-$SHARDS/run.json ]] || fail "shard $i wrote nothing"
done

# The single run the merged output must equal (clips.csv's timing column aside).
"$BIN" --no-progress -q analyze "$ROOT/samples" -r -o "$W/single" --threads 1
mask() { python3 -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1]))); k=r[0].index("elapsed_s"); [row.__setitem__(k,"~") for row in r[1:]]; csv.writer(sys.stdout).writerows(r)' "$1"; }
diff <(mask "$W/single/clips.csv") <(mask "$W/merged/clips.csv") || fail "merged clips.csv differs from a single run"
diff -r -x clips.csv -x run.json "$W/single" "$W/merged" || fail "merged outputs differ from a single run"
n=$(find "$W/merged" -name frames.csv | wc -l)
echo "slurm: $SHARDS-task array + afterok merge on a real Slurm $(sinfo -V | cut -d' ' -f2) cluster equals a single run ($n videos)"
echo "slurm: 1 passed, 0 failed"
