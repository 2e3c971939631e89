#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment the integration tests use, at
# target/py-venv, with the packages of tests/python/requirements.txt. Re-running it is cheap:
# the environment is rebuilt only when requirements.txt changes.
#   bash tests/python/setup-venv.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${SKEWLESS_PY_VENV:-$root/target/py-venv}"
requirements="$root/tests/python/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "python test environment up to date: $venv"
    exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
fi
rm -rf "$venv"
python3 -m venv "$venv"
# No pip cache: the downloads (Spark's alone is ~400 MB) would stay on the disk beside the
# installed environment, which is all the tests use.
"$venv/bin/python" -m pip install -q --no-cache-dir --upgrade pip
"$venv/bin/python" -m pip install -q --no-cache-dir -r "$requirements"
echo "$want" >"$stamp"
echo "python test environment ready: $venv"
