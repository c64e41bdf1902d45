#!/usr/bin/env bash
# Builds the classification sets used to measure `framegpt finetune` (docs/BENCHMARKS.md,
# "Finetuning") from real footage shipped in Debian packages. Outputs (never committed):
#
#   ~/.cache/framegpt-bench/cls/content/{train,test}/<class>/*.mp4
#       by content: each class is one package's footage; train clips come from the first
#       60 % of every source file, test clips from the last 40 % (different regions).
#   ~/.cache/framegpt-bench/cls/motion/{train,test}/<class>/*.mp4
#       where appearance alone cannot decide: the same real segments, each rendered with
#       five camera motions (static, pan_left, pan_right, zoom_in, zoom_out) by ffmpeg's
#       zoompan filter; every class holds exactly the same content, only the motion differs.
#       Train/test from the first 60 % / last 40 % of each source.
#   ~/.cache/framegpt-bench/cls/direction/{train,test}/{forward,reversed}/*.mp4
#       playback direction: the same segments played forward and reversed.
#
# Needs: ffmpeg, and the Debian packages python3-imageio, python3-mecavideo,
# forensics-samples-files, lebiniou-data, planetblupi-common (scripts/setup.sh does not
# install them; `apt-get install` them first). Re-running rebuilds everything (seconds).
set -euo pipefail

OUT="${FRAMEGPT_BENCH_DIR:-$HOME/.cache/framegpt-bench}/cls"
IMAGEIO=/usr/lib/python3/dist-packages/imageio/resources/images
MECA=/usr/share/pymecavideo/data/video
FORENSICS=/usr/share/forensics-samples/original-files
LEBINIOU=/usr/share/lebiniou/vue/media
BLUPI=/usr/share/planetblupi/movie

for f in "$IMAGEIO/cockatoo.mp4" "$MECA/balle-jbart.mp4" "$FORENSICS/movie2/movie-hello.mp4" \
    "$LEBINIOU/lebiniou-2021-06-10_12-28-28.mp4" "$BLUPI/win005.mkv"; do
    [[ -f "$f" ]] || { echo "error: missing \`$f\`" >&2
        echo "hint: apt-get install python3-imageio python3-mecavideo forensics-samples-files lebiniou-data planetblupi-common" >&2
        exit 2; }
done

duration() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }

# clip SRC START LEN FILTER OUT
clip() {
    ffmpeg -nostdin -loglevel error -y -ss "$2" -t "$3" -i "$1" -an -vf "$4" \
        -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p "$5"
}

# starts SRC SPLIT N LEN: N clip start times spread evenly over the split's region of SRC
# (train: [0, 0.6·dur − LEN], test: [0.6·dur, dur − LEN]).
starts() {
    local d
    d=$(duration "$1")
    awk -v d="$d" -v part="$2" -v n="$3" -v len="$4" 'BEGIN {
        if (part == "train") { a = 0; b = 0.6 * d - len } else { a = 0.6 * d; b = d - len - 0.05 }
        if (b < a) b = a
        for (i = 0; i < n; i++) printf "%.3f\n", (n == 1 ? a : a + (b - a) * i / (n - 1))
    }'
}

rm -rf "$OUT"

# (a) content: class = package; clips of 1 s.
declare -A CONTENT=(
    [cockatoo]="$IMAGEIO/cockatoo.mp4"
    [mecavideo_ball]="$MECA/balle-jbart.mp4"
    [forensics_hello]="$FORENSICS/movie2/movie-hello.mp4"
    [lebiniou]="$LEBINIOU/lebiniou-2021-06-10_12-28-28.mp4 $LEBINIOU/lebiniou-2021-06-10_12-19-53.mp4"
    [planetblupi]="$BLUPI/win005.mkv $BLUPI/history2.mkv"
)
for class in "${!CONTENT[@]}"; do
    read -r -a srcs <<<"${CONTENT[$class]}"
    per=$(( 16 / ${#srcs[@]} ))
    for split in train test; do
        dir="$OUT/content/$split/$class"
        mkdir -p "$dir"
        for s in "${srcs[@]}"; do
            i=0
            for t in $(starts "$s" "$split" "$per" 1.0); do
                clip "$s" "$t" 1.0 "scale=160:120,fps=20" "$dir/$(basename "${s%.*}")_$i.mp4"
                i=$((i + 1))
            done
        done
    done
done

# (b) motion: the same segments under five camera motions; 1.5 s at 20 fps (30 frames).
FRAMES=30
# zoompan: `on` is the output frame number within the clip (0..FRAMES-1).
P="(on/$((FRAMES - 1)))"
declare -A MOTION=(
    [static]="z=1.6:x=(iw-iw/zoom)/2:y=(ih-ih/zoom)/2"
    [pan_right]="z=1.6:x=(iw-iw/zoom)*$P:y=(ih-ih/zoom)/2"
    [pan_left]="z=1.6:x=(iw-iw/zoom)*(1-$P):y=(ih-ih/zoom)/2"
    [zoom_in]="z=1.2+0.8*$P:x=(iw-iw/zoom)/2:y=(ih-ih/zoom)/2"
    [zoom_out]="z=2.0-0.8*$P:x=(iw-iw/zoom)/2:y=(ih-ih/zoom)/2"
)
MOTION_SOURCES=("$IMAGEIO/cockatoo.mp4" "$MECA/balle-jbart.mp4" "$FORENSICS/movie2/movie-hello.mp4"
    "$LEBINIOU/lebiniou-2021-06-10_12-28-28.mp4" "$BLUPI/win005.mkv" "$BLUPI/history2.mkv")
for split in train test; do
    for s in "${MOTION_SOURCES[@]}"; do
        i=0
        for t in $(starts "$s" "$split" 2 1.5); do
            name="$(basename "${s%.*}")_$i"
            for class in "${!MOTION[@]}"; do
                mkdir -p "$OUT/motion/$split/$class"
                clip "$s" "$t" 1.5 \
                    "fps=20,scale=320:240,setsar=1,zoompan=${MOTION[$class]}:d=1:s=128x96:fps=20" \
                    "$OUT/motion/$split/$class/$name.mp4"
            done
            # (c) direction: forward vs reversed of the same segment.
            mkdir -p "$OUT/direction/$split/forward" "$OUT/direction/$split/reversed"
            clip "$s" "$t" 1.5 "fps=20,scale=160:120" "$OUT/direction/$split/forward/$name.mp4"
            clip "$s" "$t" 1.5 "fps=20,scale=160:120,reverse" "$OUT/direction/$split/reversed/$name.mp4"
            i=$((i + 1))
        done
    done
done

for set in content motion direction; do
    for split in train test; do
        printf '%-10s %-5s' "$set" "$split"
        for d in "$OUT/$set/$split"/*/; do
            printf ' %s=%s' "$(basename "$d")" "$(find "$d" -name '*.mp4' | wc -l)"
        done
        echo
    done
done
echo "sets written under \`$OUT\`"
