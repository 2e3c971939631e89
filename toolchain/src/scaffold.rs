//! `skewless new`: a transform project to start from, in each language.
//!
//! Every project computes the same small example (an amount in cents, a refund flag and a
//! normalized category) and holds an `input.csv` to try it on with `skewless run`, plus a
//! `.gitignore` for the build outputs. Templates live in `templates/` and are compiled in.

use std::path::{Path, PathBuf};

use super::Language;
use skewless_engine::error::{Error, ErrorKind, Result};

const INPUT_CSV: &str = include_str!("templates/input.csv");
const RUST_CARGO_TOML: &str = include_str!("templates/rust_Cargo.toml");
const RUST_LIB: &str = include_str!("templates/rust_lib.rs");
const PYTHON_APP: &str = include_str!("templates/python_app.py");
const JS_APP: &str = include_str!("templates/js_app.js");
const C_TRANSFORM: &str = include_str!("templates/c_transform.c");

/// The Rust guest SDK of the checkout this binary was built from, if it is still there.
const CHECKOUT_GUEST_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Settings of [`new_project`].
#[derive(Clone, Debug, Default)]
pub struct ScaffoldOptions {
    /// The `skewless-guest` crate a Rust project depends on, as a path. Default: the
    /// `guest-sdk` directory of the checkout `skewless` was built from when it exists, else
    /// the crate by version from the registry.
    pub guest_sdk: Option<PathBuf>,
}

/// Creates the project `name` of `language` in `parent/name`; returns its directory and the
/// files written, relative to it.
pub fn new_project(
    parent: &Path,
    name: &str,
    language: Language,
    options: &ScaffoldOptions,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the directory already exists and is not empty; choose another name or remove it",
        )
        .with_context("directory", dir.display()));
    }
    let fill = |template: &str| template.replace("__NAME__", name);
    let mut files: Vec<(&str, String)> = vec![
        ("input.csv", INPUT_CSV.to_owned()),
        (".gitignore", "/target\n__pycache__/\n".to_owned()),
    ];
    match language {
        Language::Rust => {
            let manifest =
                fill(RUST_CARGO_TOML).replace("__GUEST_SDK__", &guest_sdk_dependency(options)?);
            files.push(("Cargo.toml", manifest));
            files.push(("src/lib.rs", fill(RUST_LIB)));
        }
        Language::Python => files.push(("app.py", fill(PYTHON_APP))),
        Language::JavaScript => files.push(("app.js", fill(JS_APP))),
        Language::C => files.push(("transform.c", fill(C_TRANSFORM))),
    }
    let mut written = Vec::new();
    for (relative, contents) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::from(e).with_context("directory", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .map_err(|e| Error::from(e).with_context("file", path.display()))?;
        written.push(PathBuf::from(relative));
    }
    Ok((dir, written))
}

/// A name is a package name in every language's toolchain: lowercase ASCII letters, digits
/// and `-`, starting with a letter.
fn check_name(name: &str) -> Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!(
            "invalid transform name `{name}`: expected lowercase ASCII letters, digits and `-`, \
             starting with a letter, at most 64 characters (e.g. `order-features`)"
        ),
    ))
}

/// The `skewless-guest = ...` line of a Rust project's manifest.
fn guest_sdk_dependency(options: &ScaffoldOptions) -> Result<String> {
    let path = match &options.guest_sdk {
        Some(path) => Some(path.canonicalize().map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                format!("the guest SDK directory does not exist: {e}"),
            )
            .with_context("guest sdk", path.display())
        })?),
        None => Path::new(CHECKOUT_GUEST_SDK).canonicalize().ok(),
    };
    Ok(match path {
        Some(path) => {
            if !path.join("Cargo.toml").exists() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "the guest SDK directory has no Cargo.toml; expected the `guest-sdk` \
                     directory of a skewless checkout",
                )
                .with_context("guest sdk", path.display()));
            }
            // TOML basic strings need `\` and `"` escaped.
            let escaped = path
                .to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            format!("skewless-guest = {{ path = \"{escaped}\" }}")
        }
        None => format!("skewless-guest = \"{}\"", env!("CARGO_PKG_VERSION")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_package_names() {
        for good in ["a", "order-features", "f2"] {
            check_name(good).unwrap();
        }
        for bad in ["", "Order", "2fast", "a_b", "a b", "é"] {
            let err = check_name(bad).unwrap_err();
            assert!(err.message().contains("lowercase ASCII"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_language_gets_its_entry_point_and_an_input() {
        let parent = tempfile::tempdir().unwrap();
        for language in Language::ALL {
            let name = format!("t-{}", language.as_str());
            let (dir, files) =
                new_project(parent.path(), &name, language, &ScaffoldOptions::default()).unwrap();
            assert!(files.contains(&PathBuf::from("input.csv")));
            assert_eq!(Language::detect(&dir).unwrap(), language);
            for file in files {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                assert!(!text.contains("__NAME__") && !text.contains("__GUEST_SDK__"));
            }
            let again = new_project(parent.path(), &name, language, &ScaffoldOptions::default());
            assert!(again.unwrap_err().message().contains("not empty"));
        }
    }
}
