//! Loading a component: digest, format check, compile or cache, world validation, describe.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::contract::{ContractPre, Version};
use super::transform::Transform;
use super::{EngineInner, compile_error};
use crate::error::{Error, ErrorKind, Result};

/// The world every transform implements, as users see it in errors.
pub(crate) const WORLD: &str = "skewless:transform/feature-transform (0.1.0 or 0.2.0)";

/// The functions the world exports.
const REQUIRED_EXPORTS: [&str; 2] = ["describe", "transform"];

/// `sha256:<hex>` of a component's bytes: the identity of a transform everywhere.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub(super) fn load(engine: Arc<EngineInner>, bytes: &[u8]) -> Result<Transform> {
    let digest = digest(bytes);
    let (pre, from_cache) =
        prepare(&engine, &digest, bytes).map_err(|e| e.with_context("digest", &digest))?;
    Transform::new(engine, digest, pre, from_cache)
}

/// Compiles (or maps from the cache) and links; returns the pre-linked component and whether
/// it came from the cache.
fn prepare(engine: &EngineInner, digest: &str, bytes: &[u8]) -> Result<(ContractPre, bool)> {
    check_header(bytes)?;
    let started = std::time::Instant::now();
    let (component, cached) = match &engine.cache {
        Some(cache) => {
            let hex = digest.trim_start_matches("sha256:");
            cache.load_or_compile(&engine.engine, hex, bytes)?
        }
        None => (
            Component::new(&engine.engine, bytes).map_err(compile_error)?,
            false,
        ),
    };
    tracing::debug!(
        digest,
        cached,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "component ready"
    );
    check_exports(engine, &component)?;
    // A component that names no version is typed as 0.1.0, whose error then says what is wrong.
    let version = Version::named_by(&engine.engine, &component)
        .map_err(|named| {
            invalid(format!(
                "the component was built against skewless:transform@{named}; this host runs \
                 versions {}. Rebuild it with this release's `skewless build` (or \
                 skewless-guest {})",
                Version::supported(),
                env!("CARGO_PKG_VERSION")
            ))
        })?
        .unwrap_or(Version::V0_1);
    let instance_pre = engine.linker.instantiate_pre(&component).map_err(|e| {
        invalid(format!(
            "the component imports something the sandbox does not provide: {e}. \
             Transforms may import only WASI 0.2 CLI, I/O, clock, random, filesystem and \
             socket interfaces (all stubbed deterministically, with no real capabilities)"
        ))
        .with_source(e)
    })?;
    let pre = ContractPre::new(version, instance_pre).map_err(|e| {
        invalid(format!(
            "the component's exports do not have the types of \
             skewless:transform/feature-transform@{}: {e:#}. \
             Rebuild it against `{}` (skewless-guest {})",
            version.as_str(),
            version.wit_file(),
            env!("CARGO_PKG_VERSION")
        ))
        .with_source(e)
    })?;
    Ok((pre, cached))
}

/// Rejects files that are not components with a message that says what they are instead.
fn check_header(bytes: &[u8]) -> Result<()> {
    const MAGIC: &[u8; 4] = b"\0asm";
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    const CORE_MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    match bytes.get(..8) {
        Some(h) if h[..4] == *MAGIC && h[4..] == COMPONENT => Ok(()),
        Some(h) if h[..4] == *MAGIC && h[4..] == CORE_MODULE => Err(invalid(
            "this is a core WebAssembly module, not a component; build the transform for \
             `wasm32-wasip2` (which produces a component) or componentize the module",
        )),
        _ => Err(invalid(format!(
            "not a WebAssembly component (the file does not start with the component header); \
             expected a `.wasm` component implementing {WORLD}"
        ))),
    }
}

/// Names the missing export and lists what the component does export, which tells the
/// author at once whether they built the wrong crate or against the wrong world.
fn check_exports(engine: &EngineInner, component: &Component) -> Result<()> {
    let ty = component.component_type();
    let exports: Vec<(&str, bool)> = ty
        .exports(&engine.engine)
        .map(|(name, item)| (name, matches!(item.ty, ComponentItem::ComponentFunc(_))))
        .collect();
    for required in REQUIRED_EXPORTS {
        if !exports
            .iter()
            .any(|(name, is_func)| *name == required && *is_func)
        {
            let found: Vec<&str> = exports.iter().map(|(name, _)| *name).collect();
            return Err(invalid(format!(
                "the component does not export the function `{required}`, so it does not \
                 implement {WORLD} (it exports [{}]); build it with skewless-guest's \
                 `#[transform]` or `export_transform!`, or against the WIT in `wit/`",
                found.join(", ")
            )));
        }
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidComponent, message)
}
