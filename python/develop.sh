#!/usr/bin/env bash
# Builds the Python package in debug into the test environment (target/py-venv, made by
# tests/python/setup-venv.sh) and runs its tests (python/tests):
#   bash python/develop.sh              # build, install (editable), pytest
#   bash python/develop.sh -k online    # arguments go to pytest
# The build reuses the workspace's target dir, so on a warm one only the extension module
# relinks. The tests also need the `skewless` binary and the compiled components; they are
# built here too (nothing to do after `cargo test --workspace`). SKEWLESS_REQUIRE_TOOLCHAINS=1
# (CI) turns a test skipped for want of them into a failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SKEWLESS_PY_VENV:-$root/target/py-venv}"
if [[ ! -x "$venv/bin/maturin" ]]; then
    echo "error: no maturin in $venv; make the test environment first: bash tests/python/setup-venv.sh" >&2
    exit 1
fi
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
cargo build --locked -p skewless-cli -p skewless-test-components
(cd "$root/python" && maturin develop --locked)
cd "$root/python"
python -m pytest -q "$@"
