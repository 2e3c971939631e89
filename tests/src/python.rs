//! The Python environment of the integration tests that drive skewless from Python packages
//! (Feast's SDK, PyIceberg, schemathesis): `target/py-venv`, made by
//! `bash tests/python/setup-venv.sh` from `tests/python/requirements.txt`.
//!
//! A missing environment skips the tests that need it, with the reason printed, unless
//! `SKEWLESS_REQUIRE_TOOLCHAINS=1` (set by `.ci/run`), which turns the skip into a failure.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::languages::{toolchains_required, workspace};

/// The virtual environment's interpreter (`SKEWLESS_PY_VENV` overrides the location), or
/// `None` after printing why the calling test is skipped.
///
/// # Panics
/// When the environment is missing and toolchains are required.
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("SKEWLESS_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target").join("py-venv"));
    let python = venv.join("bin").join("python");
    if venv.join(".requirements.sha256").is_file() && python.is_file() {
        return Some(python);
    }
    let why = format!(
        "{test} needs the Python test environment at {} (create it with: bash \
         tests/python/setup-venv.sh)",
        venv.display()
    );
    if toolchains_required() {
        panic!("{why}");
    }
    eprintln!(
        "SKIPPED: {why}\n(set SKEWLESS_REQUIRE_TOOLCHAINS=1 to make this a failure, as CI does)"
    );
    None
}

/// Runs `python script args...` and returns its output; panics with both streams when it
/// exits non-zero, so a failing assertion in the script fails the Rust test with its message.
pub fn run_script(python: &std::path::Path, script: &str, args: &[&str]) -> Output {
    let path = workspace().join("tests").join("python").join(script);
    let output = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    if !output.status.success() {
        panic!(
            "{} {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            path.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}
