//! Local table files that are on the disk before a commit names them.
//!
//! iceberg-rust's local file system storage syncs a file written as a stream (a data file)
//! when it is closed, but writes a whole file at once (`Storage::write`: every metadata file,
//! manifest and manifest list) with no sync. A commit then makes the catalog's pointer to the
//! new metadata file durable (SQLite syncs its journal), so a power loss soon after a commit
//! could leave the catalog naming a metadata file, or a manifest, that never reached the
//! disk: an empty file, and a table that no longer loads. [`DurableLocalStorage`] is that
//! storage with one difference: a whole-file write goes through the streaming writer, whose
//! close syncs the file, so it returns only once the file is on the disk. (A new file's folder
//! entry reaches the disk with it on journaling file systems such as ext4 and XFS, whose sync
//! of a file commits the journal that holds the entry.)
//!
//! Everything else (reads, listings, deletes) is iceberg's local storage unchanged.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use iceberg::io::{
    FileMetadata, FileRead, FileWrite, InputFile, LocalFsStorage, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use serde::{Deserialize, Serialize};

/// Iceberg's local file system storage, with whole-file writes synced. See the
/// [module docs](self).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct DurableLocalStorage {
    files: LocalFsStorage,
}

#[async_trait]
#[typetag::serde]
impl Storage for DurableLocalStorage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        self.files.exists(path).await
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        self.files.metadata(path).await
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        self.files.read(path).await
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        self.files.reader(path).await
    }

    /// Writes `bs` as the whole file at `path` (creating its folders), synced before it
    /// returns.
    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        let mut file = self.files.writer(path).await?;
        file.write(bs).await?;
        // The local writer's close syncs the file.
        file.close().await
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        self.files.writer(path).await
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        self.files.delete(path).await
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        self.files.delete_prefix(path).await
    }

    async fn delete_stream(&self, paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        self.files.delete_stream(paths).await
    }

    // The files handed out write through this storage, not the inner one.
    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_owned()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_owned()))
    }
}

/// Builds [`DurableLocalStorage`]: the storage of every catalog whose tables are local files.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct DurableLocalStorageFactory;

#[typetag::serde]
impl StorageFactory for DurableLocalStorageFactory {
    fn build(&self, _config: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        Ok(Arc::new(DurableLocalStorage::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(storage: &DurableLocalStorage, path: &std::path::Path) -> OutputFile {
        storage
            .new_output(&format!("file://{}", path.display()))
            .unwrap()
    }

    #[tokio::test]
    async fn whole_files_are_written_in_new_folders_replaced_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = DurableLocalStorage::default();
        let path = dir.path().join("metadata/new/00001.metadata.json");

        output(&storage, &path)
            .write(Bytes::from_static(b"{\"first\": 1}"))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"first\": 1}");
        // A shorter second write leaves nothing of the first.
        output(&storage, &path)
            .write(Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let input = storage.new_input(path.to_str().unwrap()).unwrap();
        assert_eq!(&input.read().await.unwrap()[..], b"{}");
        assert_eq!(input.metadata().await.unwrap().size, 2);
        assert!(input.exists().await.unwrap());

        storage.delete(path.to_str().unwrap()).await.unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_write_into_a_folder_that_cannot_be_made_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let storage = DurableLocalStorage::default();
        let error = output(&storage, &file.join("under-a-file.json"))
            .write(Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("plain-file"), "{error}");
    }
}
