#!/usr/bin/env bash
# Debian packages the project needs. Quick when they are all present: no apt-get update then.
set -euo pipefail

PACKAGES=(
  portaudio19-dev   # PyAudio builds against PortAudio
  ffmpeg            # media tools beside PyAV's bundled libraries
  libgl1            # OpenCV / MediaPipe load libGL
  libglib2.0-0      # OpenCV's GUI module
  espeak-ng         # speech for the sample clip (socialmae_rt.media.sample)
  pulseaudio        # microphone tests: a private server whose null-sink monitor stands in for a mic
  pulseaudio-utils  # microphone tests: pacat/pactl play tones into the null sink and control it
  libasound2-plugins # microphone tests: the ALSA `pulse` device PortAudio captures through
  xvfb              # demo test: the OpenCV window on a virtual X display
  xdotool           # demo test: real key presses (s, q) into that window
  cmake             # ROS interface packages (socialmae_rt_msgs) build with cmake ...
  g++               # ... and a C/C++ compiler
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present (${PACKAGES[*]})"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
