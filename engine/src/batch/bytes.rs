//! The 0.2.0 contract's byte buffers <-> the host's typed batches (the 0.1.0 types).
//!
//! A 0.2.0 component receives and returns every buffer of a column as little-endian bytes
//! (`wit/0.2.0/transform.wit`), which an interpreter's bindings lift as one byte string
//! instead of one object per value. The host builds and checks batches in the 0.1.0 types
//! ([`to_wit`](super::to_wit), [`from_wit`](super::from_wit)); [`encode`] turns an input batch
//! into 0.2.0 buffers just before the call and [`decode`] turns the output back just after, so
//! both versions go through the same checks. A buffer whose length is not a whole number of
//! values is a schema mismatch naming the column, never a panic: the bytes come from the guest.

use super::column_error;
use crate::bindings::v0_2;
use crate::bindings::{Batch, Column, ColumnValues, VarLen};
use crate::error::Result;

/// A fixed-width value as the 0.2.0 contract lays it out: little-endian, `WIDTH` bytes.
trait LittleEndian: Sized + Copy {
    const WIDTH: usize;
    /// Reads one value from exactly `WIDTH` bytes.
    fn read(bytes: &[u8]) -> Self;
    fn write(self, out: &mut Vec<u8>);
}

macro_rules! little_endian {
    ($($t:ty),*) => {$(
        impl LittleEndian for $t {
            const WIDTH: usize = size_of::<$t>();
            fn read(bytes: &[u8]) -> Self {
                let mut buf = [0u8; size_of::<$t>()];
                buf.copy_from_slice(bytes);
                <$t>::from_le_bytes(buf)
            }
            fn write(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
little_endian!(i32, i64, f32, f64);

fn to_bytes<T: LittleEndian>(values: Vec<T>) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::WIDTH);
    for v in values {
        v.write(&mut out);
    }
    out
}

fn from_bytes<T: LittleEndian>(column: &str, what: &str, bytes: &[u8]) -> Result<Vec<T>> {
    if !bytes.len().is_multiple_of(T::WIDTH) {
        return Err(column_error(
            column,
            format!(
                "output column `{column}` holds {} bytes of {what}, not a whole number of \
                 {}-byte values (the 0.2.0 contract carries each value as that many \
                 little-endian bytes)",
                bytes.len(),
                T::WIDTH
            ),
        ));
    }
    Ok(bytes.chunks_exact(T::WIDTH).map(T::read).collect())
}

/// An input batch in the 0.2.0 layout.
pub(crate) fn encode(batch: Batch) -> v0_2::Batch {
    v0_2::Batch {
        num_rows: batch.num_rows,
        columns: batch
            .columns
            .into_iter()
            .map(|c| v0_2::Column {
                name: c.name,
                values: encode_values(c.values),
                validity: c.validity,
            })
            .collect(),
    }
}

fn encode_values(values: ColumnValues) -> v0_2::ColumnValues {
    use v0_2::ColumnValues as B;
    let var_len = |v: VarLen| v0_2::VarLen {
        offsets: to_bytes(v.offsets),
        data: v.data,
    };
    match values {
        ColumnValues::Boolean(bits) => B::Boolean(bits),
        ColumnValues::Int32(v) => B::Int32(to_bytes(v)),
        ColumnValues::Int64(v) => B::Int64(to_bytes(v)),
        ColumnValues::Float32(v) => B::Float32(to_bytes(v)),
        ColumnValues::Float64(v) => B::Float64(to_bytes(v)),
        ColumnValues::Utf8(v) => B::Utf8(var_len(v)),
        ColumnValues::Binary(v) => B::Binary(var_len(v)),
        ColumnValues::Timestamp(v) => B::Timestamp(to_bytes(v)),
        ColumnValues::Float32Vector(v) => B::Float32Vector(to_bytes(v)),
    }
}

/// A 0.2.0 output batch in the host's types, for [`from_wit`](super::from_wit) to check.
pub(crate) fn decode(batch: v0_2::Batch) -> Result<Batch> {
    let columns = batch
        .columns
        .into_iter()
        .map(|c| {
            Ok(Column {
                values: decode_values(&c.name, c.values)?,
                name: c.name,
                validity: c.validity,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Batch {
        num_rows: batch.num_rows,
        columns,
    })
}

fn decode_values(name: &str, values: v0_2::ColumnValues) -> Result<ColumnValues> {
    use v0_2::ColumnValues as B;
    let var_len = |v: v0_2::VarLen| -> Result<VarLen> {
        Ok(VarLen {
            offsets: from_bytes(name, "offsets (s32)", &v.offsets)?,
            data: v.data,
        })
    };
    Ok(match values {
        B::Boolean(bits) => ColumnValues::Boolean(bits),
        B::Int32(b) => ColumnValues::Int32(from_bytes(name, "int32", &b)?),
        B::Int64(b) => ColumnValues::Int64(from_bytes(name, "int64", &b)?),
        B::Float32(b) => ColumnValues::Float32(from_bytes(name, "float32", &b)?),
        B::Float64(b) => ColumnValues::Float64(from_bytes(name, "float64", &b)?),
        B::Utf8(v) => ColumnValues::Utf8(var_len(v)?),
        B::Binary(v) => ColumnValues::Binary(var_len(v)?),
        B::Timestamp(b) => ColumnValues::Timestamp(from_bytes(name, "timestamp", &b)?),
        B::Float32Vector(b) => ColumnValues::Float32Vector(from_bytes(name, "float32-vector", &b)?),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::error::ErrorKind;

    fn column(name: &str, values: ColumnValues) -> Column {
        Column {
            name: name.into(),
            values,
            validity: Some(vec![0b101]),
        }
    }

    #[test]
    fn values_are_little_endian_bytes_in_row_order() {
        let batch = Batch {
            num_rows: 2,
            columns: vec![
                column("i", ColumnValues::Int32(vec![1, -2])),
                column(
                    "s",
                    ColumnValues::Utf8(VarLen {
                        offsets: vec![0, 1, 3],
                        data: b"abc".to_vec(),
                    }),
                ),
            ],
        };
        let encoded = encode(batch);
        let v0_2::ColumnValues::Int32(ints) = &encoded.columns[0].values else {
            panic!("int32 stays int32");
        };
        assert_eq!(ints, &[1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]);
        let v0_2::ColumnValues::Utf8(s) = &encoded.columns[1].values else {
            panic!("utf8 stays utf8");
        };
        assert_eq!(s.offsets, [0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(encoded.columns[0].validity, Some(vec![0b101]));
    }

    #[test]
    fn a_buffer_that_is_not_whole_values_names_the_column_and_the_width() {
        let bad = v0_2::Batch {
            num_rows: 1,
            columns: vec![v0_2::Column {
                name: "ratio".into(),
                values: v0_2::ColumnValues::Float64(vec![0; 13]),
                validity: None,
            }],
        };
        let err = decode(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
        assert_eq!(err.context_value("column"), Some("ratio"));
        assert!(err.message().contains("13 bytes of float64"), "{err}");
        assert!(err.message().contains("8-byte values"), "{err}");

        let offsets = v0_2::Batch {
            num_rows: 1,
            columns: vec![v0_2::Column {
                name: "name".into(),
                values: v0_2::ColumnValues::Utf8(v0_2::VarLen {
                    offsets: vec![0; 7],
                    data: vec![],
                }),
                validity: None,
            }],
        };
        let err = decode(offsets).unwrap_err();
        assert!(err.message().contains("offsets (s32)"), "{err}");
    }

    fn any_values() -> impl Strategy<Value = ColumnValues> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..9).prop_map(ColumnValues::Boolean),
            proptest::collection::vec(any::<i32>(), 0..9).prop_map(ColumnValues::Int32),
            proptest::collection::vec(any::<i64>(), 0..9).prop_map(ColumnValues::Int64),
            proptest::collection::vec(any::<i64>(), 0..9).prop_map(ColumnValues::Timestamp),
            // Bits, not floats: NaN payloads must survive too.
            proptest::collection::vec(any::<u32>(), 0..9)
                .prop_map(|v| ColumnValues::Float32(v.into_iter().map(f32::from_bits).collect())),
            proptest::collection::vec(any::<u64>(), 0..9)
                .prop_map(|v| ColumnValues::Float64(v.into_iter().map(f64::from_bits).collect())),
            proptest::collection::vec(any::<u32>(), 0..9).prop_map(|v| {
                ColumnValues::Float32Vector(v.into_iter().map(f32::from_bits).collect())
            }),
            (
                proptest::collection::vec(any::<i32>(), 0..9),
                proptest::collection::vec(any::<u8>(), 0..9)
            )
                .prop_map(|(offsets, data)| ColumnValues::Binary(VarLen { offsets, data })),
        ]
    }

    /// The typed values as bits, so that NaNs compare by their payload.
    fn bits(values: &ColumnValues) -> (u8, Vec<u64>, Vec<u8>) {
        let ints = |v: &[i64]| v.iter().map(|&x| x as u64).collect();
        match values {
            ColumnValues::Boolean(b) => (0, vec![], b.clone()),
            ColumnValues::Int32(v) => (1, v.iter().map(|&x| x as u64).collect(), vec![]),
            ColumnValues::Int64(v) => (2, ints(v), vec![]),
            ColumnValues::Float32(v) => (
                3,
                v.iter().map(|x| u64::from(x.to_bits())).collect(),
                vec![],
            ),
            ColumnValues::Float64(v) => (4, v.iter().map(|x| x.to_bits()).collect(), vec![]),
            ColumnValues::Utf8(v) => (
                5,
                v.offsets.iter().map(|&x| x as u64).collect(),
                v.data.clone(),
            ),
            ColumnValues::Binary(v) => (
                6,
                v.offsets.iter().map(|&x| x as u64).collect(),
                v.data.clone(),
            ),
            ColumnValues::Timestamp(v) => (7, ints(v), vec![]),
            ColumnValues::Float32Vector(v) => (
                8,
                v.iter().map(|x| u64::from(x.to_bits())).collect(),
                vec![],
            ),
        }
    }

    proptest! {
        /// Decoding what was encoded gives back every value bit for bit.
        #[test]
        fn decode_inverts_encode(values in proptest::collection::vec(any_values(), 0..4)) {
            let expected: Vec<_> = values.iter().map(bits).collect();
            let batch = Batch {
                num_rows: 3,
                columns: values.into_iter().enumerate()
                    .map(|(i, v)| column(&format!("c{i}"), v)).collect(),
            };
            let back = decode(encode(batch)).unwrap();
            prop_assert_eq!(back.num_rows, 3);
            let actual: Vec<_> = back.columns.iter().map(|c| bits(&c.values)).collect();
            prop_assert_eq!(actual, expected);
        }

        /// Arbitrary bytes from a guest decode or fail with a schema mismatch; never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(len in 0usize..40, width_kind in 0u8..4) {
            let bytes = vec![0xab; len];
            let values = match width_kind {
                0 => v0_2::ColumnValues::Int32(bytes),
                1 => v0_2::ColumnValues::Float64(bytes),
                2 => v0_2::ColumnValues::Timestamp(bytes),
                _ => v0_2::ColumnValues::Binary(v0_2::VarLen { offsets: bytes, data: vec![] }),
            };
            let batch = v0_2::Batch { num_rows: 1, columns: vec![v0_2::Column { name: "x".into(), values, validity: None }] };
            if let Err(e) = decode(batch) {
                prop_assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
            }
        }
    }
}
