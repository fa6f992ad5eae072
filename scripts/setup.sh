#!/usr/bin/env bash
# Installs everything A²-LLM needs on a fresh Debian machine (run as root):
#   Debian packages (espeak-ng, Mesa EGL/OSMesa for offscreen rendering, PortAudio, ffmpeg),
#   a virtual environment in .venv/ at the repository root,
#   torch==2.13.0 (CPU wheel) first, then requirements.txt.
# Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# ffmpeg: Gradio's streaming gr.Video output probes and remuxes segments with ffmpeg/ffprobe; chromium +
# chromium-driver: the headless-browser test of the app (tests/ui/test_browser.py) and scripts/screenshots.py.
# flite, festival + festvox-* voices, sox: question voices that are not espeak-ng (a2llm/data/nano/voices.py).
APT_PACKAGES=(espeak-ng libespeak-ng1 libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libosmesa6 libportaudio2 ffmpeg
              chromium chromium-driver flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# This machine's pip config lists local mirrors that may be absent; their "is ignored" warnings are noise.
quiet_pip() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0 (CPU)"
  quiet_pip torch==2.13.0
fi
echo "[setup] installing requirements.txt"
quiet_pip -r requirements.txt
# pyrender pins PyOpenGL 3.1.0, whose OSMesa support is broken; 3.1.7 works with pyrender for EGL and OSMesa.
quiet_pip --no-deps PyOpenGL==3.1.7
echo "[setup] done"
