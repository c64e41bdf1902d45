#!/usr/bin/env bash
# What the test suite needs beyond scripts/setup.sh, installed only when missing (safe to
# re-run): Debian's `chromium` (the HTML report is checked in real headless Chromium) and
# a Python venv with the PyPI OpenTimelineIO packages, pinned, that read the EDL and OTIO
# exports back. Prints `export FRAMEGPT_TEST_PYTHON=...` for the caller to eval.
set -euo pipefail
VENV=${FRAMEGPT_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/framegpt/test-venv}
PY_PACKAGES=(opentimelineio==0.18.1 otio-cmx3600-adapter==1.0.0)
APT_PACKAGES=(chromium python3-venv)

say() { printf 'test-deps: %s\n' "$*" >&2; }

. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_ensure test-deps "${APT_PACKAGES[@]}"

# The venv is complete when its marker names exactly the pinned packages.
marker="$VENV/.framegpt-packages"
if [[ ! -x "$VENV/bin/python" || "$(cat "$marker" 2>/dev/null)" != "${PY_PACKAGES[*]}" ]]; then
  say "making $VENV with ${PY_PACKAGES[*]} (PyPI)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
  printf '%s' "${PY_PACKAGES[*]}" > "$marker"
fi
echo "export FRAMEGPT_TEST_PYTHON=$VENV/bin/python"
