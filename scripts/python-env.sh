#!/usr/bin/env bash
# Python packages that some tests use as independent checkers of our output formats (e.g. a signature checked
# with the `cryptography` package, not with our own code). Creates a virtual environment once, re-creates it
# when scripts/python-requirements.txt changes, and prints `OBSERVER_PYTHON=<its python>` for `eval`.
# The environment lives in $OBSERVER_PYENV (default: <target dir>/pyenv).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${OBSERVER_PYENV:-${CARGO_TARGET_DIR:-$PWD/target}/pyenv}"
req=scripts/python-requirements.txt
if ! cmp -s "$req" "$dir/.requirements" 2>/dev/null; then
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    cp "$req" "$dir/.requirements"
fi
echo "OBSERVER_PYTHON=$dir/bin/python"
