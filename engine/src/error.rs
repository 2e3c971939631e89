//! The one error type of the runtime library.
//!
//! An [`Error`] has a matchable [`ErrorKind`] that says who is at fault (the input, the
//! component, the transform's own logic, the sandbox's limits, the machine), a message that
//! says what was expected, and context pairs that name the thing at fault: the transform and
//! its digest, the column, the file. The CLI and the server render it; nothing in between
//! needs to parse a message.

use std::fmt;

/// A `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who or what is at fault.
///
/// Exhaustive on purpose: the server's status codes, the CLI's exit codes and the Python
/// package's exception classes match on every kind, so a new kind cannot slip through any of
/// them unmapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Input data or arguments that cannot be used: a malformed file, a bad value.
    InvalidInput,
    /// Data whose columns do not match what a transform declares: a missing column, a wrong
    /// type, nulls in a non-nullable column, a wrong length.
    SchemaMismatch,
    /// A file that is not a usable component: not a component at all, another world, an
    /// import the sandbox does not provide.
    InvalidComponent,
    /// The transform returned a batch-level error of its own.
    TransformFailed,
    /// The transform trapped: a panic, `unreachable`, a stack overflow, an out-of-bounds access.
    Trapped,
    /// The transform ran past its per-call deadline.
    DeadlineExceeded,
    /// The transform tried to grow its memory past the per-instance cap.
    MemoryLimitExceeded,
    /// A named thing does not exist: a table, a feature view, a feature, an entity.
    NotFound,
    /// A backend (Redis, a catalog) cannot be reached or refused the request; retrying later
    /// may succeed.
    Unavailable,
    /// Reading or writing a file failed.
    Io,
    /// An operation skewless refuses by design, whatever the input: one that would let
    /// online and offline values disagree (a write of precomputed feature values, say).
    Unsupported,
    /// The caller asked the job to stop (`skewless_runtime::interrupt::Interrupt`, Ctrl-C in
    /// Python); it stopped before committing anything.
    Interrupted,
    /// A bug in skewless itself.
    Internal,
}

impl ErrorKind {
    /// A short stable name, used in logs, metrics and JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::SchemaMismatch => "schema_mismatch",
            ErrorKind::InvalidComponent => "invalid_component",
            ErrorKind::TransformFailed => "transform_failed",
            ErrorKind::Trapped => "trapped",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::MemoryLimitExceeded => "memory_limit_exceeded",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Io => "io",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the fault lies with the caller's input or component (a 4xx in HTTP terms)
    /// rather than with the machine or skewless itself.
    pub fn is_user_error(self) -> bool {
        !matches!(
            self,
            ErrorKind::Io | ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::Interrupted
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a kind, a message, context naming what was at fault, and an optional source.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    context: Vec<(&'static str, String)>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message that says what was expected.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            context: Vec::new(),
            source: None,
        }
    }

    /// The same error under another kind, for a caller that knows better who is at fault
    /// (an output that does not fit its signature is the component's fault, not the input's).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Adds a `key: value` pair naming what was at fault (`"column"`, `"transform"`, `"file"`).
    /// A key already present keeps its first value: the innermost context is the most precise.
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        if !self.context.iter().any(|(k, _)| *k == key) {
            self.context.push((key, value.to_string()));
        }
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Who or what is at fault.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The context pairs, innermost first.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// The value of one context key, if present.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if !self.context.is_empty() {
            f.write_str(" (")?;
            for (i, (key, value)) in self.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{key}: {value}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, e.to_string()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_context_innermost_first_and_keeps_the_first_value() {
        let e = Error::new(ErrorKind::SchemaMismatch, "expected float64, found utf8")
            .with_context("column", "amount")
            .with_context("transform", "txn@1.0.0")
            .with_context("column", "outer");
        assert_eq!(
            e.to_string(),
            "expected float64, found utf8 (column: amount, transform: txn@1.0.0)"
        );
        assert_eq!(e.context_value("column"), Some("amount"));
        assert!(e.kind().is_user_error());
        assert!(!ErrorKind::Internal.is_user_error());
    }
}
