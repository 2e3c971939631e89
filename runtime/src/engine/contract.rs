//! The contract versions a component may implement, behind one way of calling them.
//!
//! A component is built against one version of `skewless:transform` and names it in its
//! types (`skewless:transform/types@<version>`). The host runs 0.1.0 (typed lists) and 0.2.0
//! (every buffer as bytes, `wit/0.2.0/`); [`ContractPre::new`] reads which one a component
//! names, and the rest of the engine calls `describe` and `transform` in the 0.1.0 types:
//! a 0.2.0 call encodes its input and decodes its output ([`crate::batch::bytes`]).

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::sandbox::HostState;
use crate::batch;
use crate::bindings::{self, Batch, TransformError, v0_2};
use crate::error::Result;

/// The contract versions this host runs, oldest first.
pub(crate) const VERSIONS: [&str; 2] = ["0.1.0", "0.2.0"];

/// The interface whose name tells a component's contract version.
const TYPES_INTERFACE: &str = "skewless:transform/types@";

/// The version a component names, if it names one (a component of another world names none).
pub(super) fn named_version(engine: &wasmtime::Engine, component: &Component) -> Option<String> {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name);
    let exports = ty.exports(engine).map(|(name, _)| name);
    imports
        .chain(exports)
        .find_map(|name| name.strip_prefix(TYPES_INTERFACE).map(str::to_owned))
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
    /// The contract version, as `skewless:transform@<version>` names it.
    pub(super) fn version(&self) -> &'static str {
        match self {
            ContractPre::V0_1(_) => VERSIONS[0],
            ContractPre::V0_2(_) => VERSIONS[1],
        }
    }

    /// Types the component's exports as `version` (one of [`VERSIONS`]).
    pub(super) fn new(version: &str, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(if version == VERSIONS[1] {
            ContractPre::V0_2(v0_2::FeatureTransformPre::new(pre)?)
        } else {
            ContractPre::V0_1(bindings::FeatureTransformPre::new(pre)?)
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
