//! Files compiled into the binary and written where a toolchain needs them: the WIT contract
//! and the guest helpers for Python, JavaScript and C. Embedding them keeps `skewless build`
//! independent of a checkout of this repository, and ties each helper to the contract version
//! of the host that wrote it.

use std::path::{Path, PathBuf};

use skewless_engine::error::{Error, Result};

/// `wit/transform.wit`: the `skewless:transform@0.1.0` package (typed lists), which the Rust,
/// C and JavaScript helpers build against: their bindings take a typed list as one copy.
pub(super) const WIT: &str = include_str!("../../wit/transform.wit");
/// `wit/0.2.0/transform.wit`: the `skewless:transform@0.2.0` package (every buffer as bytes),
/// which the Python helper builds against: componentize-py lifts `list<u8>` as one `bytes`
/// object and a typed list one value at a time.
pub(super) const WIT_0_2: &str = include_str!("../../wit/0.2.0/transform.wit");
/// The world every transform implements, as toolchains take it.
pub(super) const WORLD: &str = "feature-transform";
/// The Python helper module `skewless_guest`.
pub(super) const PYTHON_HELPER: &str = include_str!("../../guest-sdk/python/skewless_guest.py");
/// The JavaScript helper module `skewless_guest.js`.
pub(super) const JS_HELPER: &str = include_str!("../../guest-sdk/js/skewless_guest.js");
/// The header-only C helper `skewless.h`.
pub(super) const C_HELPER: &str = include_str!("../../guest-sdk/c/skewless.h");

/// Writes `contents` to `path` (creating its directory) unless it already holds exactly that,
/// so that tools watching modification times see no change.
pub(super) fn write_if_changed(path: &Path, contents: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    let io = |e: std::io::Error| Error::from(e).with_context("file", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, contents).map_err(io)
}

/// Writes a WIT package (`WIT` or `WIT_0_2`) into `dir` (as `dir/transform.wit`) and returns
/// `dir`.
pub(super) fn write_wit(dir: PathBuf, wit: &str) -> Result<PathBuf> {
    write_if_changed(&dir.join("transform.wit"), wit.as_bytes())?;
    Ok(dir)
}
