#!/usr/bin/env bash
# Installs what framegpt needs on Debian 12 and builds it. Safe to re-run: every step
# checks first and does nothing when its result is already there.
#
#   scripts/setup.sh            # apt packages, ONNX Runtime library, release build
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

# 1. Debian packages (FFmpeg libraries and CLI, clang for bindgen, pkg-config).
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

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
