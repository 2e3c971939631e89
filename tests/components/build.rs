//! Builds every guest component for `wasm32-wasip2` and writes their paths as constants.
//!
//! One nested `cargo build --profile guest --target wasm32-wasip2 -p ... -p ...` builds all of
//! them at once (as wasmtime's `crates/test-programs/artifacts/build.rs` does), in
//! `<workspace>/target/guests`: a target directory of its own, so the nested build never
//! waits for the lock of the outer build's directory, and stays incremental across builds.
//! rustc links a `cdylib` for `wasm32-wasip2` as a component, so the `.wasm` files are ready
//! for the host as they are.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";

/// (package, directory in the workspace) of every component.
const COMPONENTS: &[(&str, &str)] = &[
    ("transaction-features", "examples/transaction-features"),
    ("merchant-category", "examples/merchant-category"),
    ("time-features", "examples/time-features"),
    ("request-amount-ratio", "examples/request-amount-ratio"),
    ("order-features", "examples/order-features"),
    ("echo-guest", "tests/guests/echo"),
    ("hostile-guest", "tests/guests/hostile"),
    ("wrong-world-guest", "tests/guests/wrong-world"),
];

/// Inputs of the components besides their own directories (sources only, never a target dir).
const SHARED_INPUTS: &[&str] = &["wit", "guest-sdk", "Cargo.toml", "Cargo.lock"];

/// Variables the outer cargo sets (for this build script, or for the host build) that would
/// change or break the nested build: host flags, the outer target and target directory, the
/// outer profile's overrides, the jobserver, compiler wrappers (`cargo clippy` sets one).
const REMOVED_VARS: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_RUSTDOCFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "DEBUG",
    "PROFILE",
    "RUSTC_LINKER",
    "CLIPPY_ARGS",
    "CLIPPY_CONF_DIR",
];
const REMOVED_PREFIXES: &[&str] = &[
    "CARGO_PROFILE_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "DEP_",
    "__CARGO_",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Cargo shows a failed build script's stderr.
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("no CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.join("../..").canonicalize().map_err(|e| {
        format!(
            "cannot find the workspace root above {}: {e}",
            manifest_dir.display()
        )
    })?;
    let target_dir = workspace.join("target").join("guests");

    for input in SHARED_INPUTS
        .iter()
        .chain(COMPONENTS.iter().map(|(_, dir)| dir))
    {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    check_target_installed(&rustc)?;

    let mut command = Command::new(&cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--profile", PROFILE, "--target", TARGET]);
    for (package, _) in COMPONENTS {
        command.args(["-p", package]);
    }
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if REMOVED_VARS.contains(&key) || REMOVED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            command.env_remove(key);
        }
    }
    command.env("CARGO_TARGET_DIR", &target_dir);
    let shown = format!(
        "CARGO_TARGET_DIR={} {} build --profile {PROFILE} --target {TARGET} {}",
        target_dir.display(),
        Path::new(&cargo).display(),
        COMPONENTS
            .iter()
            .map(|(package, _)| format!("-p {package}"))
            .collect::<Vec<_>>()
            .join(" "),
    );

    let output = command
        .output()
        .map_err(|e| format!("could not run `{shown}` in {}: {e}", workspace.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `std`")
        {
            format!("\nhint: run `rustup target add {TARGET}`")
        } else {
            String::new()
        };
        return Err(format!(
            "building the guest components failed ({}).\ncommand (in {}): {shown}\n{stderr}{hint}",
            output.status,
            workspace.display(),
        ));
    }

    let out_dir = target_dir.join(TARGET).join(PROFILE);
    let mut generated = String::new();
    let mut all = String::new();
    for (package, dir) in COMPONENTS {
        let file = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
        if !file.is_file() {
            return Err(format!(
                "`{shown}` succeeded but did not produce {}; is `{dir}` a `cdylib`?",
                file.display()
            ));
        }
        let constant = package.replace('-', "_").to_uppercase();
        let path = file
            .to_str()
            .ok_or_else(|| format!("non-UTF-8 path {}", file.display()))?;
        writeln!(
            generated,
            "/// The `{package}` component (`{dir}`), built for `{TARGET}` with the `{PROFILE}` \
             profile.\npub const {constant}: &str = {path:?};"
        )
        .expect("writing to a String");
        writeln!(all, "    ({package:?}, {constant}),").expect("writing to a String");
    }
    writeln!(
        generated,
        "/// Every component as `(package name, path)`.\npub const ALL: &[(&str, &str)] = &[\n{all}];"
    )
    .expect("writing to a String");

    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("no OUT_DIR")?).join("components.rs");
    fs::write(&out, generated).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// Fails early, with the fix, when the standard library for the target is not installed.
fn check_target_installed(rustc: &OsString) -> Result<(), String> {
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| {
            format!(
                "could not run `{} --print sysroot`: {e}",
                Path::new(rustc).display()
            )
        })?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let lib = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib");
    if output.status.success() && !lib.is_dir() {
        return Err(format!(
            "the Rust standard library for {TARGET} is not installed (no {}); \
             run `rustup target add {TARGET}`",
            lib.display()
        ));
    }
    Ok(())
}
