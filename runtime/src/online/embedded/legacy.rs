//! Online stores written by earlier versions of skewless, which kept the embedded store in a
//! redb file (by default `.skewless/online.redb`) that one process at a time could open.
//!
//! They are not migrated: the online store is a cache of the offline store, which holds every
//! materialized row, so `skewless materialize` refills a new store exactly, with no second
//! storage engine kept in the binary just to read the old one. What this module does is make
//! the switch loud: opening a path that holds a redb file, or creating a new store beside the
//! old default file, fails with an error that says what to delete and what to run, instead of
//! reading the old file as garbage or serving an empty store as if nothing had been written.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// The first bytes of every redb file.
const REDB_MAGIC: &[u8] = b"redb";
/// The embedded store's file name before LMDB.
const OLD_DEFAULT_NAME: &str = "online.redb";

/// Fails if opening `path` would meet an embedded store of an earlier version: `path` itself is
/// a redb file, or `path` does not exist yet and the old default file lies beside it.
pub(super) fn refuse_earlier_store(path: &Path) -> Result<()> {
    if path.exists() {
        if is_redb_file(path) {
            return Err(earlier_store(path, path));
        }
        return Ok(());
    }
    let beside = path.with_file_name(OLD_DEFAULT_NAME);
    if beside != path && is_redb_file(&beside) {
        return Err(earlier_store(&beside, path));
    }
    Ok(())
}

fn is_redb_file(path: &Path) -> bool {
    let mut magic = [0; REDB_MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == REDB_MAGIC)
}

fn earlier_store(old: &Path, new: &Path) -> Error {
    let (old, new): (PathBuf, PathBuf) = (old.into(), new.into());
    let instead = if old == new {
        "point `[online] path` at a new file, or delete it".to_owned()
    } else {
        format!("delete it; the new store will be {}", new.display())
    };
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "{} is an embedded online store of an earlier skewless version (a redb file, which \
             one process at a time could open); the embedded store is now an LMDB file that a \
             server and jobs share. The online store is a cache of the offline store: {instead}, \
             then run `skewless materialize --all` to fill it again",
            old.display()
        ),
    )
    .with_context("online_store", new.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_store_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("online.redb");
        let new = dir.path().join("online.lmdb");
        refuse_earlier_store(&new).unwrap();

        std::fs::write(&old, b"redb\x1a\x0a\xa9\x0d\x0a and pages").unwrap();
        let e = refuse_earlier_store(&new).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let message = e.to_string();
        assert!(message.contains(&old.display().to_string()), "{message}");
        assert!(message.contains("delete it"), "{message}");
        assert!(message.contains("skewless materialize --all"), "{message}");

        // Configured to the old file itself.
        let e = refuse_earlier_store(&old).unwrap_err();
        assert!(
            e.to_string()
                .contains("point `[online] path` at a new file"),
            "{e}"
        );

        // Once the new store exists, the old file beside it no longer matters.
        std::fs::write(&new, b"").unwrap();
        refuse_earlier_store(&new).unwrap();
    }

    #[test]
    fn other_files_are_not_mistaken_for_old_stores() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("online.redb"), b"re").unwrap();
        refuse_earlier_store(&dir.path().join("online.lmdb")).unwrap();
    }
}
