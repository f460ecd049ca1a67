#!/usr/bin/env bash
# Install what the GUI tests need on a machine with no screen: Xvfb, Mesa's GL
# driver and the X libraries Qt's xcb platform loads (Debian/Ubuntu packages).
# Does nothing when Xvfb and the Mesa driver are already there.
set -euo pipefail
packages=(xvfb libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0
          libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0
          libxcb-cursor0 libdbus-1-3 libfontconfig1)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install_display: missing ${missing[*]} and no apt-get; install Xvfb and a Mesa GL driver by hand" >&2
  exit 1
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "install_display: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
