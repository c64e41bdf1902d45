#!/bin/bash
# Labelled sets for the finetune memory measurement (docs/BENCHMARKS.md, "Memory bounded by
# --memory-mb"): 2 classes x 3 files, each file 1 (small/) or 10 (large/) minutes at 20 fps,
# 160x90, in the current directory. Usage: cd DIR && scripts/make_finetune_memory_sets.sh
set -e
S="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/samples"
for size in small:1 large:10; do
  name=${size%%:*}; min=${size##*:}
  for cls in bird:cockatoo.mp4 short:realshort.mp4; do
    c=${cls%%:*}; src=${cls##*:}
    mkdir -p $name/$c
    for k in 0 1 2; do
      out=$name/$c/$k.mp4
      [ -f $out ] && continue
      ffmpeg -v error -stream_loop -1 -i $S/$src -t $((min*60)) -vf "scale=160:90,hue=h=$((k*40)),fps=20" -c:v libx264 -preset ultrafast -an $out
    done
  done
done
