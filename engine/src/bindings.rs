//! Host bindings for the `skewless:transform` WIT world, one `bindgen!` call per contract
//! version the host runs.
//!
//! 0.1.0 (`wit/transform.wit`, at this module's root) is the host's working form: batches are
//! built and checked in its types. 0.2.0 (`wit/0.2.0/`, in [`v0_2`]) differs only in carrying
//! every buffer as bytes; [`crate::batch`] translates between the two at the call.
//! Everything else in the runtime uses these generated types through [`crate::batch`] (Arrow
//! conversion) and [`crate::host`] (calls); nothing outside those modules names them.
#![allow(missing_docs, reason = "generated code; the WIT documents every item")]
#![allow(
    unsafe_code,
    reason = "the component-model derives emit `unsafe impl`s"
)]
#![allow(unreachable_pub, reason = "generated code")]
#![allow(missing_debug_implementations, reason = "generated code")]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "feature-transform",
});

// The world's `use` already brings `Batch`, `Signature` and `TransformError` to the root.
pub use skewless::transform::types::{Column, ColumnValues, DataType, Field, VarLen};

/// The 0.2.0 world: every column buffer as `list<u8>`.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0",
        world: "feature-transform",
    });

    pub use skewless::transform::types::{Column, ColumnValues, VarLen};
}
