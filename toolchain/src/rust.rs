//! Rust: `cargo build --release --target wasm32-wasip2`. rustc links a `cdylib` for that
//! target as a component, so cargo's output is the component; cargo is incremental itself.

use std::path::{Path, PathBuf};

use super::process::{self, Tools};
use skewless_engine::error::{Error, ErrorKind, Result};

const TARGET: &str = "wasm32-wasip2";

/// How to install the toolchain, as the missing-tool errors say it.
pub(super) const INSTALL: &str =
    "install Rust from https://rustup.rs, then run `rustup target add wasm32-wasip2`";

pub(super) fn build(project: &Path, target_dir: &Path, tools: &Tools) -> Result<(PathBuf, bool)> {
    let cargo = tools.require("cargo", INSTALL)?;
    check_target(project, tools)?;
    let output = process::run(
        tools
            .command(&cargo)
            .current_dir(project)
            .args(["build", "--release", "--target", TARGET])
            .args(["--message-format", "json-render-diagnostics"])
            .arg("--target-dir")
            .arg(target_dir)
            // The caller's cargo settings (a `cargo test` around us) are not the project's.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET"),
        "cargo build",
    )?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (path, fresh) = component_artifact(&stdout).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "cargo built no `.wasm` library: a transform crate needs \
             `[lib] crate-type = [\"cdylib\"]` in its Cargo.toml",
        )
    })?;
    Ok((path, !fresh))
}

/// Checks that the Rust standard library for wasm32-wasip2 is installed, with the toolchain
/// the project selects (run in the project directory, so a `rust-toolchain.toml` counts).
fn check_target(project: &Path, tools: &Tools) -> Result<()> {
    let rustc = tools.require("rustc", INSTALL)?;
    let output = process::run(
        tools
            .command(&rustc)
            .current_dir(project)
            .args(["--print", "sysroot"]),
        "rustc --print sysroot",
    )?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::NotFound,
        format!(
            "the Rust target {TARGET} is not installed for the toolchain in {}: run \
             `rustup target add {TARGET}`",
            sysroot.display()
        ),
    )
    .with_context("tool", format!("rust-std for {TARGET}")))
}

/// The `.wasm` file of the last `cdylib` artifact (searched from the end) in cargo's JSON messages, and whether cargo
/// found it fresh.
fn component_artifact(messages: &str) -> Option<(PathBuf, bool)> {
    messages
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .filter_map(|m| {
            let fresh = m["fresh"].as_bool().unwrap_or(false);
            let path = m["filenames"]
                .as_array()?
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))?
                .to_owned();
            Some((PathBuf::from(path), fresh))
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_is_the_cdylib_artifact() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"]},"filenames":["/t/libdep.rlib"],"fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["cdylib"]},"filenames":["/t/wasm32-wasip2/release/my_tx.wasm"],"fresh":false}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            component_artifact(messages),
            Some((PathBuf::from("/t/wasm32-wasip2/release/my_tx.wasm"), false))
        );
        assert_eq!(component_artifact(r#"{"reason":"build-finished"}"#), None);
    }
}
