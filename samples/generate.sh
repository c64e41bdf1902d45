#!/usr/bin/env bash
# Regenerates samples/ and tests/fixtures/media/ from real footage shipped in Debian's
# python3-imageio package (cockatoo.mp4, realshort.mp4) with Debian's ffmpeg. The outputs
# are committed; this script is the record of how they were made.
#
#   samples/generate.sh          (needs: apt-get install python3-imageio ffmpeg)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=/usr/lib/python3/dist-packages/imageio/resources/images
[[ -f $SRC/cockatoo.mp4 ]] || { echo "install python3-imageio first" >&2; exit 1; }
S=$ROOT/samples; F=$ROOT/tests/fixtures/media
mkdir -p "$S/generated" "$F"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
X264=(-c:v libx264 -preset medium -crf 28 -pix_fmt yuv420p -threads 1 -bitexact -an -movflags +faststart)

# Real clips: cockatoo at 320x180 (the original is 1280x720, 729 KB), realshort as shipped.
ff -i "$SRC/cockatoo.mp4" -vf scale=320:180 "${X264[@]}" "$S/cockatoo.mp4"
cp "$SRC/realshort.mp4" "$S/realshort.mp4"

# A hard cut at frame 60: 3 s of cockatoo, then realshort (resampled to 20 fps).
ff -i "$SRC/cockatoo.mp4" -i "$SRC/realshort.mp4" -filter_complex \
  "[0:v]trim=end_frame=60,setpts=PTS-STARTPTS,scale=320:180,fps=20[a];[1:v]scale=320:180,setsar=1,fps=20,setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1[v]" \
  -map '[v]' "${X264[@]}" "$S/generated/cut.mp4"

# A 2-frame white flash at frames 40-41 of a single shot: must not count as a cut.
ff -i "$SRC/cockatoo.mp4" -vf "trim=end_frame=80,scale=320:180,eq=brightness=0.7:enable='between(n,40,41)'" \
  "${X264[@]}" "$S/generated/flash.mp4"

# A static shot: one frame of cockatoo held for 3 s.
ff -ss 2 -i "$SRC/cockatoo.mp4" -frames:v 1 -vf scale=320:180 -update 1 /tmp/framegpt-still.png
ff -loop 1 -framerate 20 -i /tmp/framegpt-still.png -t 3 "${X264[@]}" "$S/generated/static.mp4"
rm -f /tmp/framegpt-still.png

# Low real frame rate: 3 distinct pictures per second of the hand-held cockatoo shot in a
# 25 fps file (each picture repeated 8-9 times, as in footage converted from a low-rate
# source). One shot: every new picture is a jump inside it, not a cut.
ff -i "$SRC/cockatoo.mp4" -vf "trim=start=4:duration=5,setpts=PTS-STARTPTS,scale=320:180,fps=3,fps=25" \
  "${X264[@]}" "$S/generated/lowfps.mp4"

# Test fixtures: an audio-only file, and an AVI to truncate in the tests (MJPEG, index at the end).
ff -f lavfi -i "sine=frequency=440:duration=1" -c:a aac -b:a 32k "$F/audio-only.m4a"
ff -i "$SRC/cockatoo.mp4" -vf "trim=end_frame=40,scale=160:90" -c:v mjpeg -q:v 8 -an "$F/clip.avi"
ls -l "$S" "$S/generated" "$F"
