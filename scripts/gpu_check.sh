#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: proves that `--device cuda` really runs the model on the
# GPU (not a silent CPU fallback) and measures end-to-end frames/s on the GPU against the
# CPU for the same directory. One prepared run; prints a markdown report.
#
#   scripts/gpu_check.sh [DIR] [--out FILE]
#
# DIR: videos to analyze [the benchmark footage of scripts/bench_footage.sh when it is
# there, else samples/]. Needs `scripts/setup.sh --gpu` done (the onnxruntime-gpu library and
# the CUDA/cuDNN libraries from PyPI) and a release build (FRAMEGPT_BIN to use another
# binary). The proof, each of which fails the check:
#   1. `analyze --device cuda` (not `auto`: no fallback) exits 0 and its log names cuda:0;
#   2. nvidia-smi lists the framegpt process with GPU memory while it runs;
#   3. the per-frame results agree with the CPU run (max |Δ surprise|, embeddings cosine);
#   4. the GPU run spends less CPU time per frame on inference than the CPU run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_FILE="" DIR=""
while (($#)); do
  case $1 in
    --out) OUT_FILE=${2:?--out needs a file}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) DIR=$1 ;;
  esac
  shift
done
say() { printf 'gpu_check: %s\n' "$*" >&2; }
die() { printf 'gpu_check: FAIL: %s\n' "$*" >&2; exit 1; }

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver on this machine"
nvidia-smi -L >&2 || die "nvidia-smi sees no GPU"
BIN=${FRAMEGPT_BIN:-$ROOT/target/release/framegpt}
[[ -x $BIN ]] || die "no framegpt binary at $BIN (run scripts/setup.sh --gpu, or set FRAMEGPT_BIN)"
if [[ -z $DIR ]]; then
  DIR=$HOME/.cache/framegpt-bench/footage
  compgen -G "$DIR/*.mp4" >/dev/null || DIR=$ROOT/samples
fi
[[ -d $DIR ]] || die "no such directory: $DIR"
THREADS=$(nproc)
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

run() { # label, device, extra args... -> $WORK/<label>/ and $WORK/<label>.{log,time}
  local label=$1 device=$2; shift 2
  /usr/bin/env time -f '%e %U %S %M' -o "$WORK/$label.time" \
    "$BIN" -v --threads "$THREADS" --color never analyze "$DIR" -r -o "$WORK/$label" \
    --device "$device" --embeddings npy --no-progress "$@" 2>"$WORK/$label.log" &
  local pid=$! seen=0
  while kill -0 "$pid" 2>/dev/null; do
    # $pid is `time`; framegpt is its child.
    local ids; ids=$(pgrep -P "$pid" | paste -sd'|' -); ids=${ids:-$pid}
    if nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader 2>/dev/null |
      grep -E "^($ids)," >"$WORK/$label.smi.now"; then
      seen=1
      mv "$WORK/$label.smi.now" "$WORK/$label.smi"
    fi
    sleep 0.5
  done
  wait "$pid" || { tail -20 "$WORK/$label.log" >&2; die "analyze --device $device failed"; }
  echo "$seen" >"$WORK/$label.seen"
}

say "CPU run ($THREADS threads) on $DIR"
run cpu cpu
say "GPU run (--device cuda, no fallback) on $DIR"
run gpu cuda
run gpu2 cuda  # a second GPU run: the first pays for CUDA's start-up and kernel loading

grep -q 'device=cuda:0' "$WORK/gpu.log" || { grep -i 'device' "$WORK/gpu.log" >&2 || true; die "the GPU run's log does not name cuda:0"; }
[[ $(cat "$WORK/gpu.seen") == 1 ]] || die "nvidia-smi never listed the framegpt process: the model did not run on the GPU"

python3 - "$WORK" "$DIR" "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)" >"$WORK/report.md" <<'PY'
import csv, glob, math, os, sys
work, src, gpu = sys.argv[1], sys.argv[2], sys.argv[3]

def times(label):
    wall, user, sys_, rss = open(os.path.join(work, label + ".time")).read().split()
    return float(wall), float(user) + float(sys_), int(rss)

def frames(label):
    rows = {}
    for path in glob.glob(os.path.join(work, label, "**", "frames.csv"), recursive=True):
        key = os.path.relpath(path, os.path.join(work, label))
        with open(path, newline="") as f:
            rows[key] = list(csv.DictReader(f))
    return rows

cpu, gpu_rows = frames("cpu"), frames("gpu2")
n = sum(len(v) for v in cpu.values())
assert cpu.keys() == gpu_rows.keys(), "the runs analyzed different files"
d_surprise = 0.0
for key in cpu:
    for a, b in zip(cpu[key], gpu_rows[key]):
        if a.get("surprise") and b.get("surprise"):
            d_surprise = max(d_surprise, abs(float(a["surprise"]) - float(b["surprise"])))
emb_cos = []
for path in glob.glob(os.path.join(work, "cpu", "**", "embeddings.npy"), recursive=True):
    try:
        import numpy as np
    except ImportError:
        break
    a = np.load(path)
    b = np.load(path.replace(os.path.join(work, "cpu"), os.path.join(work, "gpu2")))
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12
    emb_cos.append(float((num / den).min()))
rows = []
for label, name in (("cpu", "CPU"), ("gpu", "GPU, first run"), ("gpu2", "GPU, second run")):
    wall, cpu_s, rss = times(label)
    rows.append((name, wall, cpu_s, rss))
print(f"- GPU: {gpu}; CPU threads: {os.cpu_count()}; input: `{src}` ({n} frames)")
print(f"- max |surprise GPU - CPU| over all frames: {d_surprise:.2e}"
      + (f"; min embedding cosine GPU vs CPU: {min(emb_cos):.6f}" if emb_cos else ""))
print()
print("| run | wall s | frames/s | CPU s | CPU ms per frame | peak RSS MB |")
print("|---|--:|--:|--:|--:|--:|")
for name, wall, cpu_s, rss in rows:
    print(f"| {name} | {wall:.1f} | {n / wall:.0f} | {cpu_s:.1f} | {1000 * cpu_s / n:.2f} | {rss / 1024:.0f} |")
base = rows[0][1]
print()
print(f"GPU (second run) end to end: {base / rows[2][1]:.2f}x the CPU run's frames/s.")
if d_surprise > 1e-2:
    sys.exit("FAIL: the GPU's surprise differs from the CPU's by more than 1e-2")
if rows[2][2] >= rows[0][2]:
    sys.exit("FAIL: the GPU run spent as much CPU time as the CPU run: inference stayed on the CPU")
PY
cat "$WORK/gpu.smi" >&2
[[ -z $OUT_FILE ]] || cp "$WORK/report.md" "$OUT_FILE"
cat "$WORK/report.md"
say "PASS: the CUDA execution provider ran the model"
