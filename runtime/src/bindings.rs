//! Host bindings for the `skewless:transform` WIT world: the one `bindgen!` call.
//!
//! Everything else in the runtime uses these generated types through [`crate::batch`] (Arrow
//! conversion) and [`crate::engine`] (calls); nothing outside those modules names them.
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
