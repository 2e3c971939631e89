//! The aggregation functions, the column types each takes, and the type each returns.
//!
//! This is the one table `plan` checks declarations against and the state machine obeys; a
//! function/type pair it refuses never reaches the data.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};
use crate::signature::DataType;

/// The largest `k` of `last_n`: a state holds k values per tile, so k bounds its size.
pub const MAX_LAST_N: u32 = 1000;

/// An aggregation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// The number of non-null values (of rows, without a column).
    Count,
    /// The exact sum, rounded once.
    Sum,
    /// The exact mean, rounded once.
    Mean,
    /// The least value under the total order.
    Min,
    /// The greatest value under the total order.
    Max,
    /// The value of the latest row by `(event_ts, created_ts, value bytes)`.
    Last,
    /// The values of the latest `k` rows, latest first.
    LastN(u32),
    /// The exact number of distinct values.
    CountDistinct,
    /// The HyperLogLog estimate of the number of distinct values.
    ApproxCountDistinct,
    /// The population variance, from exact sums, rounded once.
    Variance,
    /// The population standard deviation: the square root of the exact variance, rounded once.
    Stddev,
}

/// The names `function = "..."` accepts.
pub const FUNCTION_NAMES: &str = "count, sum, mean, min, max, last, last_n, count_distinct, \
                                  approx_count_distinct, variance, stddev";

/// What an aggregation returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputType {
    /// One value of this type.
    Scalar(DataType),
    /// A list of values of this type (`last_n`).
    List(DataType),
}

impl fmt::Display for OutputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputType::Scalar(t) => write!(f, "{t}"),
            OutputType::List(t) => write!(f, "list<{t}>"),
        }
    }
}

impl Function {
    /// Parses a function name; `k` is the `k` of `last_n` (and must be absent otherwise).
    pub fn parse(name: &str, k: Option<u32>) -> Result<Self> {
        let invalid = |message: String| Error::new(ErrorKind::InvalidInput, message);
        let function = match name {
            "count" => Function::Count,
            "sum" => Function::Sum,
            "mean" => Function::Mean,
            "min" => Function::Min,
            "max" => Function::Max,
            "last" => Function::Last,
            "last_n" => match k {
                Some(k) if (1..=MAX_LAST_N).contains(&k) => Function::LastN(k),
                Some(k) => {
                    return Err(invalid(format!(
                        "`k = {k}` is out of range for last_n; expected 1 to {MAX_LAST_N}"
                    )));
                }
                None => {
                    return Err(invalid(
                        "function `last_n` needs `k`, the number of values to keep (e.g. `k = 5`)"
                            .into(),
                    ));
                }
            },
            "count_distinct" => Function::CountDistinct,
            "approx_count_distinct" => Function::ApproxCountDistinct,
            "variance" => Function::Variance,
            "stddev" => Function::Stddev,
            other => {
                return Err(invalid(format!(
                    "unknown function `{other}`; expected one of {FUNCTION_NAMES}"
                )));
            }
        };
        if k.is_some() && !matches!(function, Function::LastN(_)) {
            return Err(invalid(format!(
                "`k` applies to last_n only, not to `{name}`"
            )));
        }
        Ok(function)
    }

    /// The function's name as declared.
    pub fn name(self) -> &'static str {
        match self {
            Function::Count => "count",
            Function::Sum => "sum",
            Function::Mean => "mean",
            Function::Min => "min",
            Function::Max => "max",
            Function::Last => "last",
            Function::LastN(_) => "last_n",
            Function::CountDistinct => "count_distinct",
            Function::ApproxCountDistinct => "approx_count_distinct",
            Function::Variance => "variance",
            Function::Stddev => "stddev",
        }
    }

    /// Whether the function can do without a column (it counts rows).
    pub fn column_optional(self) -> bool {
        self == Function::Count
    }

    /// The type the function returns over a column of type `input`, or what it takes instead.
    pub fn output_type(self, input: DataType) -> std::result::Result<OutputType, String> {
        use DataType as T;
        let numeric = matches!(input, T::Int32 | T::Int64 | T::Float32 | T::Float64);
        let float = matches!(input, T::Float32 | T::Float64);
        match self {
            Function::Count | Function::CountDistinct | Function::ApproxCountDistinct => {
                Ok(OutputType::Scalar(T::Int64))
            }
            Function::Sum if float => Ok(OutputType::Scalar(T::Float64)),
            Function::Sum if numeric => Ok(OutputType::Scalar(T::Int64)),
            Function::Mean | Function::Variance | Function::Stddev if numeric => {
                Ok(OutputType::Scalar(T::Float64))
            }
            Function::Sum | Function::Mean | Function::Variance | Function::Stddev => {
                Err("int32, int64, float32 or float64".into())
            }
            Function::Min | Function::Max if !matches!(input, T::Float32Vector(_)) => {
                Ok(OutputType::Scalar(input))
            }
            Function::Min | Function::Max => {
                Err("boolean, int32, int64, float32, float64, utf8, binary or timestamp".into())
            }
            Function::Last => Ok(OutputType::Scalar(input)),
            Function::LastN(_) => Ok(OutputType::List(input)),
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Function::LastN(k) => write!(f, "last_n(k = {k})"),
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_types_check() {
        assert_eq!(Function::parse("sum", None).unwrap(), Function::Sum);
        assert_eq!(
            Function::parse("last_n", Some(5)).unwrap(),
            Function::LastN(5)
        );
        assert!(
            Function::parse("last_n", None)
                .unwrap_err()
                .message()
                .contains("needs `k`")
        );
        assert!(Function::parse("last_n", Some(0)).is_err());
        assert!(Function::parse("sum", Some(3)).is_err());
        let e = Function::parse("median", None).unwrap_err();
        assert!(e.message().contains("unknown function `median`"), "{e}");
        assert_eq!(
            Function::Sum.output_type(DataType::Int32),
            Ok(OutputType::Scalar(DataType::Int64))
        );
        assert_eq!(
            Function::Sum.output_type(DataType::Float32),
            Ok(OutputType::Scalar(DataType::Float64))
        );
        assert!(Function::Sum.output_type(DataType::Utf8).is_err());
        assert!(
            Function::Max
                .output_type(DataType::Float32Vector(4))
                .is_err()
        );
        assert_eq!(
            Function::LastN(3).output_type(DataType::Utf8),
            Ok(OutputType::List(DataType::Utf8))
        );
    }
}
