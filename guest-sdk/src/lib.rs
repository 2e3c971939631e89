//! Write [skewless] feature transforms in Rust.
//!
//! A transform is a WebAssembly component implementing the `skewless:transform` WIT world
//! (`wit/transform.wit`): `describe()` returns its [`Signature`] (name, version, input and
//! output columns) and `transform(batch)` computes the output columns of a columnar [`Batch`].
//! The host runs the same component bytes in batch materialization, training-set retrieval and
//! online serving. This crate hides the generated bindings behind two APIs:
//!
//! - **Per row**: a plain function from one input struct to one output struct, both with
//!   `#[derive(Row)]`, marked [`#[transform]`](transform). The signature is derived from the
//!   structs: a field is a column, `Option<T>` makes it nullable. Rows are read from typed
//!   slices and written into column builders; nothing is allocated per row unless a field is
//!   a `String` or `Vec<u8>`.
//! - **Columnar**: implement [`Transform`] and export it with [`export_transform!`]. Read
//!   columns with the typed accessors of [`Batch`] ([`Batch::float64`] gives a
//!   [`Float64Column`], [`Batch::utf8`] a [`Utf8Column`], ...), build the output with column
//!   builders ([`Float64Builder`], [`Utf8Builder`], [`BooleanBuilder`], ...) and a
//!   [`BatchBuilder`].
//!
//! A crate exports exactly one transform. Build it as a component with
//! `crate-type = ["cdylib"]` and `cargo build --release --target wasm32-wasip2`: rustc links
//! wasm32-wasip2 libraries as components, so the `.wasm` file is ready for the host.
//!
//! # Per-row example
//!
//! ```
//! use skewless_guest::{Row, Timestamp, transform};
//!
//! #[derive(Row)]
//! struct Input {
//!     amount: Option<f64>,
//!     event_ts: Timestamp,
//! }
//!
//! #[derive(Row)]
//! struct Output {
//!     amount_log1p: Option<f64>,
//!     hour_of_day: i32,
//! }
//!
//! /// Log-scaled amount and hour of day.
//! #[transform(name = "payment-features", version = "1.0.0")]
//! fn payment_features(row: Input) -> Output {
//!     Output {
//!         amount_log1p: row.amount.filter(|a| *a >= 0.0).map(f64::ln_1p),
//!         hour_of_day: (row.event_ts.micros_of_day() / 3_600_000_000) as i32,
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The signature is `payment-features` 1.0.0 with inputs `amount: float64` (nullable),
//! `event_ts: timestamp` and outputs `amount_log1p: float64` (nullable), `hour_of_day: int32`;
//! the description is the function's doc comment unless `description = "..."` is given. The
//! function may also return `Result<Output, TransformError>`: an `Err` fails the whole batch
//! (the SDK fills in the row). Prefer a `None` in the row for a value that cannot be computed.
//!
//! Supported field types: `bool`, `i32`, `i64`, `f32`, `f64`, `String` / `&'a str` (utf8),
//! `Vec<u8>` / `&'a [u8]` (binary), [`Timestamp`], [`Vector<N>`] / `[f32; N]`
//! (float32-vector(N)), and `Option<T>` of each. `#[row(name = "...")]` on a field sets a
//! column name that is not a Rust identifier. An input struct may have one lifetime parameter
//! to borrow strings and bytes from the batch instead of copying them.
//!
//! # Columnar example
//!
//! ```
//! use skewless_guest::{
//!     Batch, BatchBuilder, DataType, Field, Signature, Transform, TransformError, Utf8Builder,
//!     export_transform,
//! };
//!
//! struct Upper;
//!
//! impl Transform for Upper {
//!     fn signature() -> Signature {
//!         Signature::new("upper", "1.0.0")
//!             .description("Upper-cases a name")
//!             .input(Field::new("name", DataType::Utf8, true))
//!             .output(Field::new("name_upper", DataType::Utf8, true))
//!     }
//!
//!     fn transform(input: &Batch) -> Result<Batch, TransformError> {
//!         let names = input.utf8("name")?;
//!         let mut upper = Utf8Builder::with_capacity(input.num_rows());
//!         for name in names.iter() {
//!             upper.push(name.map(str::to_uppercase).as_deref());
//!         }
//!         BatchBuilder::new(input.num_rows()).column("name_upper", upper).finish()
//!     }
//! }
//!
//! export_transform!(Upper);
//! # fn main() {}
//! ```
//!
//! # Author mistakes are compile errors
//!
//! The macros check what they can and say what to change, pointing at the offending field,
//! argument or attribute (messages abridged; `...` is the list of supported types or the
//! expected shape, which the real message spells out):
//!
//! | Mistake | Error |
//! |---|---|
//! | a field `count: u64` | ``unsupported type `u64` for row field `count`: a row field is one of bool, i32, i64, f32, f64, String, &str, Vec<u8>, &[u8], Timestamp, Vector<N>, [f32; N], or Option<T> of one of these for a nullable column; use `i64` (or `i32`) for integers`` |
//! | a field `tags: Option<HashMap<String, String>>` | ``unsupported type `HashMap<String, String>` for row field `tags`: ...; a column holds one scalar, string, bytes or vector value per row`` |
//! | a field `embedding: Vec<f32>` | ``unsupported type `Vec<f32>` for row field `embedding`: ...; for an embedding use `Vector<N>` or `[f32; N]` (fixed size N)`` |
//! | `Option<Option<i32>>` | ``unsupported type `Option<Option<i32>>` for row field `a`: ...; `Option` cannot be nested`` |
//! | `#[derive(Row)]` on a tuple struct | ``#[derive(Row)] needs a struct with named fields: each field is a column, named after the field`` |
//! | `#[transform(...)] fn f() -> Out` | ``a transform takes exactly one argument, the input row, and this one takes none: expected `fn f(row: Input) -> Output` (or `-> Result<Output, TransformError>`), where `Input` and `Output` are structs with `#[derive(skewless_guest::Row)]` `` |
//! | `fn f(row: In, scale: f64) -> Out` | ``a transform takes exactly one argument, the input row, and this one takes 2: expected ...; put every input column in the input struct`` |
//! | `fn f(row: In)` | ``a transform returns the output row, and this one returns nothing: expected ...`` |
//! | `fn f(amount: f64) -> Out` | ``` `f64` cannot be the input row of a transform``` (label: ``` `f64` does not derive `Row` ```) |
//! | `fn f(row: In) -> f64` | ``a transform function cannot return `f64` `` (note: ``return a struct with `#[derive(skewless_guest::Row)]`, or `Result<Output, skewless_guest::TransformError>` ``) |
//! | `#[transform(version = "1")]` | ``missing `name = "..."` in #[transform(...)]: #[transform(name = "my-transform", version = "1.0.0", description = "...")]`` (likewise for `version`) |
//! | `#[transform(..., author = "me")]` | ``unknown #[transform] argument; expected `name`, `version` or `description` `` |
//! | `export_transform!(NotATransform)` | ``` `NotATransform` is not a transform``` (note: implement `Transform` or use `#[transform]`) |
//!
//! # Layout
//!
//! Everything maps one to one to the WIT: primitive columns are lists of primitives; utf8 and
//! binary are Arrow offsets plus bytes; booleans and validity are bit-packed, least significant
//! bit first; a validity bitmap is omitted when a column has no null (builders do this
//! themselves). The host may reuse an instance for many calls: a transform must not keep state
//! between calls that changes its output.
//!
//! [skewless]: https://example.invalid/skewless

mod batch;
mod builder;
mod error;
pub mod row;
mod signature;
mod value;

pub use batch::{
    Batch, BinaryColumn, BooleanColumn, Float32Column, Float32VectorColumn, Float64Column,
    Int32Column, Int64Column, PrimitiveColumn, TimestampColumn, Utf8Column, Validity,
};
pub use builder::{
    BatchBuilder, BinaryBuilder, BooleanBuilder, ColumnBuilder, Float32Builder,
    Float32VectorBuilder, Float64Builder, Int32Builder, Int64Builder, NativeType, PrimitiveBuilder,
    TimestampBuilder, Utf8Builder, Utf8ValueWriter,
};
pub use error::TransformError;
pub use row::{ReadRow, Row};
pub use signature::{DataType, Field, Signature};
pub use value::{Timestamp, Vector};

/// Derives [`Row`] and [`ReadRow`] for a struct with named fields: each field is a column of
/// the same name (or `#[row(name = "...")]`), its type gives the column type, and `Option<T>`
/// makes the column nullable. See the [crate documentation](crate#per-row-example).
pub use skewless_guest_macros::Row;

/// Exports a per-row function as the crate's transform.
///
/// `#[transform(name = "...", version = "...", description = "...")]` on
/// `fn f(row: Input) -> Output` or `fn f(row: Input) -> Result<Output, TransformError>`, where
/// `Input` and `Output` derive [`Row`]. `description` defaults to the function's doc comment.
/// See the [crate documentation](crate#per-row-example).
pub use skewless_guest_macros::transform;

// Lets `::skewless_guest::...` paths generated by the derive resolve inside this crate's tests.
#[cfg(test)]
extern crate self as skewless_guest;

/// The bindings generated from `wit/transform.wit`; an implementation detail.
#[doc(hidden)]
#[allow(
    unsafe_code,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications,
    clippy::all,
    clippy::mem_forget,
    reason = "generated by wit-bindgen: FFI glue and types mirroring the WIT"
)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "feature-transform",
        pub_export_macro: true,
        default_bindings_module: "skewless_guest::wit",
    });
}

/// The generated WIT types, for the modules of this crate.
use wit::skewless::transform::types as raw;

/// A columnar transform: its signature and the function computing a batch.
///
/// Export the implementing type with [`export_transform!`]. Per-row transforms get this
/// implemented by [`#[transform]`](transform).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a transform",
    label = "does not implement `skewless_guest::Transform`",
    note = "implement `skewless_guest::Transform` for `{Self}`, or write a per-row function \
            with `#[skewless_guest::transform(...)]` instead of calling `export_transform!`"
)]
pub trait Transform {
    /// What the transform reads and writes. Must return the same value on every call.
    fn signature() -> Signature;

    /// Computes the declared output columns for a batch of input rows.
    ///
    /// The input holds every declared input column, in any order, and possibly others. The
    /// output must hold exactly the declared output columns with `input.num_rows()` rows.
    /// The result for a row must not depend on the other rows of the batch.
    fn transform(input: &Batch) -> Result<Batch, TransformError>;
}

/// Exports a type implementing [`Transform`] as the component's `describe` and `transform`.
///
/// Call it once per crate, at module level:
///
/// ```ignore
/// skewless_guest::export_transform!(MyTransform);
/// ```
///
/// The exported functions exist only when compiling for `wasm32`. On the host (unit tests of
/// a transform's logic, or a native baseline linking several transform crates as `rlib`s) the
/// macro only checks that the type implements [`Transform`], so crates exporting the same
/// function names never clash.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(
            unsafe_code,
            reason = "the component's exported functions are FFI glue generated by wit-bindgen"
        )]
        const _: () = {
            type __SkewlessExport = $crate::__private::Exporter<$ty>;
            $crate::__export_feature_transform_impl!(
                __SkewlessExport with_types_in $crate::wit
            );
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = $crate::__private::assert_transform::<$ty>();
    };
}

/// Implementation details of the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::fmt;
    use std::marker::PhantomData;

    pub use crate::row::{assert_input_row, assert_output, row_signature, run_rows};
    use crate::{Batch, Transform, raw};

    /// Checks at compile time that `T` implements [`Transform`].
    pub const fn assert_transform<T: Transform>() {}

    /// Adapts a [`Transform`] to the generated `Guest` trait.
    pub struct Exporter<T>(PhantomData<T>);

    impl<T> fmt::Debug for Exporter<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Exporter")
        }
    }

    impl<T: Transform> crate::wit::Guest for Exporter<T> {
        fn describe() -> raw::Signature {
            T::signature().into_raw()
        }

        fn transform(input: raw::Batch) -> Result<raw::Batch, raw::TransformError> {
            let input = Batch::from_raw(input);
            match T::transform(&input) {
                Ok(output) => Ok(output.into_raw()),
                Err(error) => Err(error.into_raw()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
