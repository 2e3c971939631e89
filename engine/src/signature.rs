//! A transform's signature, owned by the host: what it is, what it reads, what it writes.
//!
//! The component reports its signature through `describe()` (see `wit/transform.wit`); the
//! host keeps a validated copy of it, maps its types to Arrow, and checks every batch in and
//! out against it.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType as ArrowType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::bindings;
use crate::error::{Error, ErrorKind, Result};

/// The Arrow time zone written on every timestamp the host produces. Iceberg's Arrow
/// integration accepts `"+00:00"` and rejects the equivalent `"UTC"` label.
pub const UTC: &str = "+00:00";

/// The logical type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Arrow `Boolean`.
    Boolean,
    /// Arrow `Int32`.
    Int32,
    /// Arrow `Int64`.
    Int64,
    /// Arrow `Float32`.
    Float32,
    /// Arrow `Float64`.
    Float64,
    /// Arrow `Utf8`.
    Utf8,
    /// Arrow `Binary`.
    Binary,
    /// Arrow `Timestamp(Microsecond, "+00:00")`: microseconds since the Unix epoch, UTC.
    Timestamp,
    /// Arrow `FixedSizeList<Float32>` of the given dimension (an embedding).
    Float32Vector(u32),
}

impl DataType {
    /// The Arrow type that carries this type.
    pub fn to_arrow(self) -> ArrowType {
        match self {
            DataType::Boolean => ArrowType::Boolean,
            DataType::Int32 => ArrowType::Int32,
            DataType::Int64 => ArrowType::Int64,
            DataType::Float32 => ArrowType::Float32,
            DataType::Float64 => ArrowType::Float64,
            DataType::Utf8 => ArrowType::Utf8,
            DataType::Binary => ArrowType::Binary,
            DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            DataType::Float32Vector(dimension) => ArrowType::FixedSizeList(
                Arc::new(ArrowField::new("item", ArrowType::Float32, false)),
                dimension as i32,
            ),
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Boolean => f.write_str("boolean"),
            DataType::Int32 => f.write_str("int32"),
            DataType::Int64 => f.write_str("int64"),
            DataType::Float32 => f.write_str("float32"),
            DataType::Float64 => f.write_str("float64"),
            DataType::Utf8 => f.write_str("utf8"),
            DataType::Binary => f.write_str("binary"),
            DataType::Timestamp => f.write_str("timestamp"),
            DataType::Float32Vector(d) => write!(f, "float32_vector({d})"),
        }
    }
}

impl Serialize for DataType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::str::FromStr for DataType {
    type Err = Error;

    /// Parses the names [`DataType`]'s `Display` writes (`int64`, `float32_vector(4)`, ...).
    fn from_str(text: &str) -> Result<Self> {
        Ok(match text {
            "boolean" => DataType::Boolean,
            "int32" => DataType::Int32,
            "int64" => DataType::Int64,
            "float32" => DataType::Float32,
            "float64" => DataType::Float64,
            "utf8" => DataType::Utf8,
            "binary" => DataType::Binary,
            "timestamp" => DataType::Timestamp,
            other => other
                .strip_prefix("float32_vector(")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|d| d.parse().ok())
                .map(DataType::Float32Vector)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "unknown data type `{other}`; expected boolean, int32, int64, float32, \
                             float64, utf8, binary, timestamp or float32_vector(<dimension>)"
                        ),
                    )
                })?,
        })
    }
}

impl<'de> Deserialize<'de> for DataType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<bindings::DataType> for DataType {
    fn from(t: bindings::DataType) -> Self {
        use bindings::DataType as W;
        match t {
            W::Boolean => DataType::Boolean,
            W::Int32 => DataType::Int32,
            W::Int64 => DataType::Int64,
            W::Float32 => DataType::Float32,
            W::Float64 => DataType::Float64,
            W::Utf8 => DataType::Utf8,
            W::Binary => DataType::Binary,
            W::Timestamp => DataType::Timestamp,
            W::Float32Vector(d) => DataType::Float32Vector(d),
        }
    }
}

/// One input or output column of a transform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Column name.
    pub name: String,
    /// Logical type.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

impl Field {
    /// A field.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Field {
            name: name.into(),
            data_type,
            nullable,
        }
    }

    /// The Arrow field for this column.
    pub fn to_arrow(&self) -> ArrowField {
        ArrowField::new(&self.name, self.data_type.to_arrow(), self.nullable)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let null = if self.nullable { "" } else { " not null" };
        write!(f, "{}: {}{null}", self.name, self.data_type)
    }
}

/// What a transform is and what it reads and writes, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Transform name.
    pub name: String,
    /// Version of the transform's logic.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// Input columns.
    pub inputs: Vec<Field>,
    /// Output columns.
    pub outputs: Vec<Field>,
}

impl Signature {
    /// Converts and validates what a component's `describe()` returned: a non-empty name,
    /// at least one output, unique column names on each side, vectors of dimension > 0.
    pub(crate) fn from_wit(signature: bindings::Signature) -> Result<Self> {
        let convert = |fields: Vec<bindings::Field>| {
            fields
                .into_iter()
                .map(|f| Field {
                    name: f.name,
                    data_type: f.data_type.into(),
                    nullable: f.nullable,
                })
                .collect::<Vec<_>>()
        };
        let signature = Signature {
            name: signature.name,
            version: signature.version,
            description: signature.description,
            inputs: convert(signature.inputs),
            outputs: convert(signature.outputs),
        };
        signature.validate()?;
        Ok(signature)
    }

    fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::new(ErrorKind::InvalidComponent, message));
        if self.name.trim().is_empty() {
            return invalid("describe() returned an empty transform name".into());
        }
        if self.outputs.is_empty() {
            return invalid(format!(
                "transform `{}` declares no output fields; a transform must produce at least one column",
                self.name
            ));
        }
        for (side, fields) in [("input", &self.inputs), ("output", &self.outputs)] {
            let mut seen = HashSet::new();
            for field in fields {
                if field.name.is_empty() {
                    return invalid(format!(
                        "transform `{}` declares an {side} field with an empty name",
                        self.name
                    ));
                }
                if !seen.insert(field.name.as_str()) {
                    return invalid(format!(
                        "transform `{}` declares the {side} field `{}` twice",
                        self.name, field.name
                    ));
                }
                if field.data_type == DataType::Float32Vector(0)
                    || matches!(field.data_type, DataType::Float32Vector(d) if d > i32::MAX as u32)
                {
                    return invalid(format!(
                        "transform `{}` declares the {side} field `{}` as {}; a vector needs a dimension from 1 to {}",
                        self.name,
                        field.name,
                        field.data_type,
                        i32::MAX
                    ));
                }
            }
        }
        Ok(())
    }

    /// `name@version`, the way logs and errors name a transform.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The input field called `name`, if declared.
    pub fn input(&self, name: &str) -> Option<&Field> {
        self.inputs.iter().find(|f| f.name == name)
    }

    /// The output field called `name`, if declared.
    pub fn output(&self, name: &str) -> Option<&Field> {
        self.outputs.iter().find(|f| f.name == name)
    }

    /// The Arrow schema of the declared inputs, in declaration order.
    pub fn input_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.inputs.iter().map(Field::to_arrow).collect::<Vec<_>>(),
        ))
    }

    /// The Arrow schema of the declared outputs, in declaration order.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.outputs.iter().map(Field::to_arrow).collect::<Vec<_>>(),
        ))
    }
}
