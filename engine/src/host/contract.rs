//! The contract versions a component may implement, behind one way of calling them.
//!
//! A component is built against one version of `skewless:transform` and names it in its
//! types (`skewless:transform/types@<version>`). The host runs 0.1.0 (typed lists) and 0.2.0
//! (every buffer as bytes, `wit/0.2.0/`); [`Version::named_by`] reads which one a component
//! names, and the rest of the engine calls `describe` and `transform` in the 0.1.0 types:
//! a 0.2.0 call encodes its input and decodes its output ([`crate::batch::bytes`]).

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::sandbox::HostState;
use crate::batch;
use crate::bindings::{self, Batch, TransformError, v0_2};
use crate::error::Result;

/// A contract version this host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Version {
    /// `skewless:transform@0.1.0`: typed lists (`wit/transform.wit`).
    V0_1,
    /// `skewless:transform@0.2.0`: every column buffer as bytes (`wit/0.2.0/transform.wit`).
    V0_2,
}

/// Every version this host runs, oldest first.
const ALL: [Version; 2] = [Version::V0_1, Version::V0_2];

/// The interface whose name tells a component's contract version.
const TYPES_INTERFACE: &str = "skewless:transform/types@";

impl Version {
    /// As the package names it, e.g. `0.2.0`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Version::V0_1 => "0.1.0",
            Version::V0_2 => "0.2.0",
        }
    }

    /// The WIT file of this version in the repository.
    pub(super) fn wit_file(self) -> &'static str {
        match self {
            Version::V0_1 => "wit/transform.wit",
            Version::V0_2 => "wit/0.2.0/transform.wit",
        }
    }

    /// The version `component` names: `Ok(None)` when it names none (a component of another
    /// world), `Err` with the name when this host does not run that version.
    pub(super) fn named_by(
        engine: &wasmtime::Engine,
        component: &Component,
    ) -> std::result::Result<Option<Version>, String> {
        let ty = component.component_type();
        let imports = ty.imports(engine).map(|(name, _)| name);
        let exports = ty.exports(engine).map(|(name, _)| name);
        let Some(named) = imports
            .chain(exports)
            .find_map(|name| name.strip_prefix(TYPES_INTERFACE))
        else {
            return Ok(None);
        };
        match ALL.into_iter().find(|v| v.as_str() == named) {
            Some(version) => Ok(Some(version)),
            None => Err(named.to_owned()),
        }
    }

    /// Every version this host runs, for messages: `0.1.0 and 0.2.0`.
    pub(super) fn supported() -> String {
        ALL.map(Version::as_str).join(" and ")
    }
}

/// A pre-linked component of one contract version.
pub(super) enum ContractPre {
    V0_1(bindings::FeatureTransformPre<HostState>),
    V0_2(v0_2::FeatureTransformPre<HostState>),
}

/// An instance's exports, of the version its component implements.
pub(super) enum Contract {
    V0_1(bindings::FeatureTransform),
    V0_2(v0_2::FeatureTransform),
}

/// What `transform` returned, still in the layout of its version.
pub(super) enum Returned {
    V0_1(Batch),
    V0_2(v0_2::Batch),
}

impl ContractPre {
    /// The contract version the component implements.
    pub(super) fn version(&self) -> Version {
        match self {
            ContractPre::V0_1(_) => Version::V0_1,
            ContractPre::V0_2(_) => Version::V0_2,
        }
    }

    /// Types the component's exports as `version`'s.
    pub(super) fn new(version: Version, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(match version {
            Version::V0_1 => ContractPre::V0_1(bindings::FeatureTransformPre::new(pre)?),
            Version::V0_2 => ContractPre::V0_2(v0_2::FeatureTransformPre::new(pre)?),
        })
    }

    pub(super) fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Contract> {
        Ok(match self {
            ContractPre::V0_1(pre) => Contract::V0_1(pre.instantiate(store)?),
            ContractPre::V0_2(pre) => Contract::V0_2(pre.instantiate(store)?),
        })
    }
}

impl Contract {
    pub(super) fn call_describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<bindings::Signature> {
        match self {
            Contract::V0_1(world) => world.call_describe(store),
            Contract::V0_2(world) => world.call_describe(store).map(signature),
        }
    }

    /// Calls `transform` with `input` (encoded first for a 0.2.0 component).
    pub(super) fn call_transform(
        &self,
        store: &mut Store<HostState>,
        input: Batch,
    ) -> wasmtime::Result<std::result::Result<Returned, TransformError>> {
        match self {
            Contract::V0_1(world) => Ok(world.call_transform(store, &input)?.map(Returned::V0_1)),
            Contract::V0_2(world) => Ok(world
                .call_transform(store, &batch::bytes::encode(input))?
                .map(Returned::V0_2)
                .map_err(|e| TransformError {
                    message: e.message,
                    column: e.column,
                    row: e.row,
                })),
        }
    }
}

impl Returned {
    /// The output in the host's types, for `batch::from_wit` to check.
    pub(super) fn into_batch(self) -> Result<Batch> {
        match self {
            Returned::V0_1(batch) => Ok(batch),
            Returned::V0_2(batch) => batch::bytes::decode(batch),
        }
    }
}

/// A 0.2.0 signature in the 0.1.0 types: the two versions declare it alike.
fn signature(s: v0_2::Signature) -> bindings::Signature {
    use bindings::DataType as T;
    use v0_2::skewless::transform::types::DataType as U;
    let fields = |fields: Vec<v0_2::skewless::transform::types::Field>| {
        fields
            .into_iter()
            .map(|f| bindings::Field {
                name: f.name,
                nullable: f.nullable,
                data_type: match f.data_type {
                    U::Boolean => T::Boolean,
                    U::Int32 => T::Int32,
                    U::Int64 => T::Int64,
                    U::Float32 => T::Float32,
                    U::Float64 => T::Float64,
                    U::Utf8 => T::Utf8,
                    U::Binary => T::Binary,
                    U::Timestamp => T::Timestamp,
                    U::Float32Vector(d) => T::Float32Vector(d),
                },
            })
            .collect()
    };
    bindings::Signature {
        name: s.name,
        version: s.version,
        description: s.description,
        inputs: fields(s.inputs),
        outputs: fields(s.outputs),
    }
}
