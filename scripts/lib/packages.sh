# Sourced by the scripts that install Debian packages.

# What building fsysfs and the engine needs (scripts/install.sh installs only these).
build_packages=(
  build-essential cmake pkg-config
  liburing-dev libfuse3-dev fuse3 libspdlog-dev libfmt-dev
  # CPack's Debian packages: dpkg-shlibdeps, and file to find the binaries
  dpkg-dev file
)

# Installs those of the given packages that are missing (apt-get update first).
install_packages() {
  local missing=() p sudo=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}
