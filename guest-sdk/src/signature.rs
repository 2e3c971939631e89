//! What a transform declares: its name, version, inputs and outputs.

use crate::raw;

/// The logical type of a column (WIT `data-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Arrow `Boolean`. Rust: `bool`.
    Boolean,
    /// Arrow `Int32`. Rust: `i32`.
    Int32,
    /// Arrow `Int64`. Rust: `i64`.
    Int64,
    /// Arrow `Float32`. Rust: `f32`.
    Float32,
    /// Arrow `Float64`. Rust: `f64`.
    Float64,
    /// Arrow `Utf8`. Rust: `String` or `&str`.
    Utf8,
    /// Arrow `Binary`. Rust: `Vec<u8>` or `&[u8]`.
    Binary,
    /// Arrow `Timestamp(Microsecond, UTC)`. Rust: [`Timestamp`](crate::Timestamp).
    Timestamp,
    /// Arrow `FixedSizeList<Float32>(dimension)`. Rust: [`Vector<N>`](crate::Vector) or
    /// `[f32; N]`.
    Float32Vector(u32),
}

impl DataType {
    /// The WIT name of the type, e.g. `float64` or `float32-vector(4)`.
    pub fn name(self) -> String {
        match self {
            Self::Float32Vector(dimension) => format!("float32-vector({dimension})"),
            other => other.kind().to_owned(),
        }
    }

    /// The WIT name without the vector dimension.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Float32 => "float32",
            Self::Float64 => "float64",
            Self::Utf8 => "utf8",
            Self::Binary => "binary",
            Self::Timestamp => "timestamp",
            Self::Float32Vector(_) => "float32-vector",
        }
    }

    fn into_raw(self) -> raw::DataType {
        match self {
            Self::Boolean => raw::DataType::Boolean,
            Self::Int32 => raw::DataType::Int32,
            Self::Int64 => raw::DataType::Int64,
            Self::Float32 => raw::DataType::Float32,
            Self::Float64 => raw::DataType::Float64,
            Self::Utf8 => raw::DataType::Utf8,
            Self::Binary => raw::DataType::Binary,
            Self::Timestamp => raw::DataType::Timestamp,
            Self::Float32Vector(dimension) => raw::DataType::Float32Vector(dimension),
        }
    }
}

/// One input or output column of a transform (WIT `field`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// Column name; unique among the inputs and among the outputs.
    pub name: String,
    /// The column's type.
    pub data_type: DataType,
    /// Whether the column may hold nulls. The host rejects nulls in a column declared
    /// non-nullable, on input and on output.
    pub nullable: bool,
}

impl Field {
    /// A field, in the argument order of Arrow's `Field::new`.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Self {
            name: name.into(),
            data_type,
            nullable,
        }
    }

    fn into_raw(self) -> raw::Field {
        raw::Field {
            name: self.name,
            data_type: self.data_type.into_raw(),
            nullable: self.nullable,
        }
    }
}

/// What a transform is and what it reads and writes (WIT `signature`).
///
/// ```
/// use skewless_guest::{DataType, Field, Signature};
///
/// let signature = Signature::new("merchant-category", "1.0.0")
///     .description("Normalizes merchant names and maps them to a category")
///     .input(Field::new("merchant", DataType::Utf8, true))
///     .output(Field::new("merchant_category", DataType::Utf8, true));
/// assert_eq!(signature.inputs.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Signature {
    /// Transform name, e.g. `transaction-features`.
    pub name: String,
    /// Version of the transform's logic, e.g. `1.2.0`.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// The columns the transform reads.
    pub inputs: Vec<Field>,
    /// The columns the transform writes, in order.
    pub outputs: Vec<Field>,
}

impl Signature {
    /// A signature with no description, inputs or outputs yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Sets the one-line description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds an input column.
    #[must_use]
    pub fn input(mut self, field: Field) -> Self {
        self.inputs.push(field);
        self
    }

    /// Adds input columns.
    #[must_use]
    pub fn inputs(mut self, fields: impl IntoIterator<Item = Field>) -> Self {
        self.inputs.extend(fields);
        self
    }

    /// Adds an output column.
    #[must_use]
    pub fn output(mut self, field: Field) -> Self {
        self.outputs.push(field);
        self
    }

    /// Adds output columns.
    #[must_use]
    pub fn outputs(mut self, fields: impl IntoIterator<Item = Field>) -> Self {
        self.outputs.extend(fields);
        self
    }

    pub(crate) fn into_raw(self) -> raw::Signature {
        raw::Signature {
            name: self.name,
            version: self.version,
            description: self.description,
            inputs: self.inputs.into_iter().map(Field::into_raw).collect(),
            outputs: self.outputs.into_iter().map(Field::into_raw).collect(),
        }
    }
}
