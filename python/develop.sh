#!/usr/bin/env bash
# Builds the Python package in debug into the test environment (target/py-venv, made by
# tests/python/setup-venv.sh) and runs its tests (python/tests):
#   bash python/develop.sh              # build, install (editable), pytest
#   bash python/develop.sh -k online    # arguments go to pytest
# The extension module is built with the rest of the workspace, in one cargo run that also
# builds what the tests need besides it (the `skewless` binary, the compiled components), and
# installed the way `maturin develop` installs it: the module beside the Python sources in
# python/skewless, and a .pth file that puts python/ on the environment's path. Not `maturin
# develop` itself: it builds the `skewless-python` package on its own, and a package built on
# its own resolves its dependencies' features differently from the workspace, so some 30
# crates (the runtime among them) would compile a second time, minutes of a fresh CI run and
# a GB of its disk. Wheels are built with maturin (docs/python.md). SKEWLESS_REQUIRE_TOOLCHAINS=1
# (CI) turns a test skipped for want of a toolchain into a failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SKEWLESS_PY_VENV:-$root/target/py-venv}"
if [[ ! -x "$venv/bin/pytest" ]]; then
    echo "error: no pytest in $venv; make the test environment first: bash tests/python/setup-venv.sh" >&2
    exit 1
fi
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
cargo build --locked --workspace
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# The library python/Cargo.toml names `_native`, installed as pyproject.toml's module
# `skewless._native`; `abi3`: built for CPython's stable ABI (pyo3's `abi3-py39`), as maturin
# names it.
install -m 755 "$target_dir/debug/lib_native.so" "$root/python/skewless/_native.abi3.so"
site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$root/python" >"$site/skewless.pth"
cd "$root/python"
python -m pytest -q "$@"
