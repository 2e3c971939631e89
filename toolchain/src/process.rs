//! Finding tools on a search path and running them, with their output kept for errors.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use skewless_engine::error::{Error, ErrorKind, Result};

/// How many trailing lines of a failed tool's output an error quotes.
const QUOTED_LINES: usize = 60;

/// The directories tools are looked up in, and the `PATH` their processes get.
#[derive(Debug)]
pub(super) struct Tools {
    search_path: Option<OsString>,
}

impl Tools {
    pub(super) fn new(search_path: Option<OsString>) -> Self {
        Tools { search_path }
    }

    fn path(&self) -> Option<OsString> {
        self.search_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
    }

    /// The first executable file called `name` on the search path.
    pub(super) fn find(&self, name: &str) -> Option<PathBuf> {
        let path = self.path()?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    }

    /// Finds `name` or fails with an error that says how to install it.
    pub(super) fn require(&self, name: &str, install: &str) -> Result<PathBuf> {
        self.find(name).ok_or_else(|| missing(name, install))
    }

    /// A command for `program` that sees the search path as its `PATH`.
    pub(super) fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Some(path) = &self.search_path {
            command.env("PATH", path);
        }
        command
    }
}

/// The error for a tool that is not installed.
pub(super) fn missing(what: &str, install: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("{what} is not installed (or not on PATH): {install}"),
    )
    .with_context("tool", what)
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Runs `command` to completion, capturing its output; a non-zero exit is an error that
/// quotes the end of what the tool printed, so the author sees the compiler's message.
pub(super) fn run(command: &mut Command, what: &str) -> Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|e| {
        Error::new(ErrorKind::Io, format!("could not start {what}: {e}"))
            .with_context("command", &program)
            .with_source(e)
    })?;
    if output.status.success() {
        return Ok(output);
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!(
            "{what} failed ({}):\n{}",
            output.status,
            quote(&output.stdout, &output.stderr)
        ),
    )
    .with_context("command", program))
}

/// The last lines of a tool's stdout and stderr, indented.
fn quote(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(QUOTED_LINES);
    lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first line a tool prints for `--version`, to tell builds by different versions apart.
pub(super) fn version(tools: &Tools, program: &Path) -> String {
    tools
        .command(program)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}
