#!/usr/bin/env bash
# Create the project's virtualenv and install kubelite with its test tools.
# Works on a fresh Debian machine as root: installs python3-venv when the interpreter lacks venv.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
  else
    echo "bootstrap: $PYTHON has no venv module; install python3-venv" >&2
    exit 1
  fi
fi
# Tools the node agent and the service proxy call as root: nsenter/unshare (util-linux), ip (iproute2), nft.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=""
  command -v ip >/dev/null || missing="$missing iproute2"
  command -v nft >/dev/null || missing="$missing nftables"
  command -v nsenter >/dev/null || missing="$missing util-linux"
  if [ -n "$missing" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
