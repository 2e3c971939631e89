//! Building transform projects into components, in any language with a component toolchain:
//! the library behind `skewless new` and `skewless build`.
//!
//! A transform project is a directory; its language is recognized by its files
//! ([`Language::detect`]):
//!
//! | Language | Recognized by | Toolchain | Helper the build provides |
//! |---|---|---|---|
//! | Rust | `Cargo.toml` | `cargo build --release --target wasm32-wasip2` | the `skewless-guest` crate (a dependency) |
//! | Python | `app.py` | componentize-py | `skewless_guest.py` on the module path |
//! | JavaScript | `app.js` | componentize-js | `skewless_guest.js` beside `app.js` |
//! | C | `*.c` | clang for wasm32-wasi, then wit-component with the WASI preview1 reactor adapter | `skewless.h` and wit-bindgen's `feature_transform.h` on the include path |
//!
//! [`build`] runs the toolchain and returns the component's path, size and digest ([`Built`]).
//! The WIT contract and the Python, JavaScript and C helpers are compiled into this crate and
//! written under the project's target directory at build time, so the `skewless` binary works
//! on a project anywhere, with no checkout of this repository. A tool that is missing is an
//! error naming the command that installs it.
//!
//! Python, JavaScript and C builds are skipped when nothing changed: the build records a
//! digest of its inputs (the project's files, the embedded helpers, the tool's version) next
//! to the component and reuses the component while it matches. Rust builds rely on cargo's
//! own incremental builds.
//!
//! [`new_project`] scaffolds a project of each language: source, build configuration and a
//! small `input.csv` for `skewless run`.

mod assets;
mod c;
mod js;
mod process;
mod python;
mod rust;
mod scaffold;
mod stamp;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use skewless_engine::error::{Error, ErrorKind, Result};

pub use scaffold::{ScaffoldOptions, new_project};

/// The language of a transform project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    /// Rust with the `skewless-guest` crate.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    JavaScript,
    /// C, built with clang for wasm32-wasi.
    C,
}

impl Language {
    /// Every language, in the order errors list them.
    pub const ALL: [Language; 4] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::C,
    ];

    /// The name `--lang` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
            Language::C => "c",
        }
    }

    /// What marks a project of this language, as errors describe it.
    fn marker(self) -> &'static str {
        match self {
            Language::Rust => "Cargo.toml",
            Language::Python => "app.py",
            Language::JavaScript => "app.js",
            Language::C => "a .c file",
        }
    }

    /// Recognizes a project's language by its top-level files: `Cargo.toml` (Rust), `app.py`
    /// (Python), `app.js` (JavaScript) or any `*.c` file (C). Exactly one must match.
    pub fn detect(project: &Path) -> Result<Language> {
        let entries = std::fs::read_dir(project).map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                format!("cannot read the transform project directory: {e}"),
            )
            .with_context("project", project.display())
            .with_source(e)
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        let has = |name: &str| names.iter().any(|n| n == name);
        let found: Vec<Language> = Language::ALL
            .into_iter()
            .filter(|language| match language {
                Language::Rust => has("Cargo.toml"),
                Language::Python => has("app.py"),
                Language::JavaScript => has("app.js"),
                Language::C => names.iter().any(|n| n.ends_with(".c")),
            })
            .collect();
        match found.as_slice() {
            [language] => Ok(*language),
            [] => Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "not a transform project: expected {}; create one with `skewless new <name> \
                     --lang rust|python|js|c`",
                    Language::ALL
                        .iter()
                        .map(|l| format!("{} ({l})", l.marker()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_context("project", project.display())),
            several => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the project holds files of several languages ({}); a project builds one \
                     component: keep one entry point",
                    several
                        .iter()
                        .map(|l| format!("{} for {l}", l.marker()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_context("project", project.display())),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: honours width and alignment (`{:<12}` in tables).
        f.pad(match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
            Language::C => "C",
        })
    }
}

impl FromStr for Language {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Language::Rust),
            "python" | "py" => Ok(Language::Python),
            "js" | "javascript" => Ok(Language::JavaScript),
            "c" => Ok(Language::C),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unknown language `{s}`; expected one of rust, python, js, c"),
            )),
        }
    }
}

/// Settings of [`build`].
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Where the component and intermediate files go; default `<project>/target`.
    pub target_dir: Option<PathBuf>,
    /// The directories searched for tools (and the `PATH` their processes get); default the
    /// `PATH` of this process.
    pub search_path: Option<OsString>,
}

/// A built component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// The project's language.
    pub language: Language,
    /// The component file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// `sha256:<hex>` of its bytes: the digest the engine and the registry know it by.
    pub digest: String,
    /// Whether the toolchain ran (false when the component was up to date).
    pub rebuilt: bool,
}

/// Builds the project in `project` into a component with its language's toolchain.
pub fn build(project: &Path, options: &BuildOptions) -> Result<Built> {
    let language = Language::detect(project)?;
    let context = |e: Error| {
        e.with_context("project", project.display())
            .with_context("language", language)
    };
    let project = project
        .canonicalize()
        .map_err(|e| context(Error::from(e)))?;
    let target_dir = match &options.target_dir {
        Some(dir) => dir.clone(),
        None => project.join("target"),
    };
    std::fs::create_dir_all(&target_dir)
        .and_then(|()| stamp::mark_as_output(&target_dir))
        .map_err(|e| {
            context(Error::from(e).with_context("target directory", target_dir.display()))
        })?;
    let tools = process::Tools::new(options.search_path.clone());
    let (path, rebuilt) = match language {
        Language::Rust => rust::build(&project, &target_dir, &tools),
        Language::Python => python::build(&project, &target_dir, &tools),
        Language::JavaScript => js::build(&project, &target_dir, &tools),
        Language::C => c::build(&project, &target_dir, &tools),
    }
    .map_err(context)?;
    // Recorded by the build that wrote it (none for Rust, whose builds cargo keeps).
    let (size, digest) = match stamp::recorded(&path) {
        Some(recorded) => recorded,
        None => {
            let bytes = std::fs::read(&path)
                .map_err(|e| context(Error::from(e).with_context("component", path.display())))?;
            (bytes.len() as u64, skewless_engine::digest(&bytes))
        }
    };
    Ok(Built {
        language,
        size,
        digest,
        path,
        rebuilt,
    })
}

/// A path beside `out`, unique to this process, to write before an atomic rename.
fn temporary(out: &Path) -> PathBuf {
    out.with_extension(format!("wasm.{}.tmp", std::process::id()))
}

/// Moves a freshly written component into place and records the inputs it was built from.
/// A concurrent reader sees the old component or the new one, never half of one.
fn finish(tool: &str, tmp: &Path, out: &Path, stamp: &stamp::Stamp) -> Result<()> {
    let Ok(bytes) = std::fs::read(tmp) else {
        return Err(Error::new(
            ErrorKind::Internal,
            format!(
                "{tool} reported success but wrote no component; check that the installed \
                 {tool} is the version `skewless build` expects (a missing-tool error names it)"
            ),
        )
        .with_context("expected", tmp.display()));
    };
    std::fs::rename(tmp, out).map_err(|e| Error::from(e).with_context("file", out.display()))?;
    stamp.record(out, bytes.len() as u64, &skewless_engine::digest(&bytes))
}

/// Where a project's component is written in `target_dir`.
fn component_path(project: &Path, target_dir: &Path) -> PathBuf {
    target_dir.join(format!("{}.wasm", component_stem(project)))
}

/// The file name (without extension) of a project's component: its directory name, with `-`
/// turned into `_` as cargo does.
fn component_stem(project: &Path) -> String {
    project
        .file_name()
        .map(|n| n.to_string_lossy().replace('-', "_"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "transform".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_recognized_by_their_entry_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = Language::detect(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.message().contains("app.py (Python)"), "{err}");
        for (file, language) in [
            ("Cargo.toml", Language::Rust),
            ("app.py", Language::Python),
            ("app.js", Language::JavaScript),
            ("features.c", Language::C),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(file), "").unwrap();
            assert_eq!(Language::detect(dir.path()).unwrap(), language, "{file}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        std::fs::write(dir.path().join("app.js"), "").unwrap();
        let err = Language::detect(dir.path()).unwrap_err();
        assert!(
            err.message()
                .contains("app.py for Python, app.js for JavaScript"),
            "{err}"
        );
    }

    #[test]
    fn language_names_parse() {
        assert_eq!("py".parse::<Language>().unwrap(), Language::Python);
        assert_eq!("JS".parse::<Language>().unwrap(), Language::JavaScript);
        let err = "go".parse::<Language>().unwrap_err();
        assert!(err.message().contains("rust, python, js, c"), "{err}");
    }
}
