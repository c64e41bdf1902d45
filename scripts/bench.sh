#!/usr/bin/env bash
# Speed and memory of framegpt against DESIGN.md's bars, on the same inputs in one run:
#
#   1. FFmpeg CLI decode-only frames/s (decode + scale to 64x64 area + rgb24, null output)
#   2. framegpt decode-only frames/s      (`framegpt bench --stage decode`)
#   3. framegpt inference-only frames/s   (`framegpt bench --stage infer`)
#   4. framegpt end-to-end frames/s       (`framegpt analyze`), and e2e / min(2, 3)   [bar ≥ 0.8]
#   5. peak RSS of `analyze` on an input and on a 10× longer version of it (ratio)  [bar ≤ 1.2]
#   6. the equivalent Python pipeline (scripts/bench_python.py) frames/s, e2e / Python [bar > 1]
#
# Inputs: every .mp4 under samples/ (each on its own, plus samples/ as one `analyze -r` run),
# and a 1080p H.264 clip of 60 s made from real footage (Debian python3-imageio's
# cockatoo.mp4) with its 10× version (600 s) for the memory check. Generated media and the
# Python venv live in ~/.cache/framegpt-bench/ (never in the repo) and are reused.
#
#   7. a directory of 12 real-footage videos (scripts/bench_footage.sh: 640x360 H.264, one per
#      Debian package), whole processes, interleaved per round: FFmpeg decode-only (one
#      process per file), PySceneDetect `detect-content list-scenes` (one process per file),
#      the Python pipeline (one process per file) and `framegpt analyze DIR`; ratios of
#      wall time [bars: ≥ 0.8× FFmpeg, ≥ 1.2× PySceneDetect, ≥ 1.5× Python]
#
#   scripts/bench.sh [--quick] [--dir-only] [--out FILE] [--runs N] [--threads N] [--no-variants]
#
#   --quick        skip the 600 s clip (memory is then checked on the samples' 10× clip only)
#   --out FILE     also write the markdown report to FILE (it always goes to stdout)
#   --runs N       timed runs per measurement, median reported [3]
#   --threads N    thread budget for everything: framegpt --threads, ffmpeg -threads, PyAV
#                  decoder threads and ONNX Runtime intra-op threads [2]
#   --no-variants  skip the `analyze` settings sweep (jobs, batch) on the 1080p clip
#   --dir-only     only the directory comparison (7)
#
# Environment: FRAMEGPT_BIN (skip `cargo build`, use this binary), FRAMEGPT_MODEL (model file
# [models/framegpt-base.onnx]), FRAMEGPT_BENCH_CACHE (cache folder [~/.cache/framegpt-bench]).
# Progress goes to stderr; the report (markdown) to stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FRAMEGPT_BENCH_CACHE:-$HOME/.cache/framegpt-bench}
MEDIA=$CACHE/media
VENV=$CACHE/py-venv
MODEL=${FRAMEGPT_MODEL:-$ROOT/models/framegpt-base.onnx}
SOURCE_CLIP=/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4
THREADS=2 RUNS=3 QUICK=0 VARIANTS=1 DIR_ONLY=0 OUT=""

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --no-variants) VARIANTS=0 ;;
    --dir-only) DIR_ONLY=1 ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    --runs) RUNS=${2:?--runs needs a number}; shift ;;
    --threads) THREADS=${2:?--threads needs a number}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument \`$1\` (see --help)" ;;
  esac
  shift
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
[[ -s $MODEL ]] || die "model not found: $MODEL"

# --- tools ----------------------------------------------------------------------------
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || die "ffmpeg/ffprobe missing (scripts/setup.sh installs them)"
if [[ ! -x /usr/bin/time ]]; then
  say "installing Debian package \`time\` (for peak RSS)"
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time >/dev/null \
    || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time >/dev/null; } \
    || die "could not install \`time\`"
fi
if [[ -n ${FRAMEGPT_BIN:-} ]]; then
  BIN=$FRAMEGPT_BIN
else
  say "building framegpt (cargo build --release --locked)"
  (cd "$ROOT" && cargo build --release --locked -q) || die "cargo build failed (set FRAMEGPT_BIN to use an existing binary)"
  BIN=$ROOT/target/release/framegpt
fi
[[ -x $BIN ]] || die "framegpt binary not found: $BIN"

# --- Python pipeline venv (only when missing or the pins changed) ----------------------
REQ=$ROOT/scripts/bench-requirements.txt
req_sum=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ ! -x $VENV/bin/python || "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_sum" ]]; then
  say "creating the Python venv in $VENV (PyPI: av, numpy, onnxruntime, scenedetect)"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
  echo "$req_sum" >"$VENV/.requirements.sha256"
fi
PY=$VENV/bin/python

# --- media (cached) -------------------------------------------------------------------
mkdir -p "$MEDIA"
make_media() { # name, ffmpeg args...
  local out=$MEDIA/$1; shift
  [[ -s $out ]] && return 0
  say "generating $out"
  ffmpeg -nostdin -v error -y "$@" "$out.tmp.mp4"
  mv "$out.tmp.mp4" "$out"
}
[[ -s $SOURCE_CLIP ]] || die "$SOURCE_CLIP missing: apt-get install python3-imageio"
# 60 s of real footage (14 s clip looped) at 1080p, H.264.
make_media cockatoo-1080p-60s.mp4 -stream_loop -1 -i "$SOURCE_CLIP" -t 60 -an \
  -vf scale=1920:1080 -c:v libx264 -preset ultrafast -crf 23 -pix_fmt yuv420p
# 10× versions: the same stream repeated (no re-encode), so only the length changes.
make_media cockatoo-x10.mp4 -stream_loop 9 -i "$ROOT/samples/cockatoo.mp4" -c copy
((QUICK)) || make_media cockatoo-1080p-600s.mp4 -stream_loop 9 -i "$MEDIA/cockatoo-1080p-60s.mp4" -c copy

FOOTAGE=$CACHE/footage
bash "$ROOT/scripts/bench_footage.sh" "$FOOTAGE"
mapfile -t FOOTAGE_FILES < <(find "$FOOTAGE" -maxdepth 1 -name '*.mp4' -type f | LC_ALL=C sort)

mapfile -t SAMPLES < <(cd "$ROOT" && find samples -name '*.mp4' -type f | LC_ALL=C sort)
((${#SAMPLES[@]})) || die "no .mp4 under samples/"
INPUTS=("${SAMPLES[@]/#/$ROOT/}" "$MEDIA/cockatoo-1080p-60s.mp4")
# (input, 10× input) pairs for the memory check.
MEM_PAIRS=("$ROOT/samples/cockatoo.mp4|$MEDIA/cockatoo-x10.mp4")
((QUICK)) || MEM_PAIRS+=("$MEDIA/cockatoo-1080p-60s.mp4|$MEDIA/cockatoo-1080p-600s.mp4")

WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
# Private copies: a rebuild or a new model written during the run must not mix into it.
BIN_SHA=$(sha256sum "$BIN" | cut -d' ' -f1); BIN_SRC=$BIN
cp "$BIN" "$WORK/framegpt"; BIN=$WORK/framegpt
MODEL_SHA=$(sha256sum "$MODEL" | cut -d' ' -f1); MODEL_SRC=$MODEL
cp "$MODEL" "$WORK/"; [[ ! -e $MODEL.data ]] || cp "$MODEL.data" "$WORK/"  # external weights
MODEL=$WORK/$(basename "$MODEL")
RESULTS=$WORK/results.jsonl
rel() { local p=$1; p=${p#"$ROOT/"}; p=${p/#"$HOME"/\~}; printf '%s' "$p"; }
record() { # input, metric, value, [extra json]
  printf '{"input":"%s","metric":"%s","value":%s%s}\n' "$(rel "$1")" "$2" "$3" "${4:+,$4}" >>"$RESULTS"
}

# --- measurements ---------------------------------------------------------------------
ffmpeg_decode() { # input: seconds of the whole process (start-up included)
  local t0=$EPOCHREALTIME
  ffmpeg -nostdin -v error -threads "$THREADS" -i "$1" -an -sn -fps_mode passthrough \
    -vf scale=64:64:flags=area -pix_fmt rgb24 -f null -
  local t1=$EPOCHREALTIME
  python3 -c "print(${t1/,/.} - ${t0/,/.})"
}
# A JSON-printing stage (framegpt bench, bench_python.py) under /usr/bin/time: records its
# frames/s plus the process's wall and CPU seconds (model load included).
stage_run() { # input, label, command...
  local input=$1 label=$2 j; shift 2
  j=$(/usr/bin/time -f '%e %U %S %M' -o "$WORK/stage.txt" "$@") || die "failed: $*"
  read -r wall user sys rss <"$WORK/stage.txt"
  record "$input" "$label" "$(json_field "$j" fps)" \
    "\"frames\":$(json_field "$j" frames),\"wall_s\":$wall,\"cpu_s\":$(python3 -c "print($user + $sys)"),\"rss_kb\":$rss"
}
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# analyze under /usr/bin/time: records e2e fps (analyze's own timer), wall and peak RSS.
analyze_run() { # input, label, extra args...
  local input=$1 label=$2; shift 2
  ANALYZE_RUNS=$((${ANALYZE_RUNS:-0} + 1))
  local out=$WORK/out-$ANALYZE_RUNS
  /usr/bin/time -v -o "$WORK/time.txt" "$BIN" --threads "$THREADS" --color never \
    analyze "$input" -o "$out" --no-progress "$@" 2>"$WORK/analyze.err" \
    || { cat "$WORK/analyze.err" >&2; die "analyze failed on $input"; }
  local line rss wall cpu
  line=$(grep '^analyzed ' "$WORK/analyze.err" | tail -1)
  [[ $line =~ \(([0-9]+)\ frames,\ ([0-9.]+)\ s,\ ([0-9]+)\ frames/s\) ]] || die "no summary line from analyze: $(cat "$WORK/analyze.err")"
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$WORK/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt" |
    python3 -c "import sys; p=sys.stdin.read().strip().split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))")
  # analyze prints its time with one decimal; frames/fps keeps the precision of the rate.
  record "$input" "$label" "${BASH_REMATCH[3]}" "\"frames\":${BASH_REMATCH[1]},\"rss_kb\":$rss,\"wall_s\":$wall,\"cpu_s\":$cpu"
  rm -rf "$out"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(load)
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
T_START=$EPOCHREALTIME

# Whole processes under /usr/bin/time (children's CPU and their largest peak RSS included).
whole_run() { # label, command... (run by bash -c)
  local label=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/whole.txt" bash -c "$@" >/dev/null 2>"$WORK/whole.err" \
    || { cat "$WORK/whole.err" >&2; die "failed: $label"; }
  read -r wall user sys rss <"$WORK/whole.txt"
  record "$FOOTAGE" "$label" "$wall" "\"cpu_s\":$(python3 -c "print($user + $sys)"),\"rss_kb\":$rss"
}
dir_round() {
  local files; printf -v files '%q ' "${FOOTAGE_FILES[@]}"
  whole_run dir_ffmpeg "for f in $files; do ffmpeg -nostdin -v error -threads $THREADS -i \"\$f\" -an -sn -fps_mode passthrough -vf scale=64:64:flags=area -pix_fmt rgb24 -f null - || exit 1; done"
  rm -rf "$WORK/dir-out"
  whole_run dir_framegpt "$(printf '%q' "$BIN") --threads $THREADS --color never analyze $(printf '%q' "$FOOTAGE") -o $(printf '%q' "$WORK/dir-out") --no-progress -q --model $(printf '%q' "$MODEL")"
  rm -rf "$WORK/dir-out"
  whole_run dir_pyscenedetect "for f in $files; do $(printf '%q' "$VENV/bin/scenedetect") -q -i \"\$f\" -o $(printf '%q' "$WORK/sd") detect-content list-scenes || exit 1; done"
  whole_run dir_python "for f in $files; do $(printf '%q' "$PY") $(printf '%q' "$ROOT/scripts/bench_python.py") \"\$f\" --threads $THREADS --model $(printf '%q' "$MODEL") || exit 1; done"
  if ((VARIANTS)); then
    rm -rf "$WORK/dir-out"
    whole_run "dir_framegpt FRAMEGPT_SESSIONS=1" "FRAMEGPT_SESSIONS=1 $(printf '%q' "$BIN") --threads $THREADS --color never analyze $(printf '%q' "$FOOTAGE") -o $(printf '%q' "$WORK/dir-out") --no-progress -q --model $(printf '%q' "$MODEL")"
    rm -rf "$WORK/dir-out"
  fi
}
say "directory of real footage ($(rel "$FOOTAGE"), ${#FOOTAGE_FILES[@]} videos): $RUNS interleaved rounds of ffmpeg, framegpt, PySceneDetect, Python"
record "$FOOTAGE" dir_frames "$(for f in "${FOOTAGE_FILES[@]}"; do ffprobe -v error -count_packets -select_streams v:0 -show_entries stream=nb_read_packets -of csv=p=0 "$f"; done | python3 -c 'import sys; print(sum(int(x) for x in sys.stdin.read().split()))')"
for ((r = 0; r < RUNS; r++)); do dir_round; done

ASKED_VARIANTS=$VARIANTS
((DIR_ONLY)) && INPUTS=() MEM_PAIRS=() VARIANTS=0
for input in "${INPUTS[@]}"; do
  record "$input" bytes "$(stat -c %s "$input")"
  say "$(rel "$input"): $RUNS runs each of ffmpeg, decode, infer, analyze, python"
  for ((r = 0; r < RUNS; r++)); do
    record "$input" ffmpeg_s "$(ffmpeg_decode "$input")"
    stage_run "$input" decode "$BIN" --threads "$THREADS" bench "$input" --stage decode --model "$MODEL"
    stage_run "$input" infer "$BIN" --threads "$THREADS" bench "$input" --stage infer --model "$MODEL"
    analyze_run "$input" e2e --model "$MODEL"
    stage_run "$input" python "$PY" "$ROOT/scripts/bench_python.py" "$input" --threads "$THREADS" --model "$MODEL"
  done
done

if ((!DIR_ONLY)); then
  say "samples/ as one input (analyze -r): $RUNS runs"
  for ((r = 0; r < RUNS; r++)); do analyze_run "$ROOT/samples" e2e -r --model "$MODEL"; done
fi

for pair in "${MEM_PAIRS[@]}"; do
  long=${pair#*|}
  say "memory: $(rel "$long") (analyze and decode-only, 1 run each; its short version was measured above)"
  record "$long" bytes "$(stat -c %s "$long")"
  analyze_run "$long" e2e --model "$MODEL"
  stage_run "$long" decode "$BIN" --threads "$THREADS" bench "$long" --stage decode --model "$MODEL"
done

if ((VARIANTS)); then
  v=$MEDIA/cockatoo-1080p-60s.mp4
  say "analyze settings sweep on $(rel "$v"): $RUNS runs each"
  for ((r = 0; r < RUNS; r++)); do
    analyze_run "$v" "e2e (same settings, this round)" --model "$MODEL"
    analyze_run "$v" "e2e -j 1" -j 1 --model "$MODEL"
    analyze_run "$v" "e2e --batch 4" --batch 4 --model "$MODEL"
    analyze_run "$v" "e2e --batch 16" --batch 16 --model "$MODEL"
    analyze_run "$v" "e2e -j 1 --batch 16" -j 1 --batch 16 --model "$MODEL"
    stage_run "$v" "decode, --threads 1" "$BIN" --threads 1 bench "$v" --stage decode --model "$MODEL"
    stage_run "$v" "infer, --threads 1" "$BIN" --threads 1 bench "$v" --stage infer --cache-frames 16 --model "$MODEL"
    stage_run "$v" "infer, --cache-frames 16" "$BIN" --threads "$THREADS" bench "$v" --stage infer --cache-frames 16 --model "$MODEL"
    stage_run "$v" "infer --batch 4" "$BIN" --threads "$THREADS" bench "$v" --stage infer --batch 4 --cache-frames 16 --model "$MODEL"
    stage_run "$v" "infer --batch 16" "$BIN" --threads "$THREADS" bench "$v" --stage infer --batch 16 --cache-frames 16 --model "$MODEL"
  done
fi

# --- report ---------------------------------------------------------------------------
cp "$RESULTS" "$CACHE/last-results.jsonl"  # raw numbers of the latest run, for a closer look
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] || commit+=" (with uncommitted changes)"
cat >"$WORK/env.json" <<EOF
{
  "date": "$STARTED",
  "seconds": $(python3 -c "print(round(${EPOCHREALTIME/,/.} - ${T_START/,/.}))"),
  "host": "$(hostname)",
  "nproc": "$(nproc)",
  "cpu": "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)",
  "load_start": "$LOAD_START",
  "load_end": "$(load)",
  "commit": "$commit",
  "model": "$(rel "$MODEL_SRC")",
  "model_sha256": "$MODEL_SHA",
  "binary": "$(rel "$BIN_SRC") (sha256 ${BIN_SHA:0:16}…, copied at the start)",
  "ffmpeg": "$(ffmpeg -version | head -1 | cut -d' ' -f3)",
  "python": "$("$PY" -c 'import sys, av, numpy, onnxruntime; print(f"{sys.version.split()[0]}, PyAV {av.__version__}, numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__}")')",
  "threads": $THREADS,
  "runs": $RUNS,
  "command": "scripts/bench.sh$( ((QUICK)) && printf ' --quick')$( ((DIR_ONLY)) && printf ' --dir-only')$( ((ASKED_VARIANTS)) || printf ' --no-variants') --runs $RUNS --threads $THREADS"
}
EOF
python3 - "$RESULTS" "$WORK/env.json" "$(rel "$ROOT/samples")" >"$WORK/report.md" <<'PY'
import json, statistics, sys
from collections import defaultdict

results, env, samples_dir = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
rows = defaultdict(lambda: defaultdict(list))
order = []
for line in open(results):
    r = json.loads(line)
    if r["input"] not in order:
        order.append(r["input"])
    rows[r["input"]][r["metric"]].append(r)

def med(inp, metric, key="value"):
    v = [r[key] for r in rows[inp].get(metric, []) if key in r]
    return statistics.median(v) if v else None

def frames(inp):
    for m in ("decode", "e2e", "python"):
        if rows[inp].get(m):
            return rows[inp][m][0]["frames"]

def f0(x):
    return "–" if x is None else f"{x:,.0f}"

def f2(x):
    return "–" if x is None else f"{x:.2f}"

def mb(kb):
    return "–" if kb is None else f"{kb / 1024:.0f}"

footage = [i for i in order if "dir_frames" in rows[i]]
single = [i for i in order if "ffmpeg_s" in rows[i]]
table = []
agg = defaultdict(float)  # seconds summed over the samples, for the directory row
for inp in single:
    n = frames(inp)
    ff = n / med(inp, "ffmpeg_s")
    dec, inf, e2e, py = (med(inp, m) for m in ("decode", "infer", "e2e", "python"))
    table.append((inp, n, ff, dec, inf, e2e, py, med(inp, "e2e", "rss_kb")))
    if inp.startswith(samples_dir + "/"):
        agg["n"] += n
        for k, v in (("ff", ff), ("dec", dec), ("inf", inf), ("py", py)):
            agg[k] += n / v
if samples_dir in rows:
    n = frames(samples_dir)
    table.append((f"`{samples_dir}/` as one input: `analyze -r` (other columns: totals over its files)",
                  n, agg["n"] / agg["ff"], agg["n"] / agg["dec"], agg["n"] / agg["inf"],
                  med(samples_dir, "e2e"), agg["n"] / agg["py"], med(samples_dir, "e2e", "rss_kb")))

out = []
p = out.append
p(f"- Date: {env['date']} (the run took {env['seconds']} s)")
p(f"- Machine: {env['cpu']}, nproc {env['nproc']}, host `{env['host']}`; load average "
  f"(1/5/15 min) {env['load_start']} at start, {env['load_end']} at end")
p(f"- Code: commit `{env['commit']}`, binary `{env['binary']}`")
p(f"- Model: `{env['model']}`, sha256 `{env['model_sha256']}`")
p(f"- Tools: FFmpeg {env['ffmpeg']}; Python {env['python']}")
p(f"- Settings: {env['threads']} threads everywhere (framegpt `--threads {env['threads']}`, "
  f"ffmpeg `-threads {env['threads']}`, PyAV decoder threads, ORT intra-op threads); "
  f"median of {env['runs']} runs")
p(f"- Command: `{env['command']}`")
for d in footage:
    n = int(med(d, "dir_frames"))
    fg = med(d, "dir_framegpt")
    p("")
    p(f"Directory of real footage `{d}` ({n:,} frames, 12 videos of 640x360 H.264; "
      f"scripts/bench_footage.sh): whole processes, wall seconds, median of {env['runs']} "
      f"interleaved rounds; *framegpt's speed* = the tool's wall time ÷ framegpt's "
      f"(bars: ≥ 0.8 against FFmpeg decode-only, ≥ 1.2 against PySceneDetect, ≥ 1.5 against Python)")
    p("")
    p("| command | wall s | CPU s | peak RSS MB | frames/s | framegpt's speed relative to it |")
    p("|---|--:|--:|--:|--:|--:|")
    names = {
        "dir_ffmpeg": "FFmpeg decode + scale to 64x64 only, one process per file",
        "dir_pyscenedetect": "PySceneDetect `detect-content list-scenes`, one process per file",
        "dir_python": "Python pipeline (PyAV + numpy + onnxruntime, same model), one process per file",
        "dir_framegpt": "`framegpt analyze DIR`",
        "dir_framegpt FRAMEGPT_SESSIONS=2": "`framegpt analyze DIR`, 2 sessions x 1 thread (FRAMEGPT_SESSIONS=2)",
        "dir_framegpt FRAMEGPT_SESSIONS=1": "`framegpt analyze DIR`, 1 session of all threads (FRAMEGPT_SESSIONS=1, the default before 2026-12-02)",
    }
    for m, name in names.items():
        w = med(d, m)
        if w is None:
            continue
        rel = "—" if m == "dir_framegpt" else f"**{w / fg:.2f}×**"
        p(f"| {name} | {w:.1f} | {med(d, m, 'cpu_s'):.1f} | {mb(med(d, m, 'rss_kb'))} | {n / w:.0f} | {rel} |")
p("")
p("Frames/s; e2e/slower = end-to-end ÷ min(framegpt decode-only, inference-only) (bar ≥ 0.8); "
  "e2e/Python (bar > 1). Both-stages bound = 1/(1/decode + 1/infer): the most two stages "
  "that each keep all the cores busy can reach when they share those cores. "
  "RSS = peak resident set of the `analyze` process.")
p("")
p("| input | frames | ffmpeg CLI decode | framegpt decode | framegpt infer | framegpt e2e "
  "| e2e/slower | both-stages bound | Python | e2e/Python | peak RSS MB |")
p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for inp, n, ff, dec, inf, e2e, py, rss in table:
    slower = min(dec, inf)
    p(f"| {inp if inp.startswith('`') else f'`{inp}`'} | {n:,} | {f0(ff)} | {f0(dec)} | {f0(inf)} | {f0(e2e)} "
      f"| {f2(e2e / slower)} | {f0(1 / (1 / dec + 1 / inf))} | {f0(py)} | {f2(e2e / py)} | {mb(rss)} |")

mem = [i for i in order if "ffmpeg_s" not in rows[i] and i != samples_dir and i not in footage]
if mem:
    p("")
    p("Peak RSS (MB) against video length (bar: the 10× video within 1.2× for `analyze`); "
      "decode-only = `framegpt bench --stage decode`; file = the video's size:")
    p("")
    p("| input | frames | file MB | analyze | decode-only | 10× input | frames | file MB "
      "| analyze | decode-only | analyze ratio | decode-only ratio |")
    p("|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|")
    for long in mem:
        short = ("samples/cockatoo.mp4" if "cockatoo-x10" in long
                 else long.replace("-600s", "-60s"))
        a, b = med(short, "e2e", "rss_kb"), med(long, "e2e", "rss_kb")
        c, d = med(short, "decode", "rss_kb"), med(long, "decode", "rss_kb")
        sa, sb = med(short, "bytes"), med(long, "bytes")
        p(f"| `{short}` | {frames(short):,} | {sa / 2**20:.1f} | {mb(a)} | {mb(c)} "
          f"| `{long}` | {frames(long):,} | {sb / 2**20:.1f} | {mb(b)} | {mb(d)} "
          f"| {f2(b / a)} | {f2(d / c)} |")

var = [(i, m) for i in order if i not in footage for m in rows[i] if m not in
       ("ffmpeg_s", "decode", "infer", "e2e", "python", "bytes")]
if var:
    v = var[0][0]
    p("")
    p(f"Settings sweep on `{v}` (frames/s, median of {env['runs']}; `--threads "
      f"{env['threads']}` unless said):")
    p("")
    p("| run | frames/s | CPU s / wall s (whole process) | peak RSS MB |")
    p("|---|--:|--:|--:|")
    def cores(inp, m):
        c, w = med(inp, m, "cpu_s"), med(inp, m, "wall_s")
        return "–" if c is None or not w else f"{c / w:.2f}"
    for name in ("decode", "infer", "e2e"):
        rss = med(v, name, "rss_kb")
        p(f"| {name} (as above) | {f0(med(v, name))} | {cores(v, name)} | {mb(rss) if rss else '–'} |")
    for inp, m in var:
        rss = med(inp, m, "rss_kb")
        p(f"| {m} | {f0(med(inp, m))} | {cores(inp, m)} | {mb(rss) if rss else '–'} |")
print("\n".join(out))
PY
if [[ -n $OUT ]]; then cp "$WORK/report.md" "$OUT"; say "report written to $OUT"; fi
cat "$WORK/report.md"
