//! LMDB's failures as skewless errors: each names the store's path, says what went wrong in
//! the user's terms (a full map, a foreign file, too many readers) and what to do about it.

use std::path::Path;

use heed::MdbError;

use crate::error::{Error, ErrorKind};

/// What the store was doing, for messages: "cannot {doing} the embedded online store".
#[derive(Clone, Copy, Debug)]
pub(super) enum Doing {
    Open,
    Read,
    Write,
    Delete,
}

impl Doing {
    fn as_str(self) -> &'static str {
        match self {
            Doing::Open => "open",
            Doing::Read => "read from",
            Doing::Write => "write to",
            Doing::Delete => "delete a view from",
        }
    }
}

/// The error for `e`, met while `doing` something to the store at `path` whose memory map is
/// `map_size` bytes.
pub(super) fn store_error(path: &Path, map_size: usize, doing: Doing, e: heed::Error) -> Error {
    let at = path.display();
    let (kind, message) = match &e {
        heed::Error::Mdb(MdbError::MapFull) => (
            ErrorKind::Io,
            format!(
                "the embedded online store at {at} is full: it is limited to its map size, {} \
                 (`[online] map_size`, in bytes); raise `map_size` in the project file and run \
                 the job again (the map is reserved address space, not disk, so a generous \
                 value costs nothing)",
                human_size(map_size)
            ),
        ),
        heed::Error::Mdb(MdbError::MapResized) => (
            ErrorKind::Unavailable,
            format!(
                "another process has grown the embedded online store at {at} beyond this \
                 process's map size, {} (`[online] map_size`); give every process on this \
                 store the same `map_size` and restart this one",
                human_size(map_size)
            ),
        ),
        heed::Error::Mdb(MdbError::ReadersFull) => (
            ErrorKind::Unavailable,
            format!(
                "the embedded online store at {at} has too many concurrent readers (at most \
                 {}, across all processes); retry, or run fewer processes on it",
                super::MAX_READERS
            ),
        ),
        heed::Error::Mdb(MdbError::Invalid | MdbError::VersionMismatch) => (
            ErrorKind::InvalidInput,
            format!(
                "{at} is not an embedded online store: expected an LMDB file written by \
                 skewless; point `[online] path` at another file, or delete this one and run \
                 `skewless materialize --all`"
            ),
        ),
        heed::Error::Mdb(
            MdbError::Corrupted | MdbError::PageNotFound | MdbError::Panic | MdbError::BadTxn,
        ) => (
            ErrorKind::Io,
            format!(
                "the embedded online store at {at} is damaged ({e}); the online store is a \
                 cache of the offline store: delete {at} and {at}-lock, then run `skewless \
                 materialize --all`"
            ),
        ),
        heed::Error::EnvAlreadyOpened => (
            ErrorKind::Unavailable,
            format!(
                "the embedded online store at {at} is already open in this process; share the \
                 one handle between threads (processes each open their own)"
            ),
        ),
        heed::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => (
            ErrorKind::Io,
            format!(
                "cannot {} the embedded online store at {at}: permission denied; the store \
                 and its `-lock` file must be readable and writable by every process that \
                 uses it",
                doing.as_str()
            ),
        ),
        heed::Error::Io(_) => (
            ErrorKind::Io,
            format!(
                "cannot {} the embedded online store at {at}: {e}",
                doing.as_str()
            ),
        ),
        _ => (
            ErrorKind::Internal,
            format!(
                "cannot {} the embedded online store at {at}: {e}",
                doing.as_str()
            ),
        ),
    };
    Error::new(kind, message)
        .with_context("online_store", at)
        .with_source(e)
}

/// `bytes` in the largest binary unit that divides it, or in bytes.
pub(super) fn human_size(bytes: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    UNITS
        .iter()
        .find(|(_, unit)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || format!("{bytes} bytes"),
            |(name, unit)| format!("{} {name}", bytes / unit),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(64 << 30), "64 GiB");
        assert_eq!(human_size(1536 << 20), "1536 MiB");
        assert_eq!(human_size(10 << 10), "10 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[test]
    fn a_full_map_names_the_setting_and_the_path() {
        let e = store_error(
            Path::new("/repo/.skewless/online.lmdb"),
            1 << 20,
            Doing::Write,
            heed::Error::Mdb(MdbError::MapFull),
        );
        let message = e.to_string();
        assert!(
            message.contains("/repo/.skewless/online.lmdb is full"),
            "{message}"
        );
        assert!(
            message.contains("1 MiB") && message.contains("map_size"),
            "{message}"
        );
    }
}
