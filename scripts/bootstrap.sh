#!/usr/bin/env bash
# Set up what `make run` and `make test` need on this machine: a Python >= 3.11 with venv, the
# project's virtual environment (.venv), and a redis-server binary when no Redis answers.
# Debian/Ubuntu packages are installed with apt-get when run as root; otherwise it says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
say() { printf '[setup] %s\n' "$*"; }
can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python=$candidate; break
    fi
  done
fi
if [ -z "$python" ]; then
  if can_apt; then say "installing python3"; apt_install python3 python3-venv; python=python3
  else echo "Python >= 3.11 is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; fi
fi

stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$python" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if can_apt; then
      version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      say "installing python${version}-venv"
      apt_install "python${version}-venv" || apt_install python3-venv
      "$python" -m venv "$VENV"
    else
      echo "$python cannot create a virtual environment: install its venv package (e.g. python3-venv)" >&2; exit 1
    fi
  fi
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing the project into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

redis_url=${REDIS_URL:-redis://localhost:6379/0}
if ! "$VENV/bin/python" -c "import redis, sys; redis.Redis.from_url('$redis_url', socket_connect_timeout=1).ping()" 2>/dev/null \
   && ! command -v redis-server >/dev/null 2>&1; then
  if can_apt; then say "installing redis-server"; apt_install redis-server
  else say "no Redis answers at $redis_url and redis-server is not installed: install it (apt-get install redis-server, brew install redis)"; fi
fi
say "ready ($("$VENV/bin/python" --version))"
