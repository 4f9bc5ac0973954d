#!/usr/bin/env bash
# Installs Schemathesis (from PyPI, pinned) into a virtualenv of edgewatch's own, for the
# API conformance test (tests/api_schema.rs), when it is not there yet. Prints the path of
# the `st` command it installed.
#
#   EDGEWATCH_TOOLS   where the virtualenv goes (default ${XDG_CACHE_HOME:-~/.cache}/edgewatch)
#
# Needs python3 with venv (Debian: python3-venv, installed with apt-get when missing and
# root) and access to PyPI.
set -euo pipefail

VERSION=4.32.5
TOOLS=${EDGEWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/edgewatch}
VENV=$TOOLS/schemathesis-$VERSION
ST=$VENV/bin/st

if [ -x "$ST" ] && "$ST" --version >/dev/null 2>&1; then
    echo "$ST"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "install-schemathesis: installing python3-venv" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
    else
        echo "install-schemathesis: needs python3 with venv (apt-get install python3-venv)" >&2
        exit 1
    fi
fi

echo "install-schemathesis: installing schemathesis $VERSION into $VENV" >&2
rm -rf "$VENV"
mkdir -p "$TOOLS"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2
"$ST" --version >&2
echo "$ST"
