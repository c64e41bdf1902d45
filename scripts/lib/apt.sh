# Sourced by the set-up scripts: `apt_ensure TAG PACKAGE...` installs the Debian packages
# that are not installed yet (one `apt-get update` first, only when something is missing),
# as root or through sudo. TAG prefixes the progress line.
apt_ensure() {
  local tag=$1; shift
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  printf '%s: installing Debian packages: %s\n' "$tag" "${missing[*]}" >&2
  local sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
