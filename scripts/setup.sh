#!/usr/bin/env bash
# Installs what framegpt needs on Debian 12 and builds it. Safe to re-run: every step
# checks first and does nothing when its result is already there.
#
#   scripts/setup.sh            # apt packages, ONNX Runtime library, release build
#   scripts/setup.sh --gpu      # the same, plus ONNX Runtime's CUDA build and the CUDA 13 /
#                               # cuDNN 9 libraries (PyPI wheels, scripts/gpu-requirements.txt)
#                               # for `--device cuda`; needs an NVIDIA driver >= 580
#   SETUP_SKIP_BUILD=1 scripts/setup.sh
#
# Only Debian's packages, PyPI and crates.io are used. ONNX Runtime comes from the PyPI
# `onnxruntime` wheel (pinned version and sha256): `ort`'s own download is not used.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORT_VERSION=1.31.1
ORT_WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
ORT_DIR=${FRAMEGPT_ORT_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/framegpt/onnxruntime/$ORT_VERSION}
APT_PACKAGES=(pkg-config clang libclang-dev libavformat-dev libavcodec-dev libavutil-dev libswscale-dev ffmpeg python3)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

GPU=0
for arg in "$@"; do
  case $arg in
    --gpu) GPU=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument \`$arg\` (see --help)" ;;
  esac
done

# 1. Debian packages (FFmpeg libraries and CLI, clang for bindgen, pkg-config).
. "$ROOT/scripts/lib/apt.sh"
apt_ensure setup "${APT_PACKAGES[@]}"

# 2. The ONNX Runtime shared library from the PyPI wheel.
lib="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [[ ! -s "$lib" ]]; then
  say "fetching ONNX Runtime $ORT_VERSION from PyPI (onnxruntime wheel)"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 "onnxruntime==$ORT_VERSION" -d "$tmp" \
    || die "could not download onnxruntime==$ORT_VERSION from PyPI"
  got=$(sha256sum "$tmp/$ORT_WHEEL" | cut -d' ' -f1)
  [[ "$got" == "$ORT_WHEEL_SHA256" ]] || die "sha256 mismatch for $ORT_WHEEL: $got"
  mkdir -p "$ORT_DIR"
  python3 - "$tmp/$ORT_WHEEL" "$ORT_DIR" <<'PY'
import sys, zipfile, os
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime"):
            tmp = os.path.join(dest, base + ".part")
            with z.open(name) as src, open(tmp, "wb") as out:
                out.write(src.read())
            os.replace(tmp, os.path.join(dest, base))
PY
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"
  say "ONNX Runtime installed in $ORT_DIR"
fi

# 2b. --gpu: onnxruntime-gpu and the CUDA/cuDNN libraries, all unpacked into one folder;
#     framegpt loads that library for --device cuda/auto and opens the CUDA libraries
#     from the same folder itself (no LD_LIBRARY_PATH needed).
GPU_REQ=$ROOT/scripts/gpu-requirements.txt
GPU_DIR=${FRAMEGPT_ORT_GPU_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/framegpt/onnxruntime-gpu/$ORT_VERSION}
gpu_sum=$(sha256sum "$GPU_REQ" | cut -d' ' -f1)
if ((GPU)) && [[ "$(cat "$GPU_DIR/.requirements.sha256" 2>/dev/null)" != "$gpu_sum" ]]; then
  say "fetching onnxruntime-gpu $ORT_VERSION and the CUDA/cuDNN runtime wheels from PyPI (about 1.5 GB)"
  gtmp=$(mktemp -d); trap 'rm -rf "$gtmp" ${tmp:+"$tmp"}' EXIT
  platforms=()
  for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
    platforms+=(--platform "${p}_x86_64")
  done
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "${platforms[@]}" --python-version 3.11 --require-hashes -r "$GPU_REQ" -d "$gtmp" \
    || die "could not download the wheels of $GPU_REQ from PyPI"
  mkdir -p "$GPU_DIR"
  python3 - "$GPU_DIR" "$gtmp"/*.whl <<'PY'
import os, sys, zipfile
dest, wheels = sys.argv[1], sys.argv[2:]
count = 0
for whl in wheels:
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            base = os.path.basename(name)
            keep = (name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime")) or (
                name.startswith("nvidia/") and "/lib/" in name and ".so" in base)
            if keep:
                tmp = os.path.join(dest, base + ".part")
                with z.open(name) as src, open(tmp, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                os.replace(tmp, os.path.join(dest, base))
                count += 1
print(f"{count} libraries", file=sys.stderr)
PY
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$GPU_DIR/libonnxruntime.so"
  echo "$gpu_sum" >"$GPU_DIR/.requirements.sha256"
  say "onnxruntime-gpu and the CUDA libraries installed in $GPU_DIR"
fi

# 3. Rust toolchain check and the release build.
command -v cargo >/dev/null || die "cargo not found; hint: install Rust (rustup) >= 1.92 and re-run"
# scripts/test.sh runs `cargo fmt --check` and `cargo clippy`; a minimal rustup profile lacks them.
if ! (cargo fmt --version && cargo clippy --version) >/dev/null 2>&1; then
  command -v rustup >/dev/null || die "cargo fmt/clippy not found; hint: install the rustfmt and clippy components"
  say "installing rustfmt and clippy (rustup component add)"
  rustup component add rustfmt clippy
fi
if [[ "${SETUP_SKIP_BUILD:-0}" != 1 ]]; then
  say "building framegpt (cargo build --release --locked)"
  (cd "$ROOT" && cargo build --release --locked --quiet)
fi
