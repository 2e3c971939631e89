//! Skipping builds whose inputs did not change.
//!
//! Interpreted-language builds take several seconds (componentize-py and componentize-js
//! snapshot a whole interpreter) and produce a new component each time. A build records a
//! digest of everything it depends on in `<component>.inputs`; the next build with the same
//! digest reuses the component. The digest covers the project's source files of the language
//! (outside `target/`, hidden directories, `__pycache__` and `node_modules`; a sample input or
//! an output written into the project does not count), the embedded WIT and helpers, and the
//! tool's path and version. The record also holds the component's size and digest, so an
//! up-to-date build need not read the component again.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use skewless_engine::error::{Error, Result};

/// Directories of a project that are outputs or caches, not sources.
const SKIPPED_DIRS: [&str; 3] = ["target", "__pycache__", "node_modules"];

/// The file that marks a build's target directory (the cache-directory convention cargo also
/// follows), so that a `--target-dir` inside the project is never read as sources: neither
/// hashed into the stamp nor, for C, compiled.
const OUTPUT_MARKER: &str = "CACHEDIR.TAG";

/// Marks `dir` as a build output directory (see [`OUTPUT_MARKER`]), once.
pub(super) fn mark_as_output(dir: &Path) -> std::io::Result<()> {
    let marker = dir.join(OUTPUT_MARKER);
    if marker.exists() {
        return Ok(());
    }
    std::fs::write(
        marker,
        "Signature: 8a477f597d28d172789f06886806bc55\n\
         # A skewless build directory: outputs, not sources.\n",
    )
}

/// A digest of a build's inputs.
#[derive(Debug)]
pub(super) struct Stamp {
    hasher: Sha256,
}

impl Stamp {
    pub(super) fn new(kind: &str) -> Self {
        let mut stamp = Stamp {
            hasher: Sha256::new(),
        };
        stamp.text(kind);
        stamp
    }

    /// Adds a labelled piece of text (a helper, a tool version).
    pub(super) fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        // Length-prefixed, so that no two sequences of pieces hash alike.
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    /// Adds every source file under `project` whose extension is one of `extensions`:
    /// relative path and contents, in sorted order. Returns those files, relative to `project`.
    pub(super) fn project(&mut self, project: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
        let files = source_files(project, extensions)?;
        for relative in &files {
            let path = project.join(relative);
            let contents = std::fs::read(&path)
                .map_err(|e| Error::from(e).with_context("file", path.display()))?;
            self.text(&relative.to_string_lossy());
            self.bytes(&contents);
        }
        Ok(files)
    }

    fn digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Whether `component` exists and was built from these inputs.
    pub(super) fn is_fresh(&self, component: &Path) -> bool {
        component.exists()
            && std::fs::read_to_string(stamp_path(component))
                .is_ok_and(|recorded| recorded.lines().next() == Some(self.digest().as_str()))
    }

    /// Records that `component`, `size` bytes with digest `digest`, was built from these
    /// inputs.
    pub(super) fn record(&self, component: &Path, size: u64, digest: &str) -> Result<()> {
        let path = stamp_path(component);
        std::fs::write(&path, format!("{}\n{size}\n{digest}\n", self.digest()))
            .map_err(|e| Error::from(e).with_context("file", path.display()))
    }
}

/// The size and digest recorded for `component` by its last build, if the record is there and
/// the component still has that size.
pub(super) fn recorded(component: &Path) -> Option<(u64, String)> {
    let record = std::fs::read_to_string(stamp_path(component)).ok()?;
    let mut lines = record.lines().skip(1);
    let size: u64 = lines.next()?.parse().ok()?;
    let digest = lines.next()?.to_owned();
    let actual = std::fs::metadata(component).ok()?.len();
    (actual == size && digest.starts_with("sha256:")).then_some((size, digest))
}

fn stamp_path(component: &Path) -> PathBuf {
    let mut name = component.file_name().unwrap_or_default().to_os_string();
    name.push(".inputs");
    component.with_file_name(name)
}

/// Every file under `project` with one of `extensions`, relative to it (outputs, caches and
/// hidden directories left out).
fn source_files(project: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    collect(project, project, &mut files)?;
    files.retain(|f| {
        f.extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x))
    });
    files.sort();
    Ok(files)
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::from(e).with_context("directory", dir.display()))?;
    let in_dir = |e: std::io::Error| Error::from(e).with_context("directory", dir.display());
    for entry in entries {
        let entry = entry.map_err(in_dir)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let file_type = entry.file_type().map_err(in_dir)?;
        if file_type.is_dir() {
            let output = entry.path().join(OUTPUT_MARKER).exists();
            if !output && !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()) {
                collect(root, &entry.path(), files)?;
            }
        } else if file_type.is_file() {
            let path = entry.path();
            files.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}
