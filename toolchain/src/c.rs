//! C: clang for wasm32-wasi (a reactor module), then componentization.
//!
//! 1. Bindings: wit-bindgen's C generator (a library, run in this process) writes
//!    `feature_transform.{h,c}` and `feature_transform_component_type.o` (the world's type,
//!    as a custom section) from the embedded WIT; `skewless.h` is written beside them.
//! 2. clang compiles every `.c` file of the project with those into a core module:
//!    `--target=wasm32-wasi -mexec-model=reactor -O2 -ffp-contract=off`. No FMA contraction,
//!    so `a * b + c` rounds twice as in every other language.
//! 3. wit-component turns the module into a component, adapting wasi-libc's WASI preview1
//!    imports to WASI 0.2 with the reactor adapter shipped by
//!    `wasi-preview1-component-adapter-provider` (the version matching wasmtime).

use std::path::{Path, PathBuf};

use super::assets::{self, C_HELPER, WIT, WORLD};
use super::process::{self, Tools};
use super::stamp::Stamp;
use skewless_engine::error::{Error, ErrorKind, Result};

/// How to install the toolchain, as the missing-tool errors say it.
pub(super) const INSTALL: &str = "install clang with the wasm32 runtime and wasi-libc, e.g. \
     `apt-get install -y clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc`";

/// Compiler names tried in order.
const CLANGS: [&str; 5] = ["clang-19", "clang", "clang-20", "clang-21", "clang-18"];

const TARGET: &str = "--target=wasm32-wasi";

pub(super) fn build(project: &Path, target_dir: &Path, tools: &Tools) -> Result<(PathBuf, bool)> {
    let clang = find_clang(tools)?;
    let out = super::component_path(project, target_dir);
    let mut stamp = Stamp::new("c");
    stamp.text(&clang.to_string_lossy());
    stamp.text(&process::version(tools, &clang));
    stamp.text(WIT);
    stamp.text(C_HELPER);
    stamp.text(wit_bindgen_c_version());
    let sources: Vec<PathBuf> = stamp
        .project(project, &["c", "h"])?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .map(|p| project.join(p))
        .collect();
    if stamp.is_fresh(&out) {
        return Ok((out, false));
    }

    let stage = target_dir.join("skewless").join("c");
    let generated = bindings(&stage)?;
    assets::write_if_changed(&stage.join("skewless.h"), C_HELPER.as_bytes())?;
    let core = stage.join("module.wasm");
    process::run(
        tools
            .command(&clang)
            .current_dir(project)
            .args([
                TARGET,
                "-mexec-model=reactor",
                "-O2",
                "-ffp-contract=off",
                "-Wall",
            ])
            .arg("-I")
            .arg(&stage)
            .arg("-o")
            .arg(&core)
            .args(&sources)
            .args(&generated),
        "clang",
    )?;
    let module =
        std::fs::read(&core).map_err(|e| Error::from(e).with_context("file", core.display()))?;
    let component = componentize(&module)?;
    let tmp = super::temporary(&out);
    std::fs::write(&tmp, component)
        .map_err(|e| Error::from(e).with_context("file", tmp.display()))?;
    super::finish("wit-component", &tmp, &out, &stamp)?;
    Ok((out, true))
}

fn wit_bindgen_c_version() -> &'static str {
    // Bump with the dependency in Cargo.toml: generated bindings are a build input.
    "wit-bindgen-c 0.61.1"
}

/// The first clang on the search path that can build for wasm32-wasi: one that finds
/// wasi-libc's reactor start file, `wasm-ld` and the wasm32 compiler runtime. A clang that
/// lacks one of them is reported with what it lacks.
fn find_clang(tools: &Tools) -> Result<PathBuf> {
    let mut problems = Vec::new();
    for name in CLANGS {
        let Some(clang) = tools.find(name) else {
            continue;
        };
        let probes: [(&[&str], &str); 3] = [
            (
                &["-print-file-name=crt1-reactor.o"],
                "wasi-libc (crt1-reactor.o)",
            ),
            (&["-print-prog-name=wasm-ld"], "the wasm-ld linker (lld)"),
            (
                &["-rtlib=compiler-rt", "-print-libgcc-file-name"],
                "the wasm32 compiler runtime (libclang_rt.builtins-wasm32.a)",
            ),
        ];
        let missing: Vec<&str> = probes
            .into_iter()
            .filter(|(args, _)| !probe_finds_file(tools, &clang, args))
            .map(|(_, what)| what)
            .collect();
        if missing.is_empty() {
            return Ok(clang);
        }
        problems.push(format!("{} lacks {}", clang.display(), missing.join(", ")));
    }
    if problems.is_empty() {
        return Err(process::missing("clang", INSTALL));
    }
    Err(Error::new(
        ErrorKind::NotFound,
        format!(
            "no clang here can build for wasm32-wasi ({}): {INSTALL}",
            problems.join("; ")
        ),
    )
    .with_context("tool", "clang"))
}

/// Whether clang prints an existing absolute path for a `-print-*` query (it echoes the bare
/// name when it cannot find the file).
fn probe_finds_file(tools: &Tools, clang: &Path, args: &[&str]) -> bool {
    let Ok(output) = tools.command(clang).arg(TARGET).args(args).output() else {
        return false;
    };
    let printed = String::from_utf8_lossy(&output.stdout);
    let path = Path::new(printed.trim());
    output.status.success() && path.is_absolute() && path.exists()
}

/// Generates the C bindings of the world into `dir`; returns the files to compile and link.
fn bindings(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str("transform.wit", WIT)
        .map_err(|e| internal("the embedded WIT does not parse", &e))?;
    let world = resolve
        .select_world(&[package], Some(WORLD))
        .map_err(|e| internal("the embedded WIT has no feature-transform world", &e))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| internal("generating the C bindings failed", &e))?;
    let mut compiled = Vec::new();
    for (name, contents) in files.iter() {
        let path = dir.join(name);
        assets::write_if_changed(&path, contents)?;
        if !name.ends_with(".h") {
            compiled.push(path);
        }
    }
    Ok(compiled)
}

/// Wraps a core module built against wasi-libc into a component.
fn componentize(module: &[u8]) -> Result<Vec<u8>> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| {
            encoder.validate(true).adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|encoder| encoder.encode())
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the compiled module could not be made into a component: {e:#}. Does every \
                     exported function come from SKEWLESS_EXPORT (skewless.h), and does the code \
                     avoid functions a reactor cannot use (main, exit)?"
                ),
            )
        })
}

fn internal(what: &str, e: &anyhow::Error) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e:#}"))
}
