//! On-disk cache of compiled components, keyed by engine configuration and component digest.
//!
//! Compiling is the expensive step (a 50 KB Rust component ~160 ms, an 18 MB Python one
//! ~19 s); loading a cached artifact memory-maps it (~0.2-3 ms). Artifacts live at
//! `<dir>/<engine hash>/<component sha256>.cwasm`, where the engine hash covers
//! `Engine::precompile_compatibility_hash` (wasmtime version, target, every setting that
//! changes code), so a new wasmtime or a changed setting never loads a stale artifact.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::{Error, ErrorKind, Result};

/// A directory of compiled artifacts for one engine configuration.
#[derive(Debug)]
pub(crate) struct CompiledCache {
    dir: PathBuf,
}

impl CompiledCache {
    /// Opens (creating it if needed) the cache under `root` for `engine`'s configuration.
    pub(crate) fn open(root: &Path, engine: &Engine) -> Result<Self> {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(format!("{:016x}", hasher.finish()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::from(e).with_context("cache directory", dir.display()))?;
        Ok(CompiledCache { dir })
    }

    fn path_for(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    /// Loads the compiled artifact for `digest`, or compiles `bytes` and stores the result.
    /// Returns the component and whether it came from the cache.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> Result<(Component, bool)> {
        let path = self.path_for(digest);
        if path.exists() {
            // SAFETY: the file was written by `store` below from `Engine::precompile_component`
            // of this engine configuration (the directory is keyed by its hash), and is only
            // ever replaced by an atomic rename, so it is a complete wasmtime artifact and is
            // not modified while mapped. wasmtime still checks its header and configuration.
            #[allow(
                unsafe_code,
                reason = "mapping a precompiled artifact we wrote; see SAFETY"
            )]
            let loaded = unsafe { Component::deserialize_file(engine, &path) };
            match loaded {
                Ok(component) => return Ok((component, true)),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "compiled cache entry unusable; recompiling"
                ),
            }
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(super::compile_error)?;
        self.store(&path, &compiled)?;
        // SAFETY: `compiled` is the output of `precompile_component` on this very engine.
        #[allow(unsafe_code, reason = "deserializing bytes this engine just produced")]
        let component =
            unsafe { Component::deserialize(engine, &compiled) }.map_err(super::compile_error)?;
        Ok((component, false))
    }

    /// Writes an artifact atomically: a temporary file in the same directory, then a rename,
    /// so a concurrent reader sees the old file, the new one, or none — never half of one.
    fn store(&self, path: &Path, compiled: &[u8]) -> Result<()> {
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("artifact"),
            std::process::id()
        ));
        let write = std::fs::write(&tmp, compiled).and_then(|()| std::fs::rename(&tmp, path));
        write.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::new(
                ErrorKind::Io,
                format!("could not write the compiled cache entry: {e}"),
            )
            .with_context("path", path.display())
            .with_source(e)
        })
    }
}
