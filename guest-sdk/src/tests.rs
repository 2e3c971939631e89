//! Host-side unit tests of the SDK (no component involved).

use crate::{
    Batch, BatchBuilder, BinaryBuilder, BooleanBuilder, DataType, Field, Float32VectorBuilder,
    Float64Builder, Int32Builder, Row, Timestamp, TimestampBuilder, TransformError, Utf8Builder,
    Vector, raw,
};

fn column(name: &str, values: raw::ColumnValues, validity: Option<Vec<u8>>) -> raw::Column {
    raw::Column {
        name: name.to_owned(),
        values,
        validity,
    }
}

fn batch(num_rows: u32, columns: Vec<raw::Column>) -> Batch {
    Batch::from_raw(raw::Batch { num_rows, columns })
}

#[test]
fn builders_omit_validity_without_nulls_and_pack_bits_lsb_first() {
    let mut b = Float64Builder::with_capacity(3);
    b.push_value(1.0);
    b.push(Some(2.0));
    let batch = BatchBuilder::new(2).column("x", b).finish().unwrap();
    assert!(batch.into_raw().columns[0].validity.is_none());

    // Nulls at rows 9 and 10: bits 0-8 set, then 9 and 10 clear, 11 set.
    let mut b = Int32Builder::new();
    for i in 0..12 {
        b.push((i != 9 && i != 10).then_some(i));
    }
    let mut flags = BooleanBuilder::new();
    for i in 0..12 {
        flags.push_value(i % 3 == 0);
    }
    let out = BatchBuilder::new(12)
        .column("x", b)
        .column("f", flags)
        .finish()
        .unwrap();
    let x = out.int32("x").unwrap();
    assert_eq!(x.validity().bits(), Some(&[0xff, 0b1001][..]));
    assert_eq!(x.null_count(), 2);
    assert_eq!(x.get(9), None);
    assert_eq!(x.get(11), Some(11));
    assert_eq!(x.values()[9], 0);
    let f = out.boolean("f").unwrap();
    assert_eq!(f.bits(), &[0b0100_1001, 0b0000_0010]);
    assert!(f.validity().bits().is_none());
    assert_eq!(
        f.iter().collect::<Vec<_>>(),
        (0..12).map(|i| Some(i % 3 == 0)).collect::<Vec<_>>()
    );
}

#[test]
fn var_len_builders_write_offsets_and_bytes() {
    let mut s = Utf8Builder::new();
    s.push_value("ab");
    s.push(None);
    s.push_value("");
    s.push_with(|w| {
        use std::fmt::Write;
        write!(w, "{}-{}", 1, 2).unwrap();
        w.pop();
        w.push('é');
    });
    let mut b = BinaryBuilder::new();
    for v in [Some(&[1u8, 2][..]), None, Some(&[]), Some(&[3])] {
        b.push(v);
    }
    let out = BatchBuilder::new(4)
        .column("s", s)
        .column("b", b)
        .finish()
        .unwrap();
    let strings = out.utf8("s").unwrap();
    assert_eq!(
        strings.iter().collect::<Vec<_>>(),
        [Some("ab"), None, Some(""), Some("1-é")]
    );
    let bytes = out.binary("b").unwrap();
    assert_eq!(bytes.get(0), Some(&[1u8, 2][..]));
    assert_eq!(bytes.get(1), None);
    assert_eq!(bytes.get(3), Some(&[3u8][..]));
    let raw = out.into_raw();
    let raw::ColumnValues::Utf8(var_len) = &raw.columns[0].values else {
        panic!("not utf8")
    };
    assert_eq!(var_len.offsets, [0, 2, 2, 2, 6]);
}

#[test]
fn accessor_errors_name_the_column() {
    let input = batch(
        1,
        vec![column(
            "amount",
            raw::ColumnValues::Float64(vec![1.0]),
            None,
        )],
    );
    let missing = input.float64("balance").unwrap_err();
    assert_eq!(missing.column.as_deref(), Some("balance"));
    assert_eq!(
        missing.message,
        "the input has no column `balance` (columns: `amount`)"
    );
    let wrong = input.utf8("amount").unwrap_err();
    assert_eq!(wrong.column.as_deref(), Some("amount"));
    assert_eq!(
        wrong.message,
        "input column `amount` holds float64 values, but the transform reads it as utf8"
    );
    let short = batch(
        2,
        vec![column(
            "amount",
            raw::ColumnValues::Float64(vec![1.0]),
            None,
        )],
    );
    assert!(
        short
            .float64("amount")
            .unwrap_err()
            .message
            .contains("holds 1 values, expected 2")
    );
    let vectors = batch(
        2,
        vec![column(
            "v",
            raw::ColumnValues::Float32Vector(vec![0.0; 6]),
            None,
        )],
    );
    assert_eq!(
        vectors.float32_vector("v", 3).unwrap().get(1),
        Some(&[0.0; 3][..])
    );
    assert!(vectors.float32_vector("v", 4).is_err());
}

#[test]
fn utf8_accessor_rejects_bad_offsets_and_bytes() {
    let utf8 = |offsets: Vec<i32>, data: &[u8]| {
        batch(
            2,
            vec![column(
                "s",
                raw::ColumnValues::Utf8(raw::VarLen {
                    offsets,
                    data: data.to_vec(),
                }),
                None,
            )],
        )
    };
    assert!(utf8(vec![0, 1, 2], b"ab").utf8("s").is_ok());
    assert!(utf8(vec![0, 2, 1], b"ab").utf8("s").is_err());
    assert!(utf8(vec![0, 1, 3], b"ab").utf8("s").is_err());
    assert!(utf8(vec![0, 1], b"ab").utf8("s").is_err());
    assert!(utf8(vec![0, 1, 2], &[0xff, 0x41]).utf8("s").is_err());
    assert!(utf8(vec![0, 1, 2], "é".as_bytes()).utf8("s").is_err());
}

#[test]
fn batch_builder_reports_mistakes_instead_of_panicking() {
    let err = BatchBuilder::new(2)
        .column("x", Float64Builder::from_values(vec![1.0]))
        .finish()
        .unwrap_err();
    assert_eq!(err.column.as_deref(), Some("x"));
    assert_eq!(
        err.message,
        "output column `x` has 1 values, but the batch has 2 rows"
    );
    let mut v = Float32VectorBuilder::new(2);
    v.push_value(&[1.0, 2.0]);
    v.push_value(&[1.0]);
    let err = BatchBuilder::new(2).column("v", v).finish().unwrap_err();
    assert!(err.message.contains("row 1: a vector of 1 floats"), "{err}");
    let err = BatchBuilder::new(0)
        .column("a", TimestampBuilder::new())
        .column("a", TimestampBuilder::new())
        .finish()
        .unwrap_err();
    assert!(err.message.contains("added twice"), "{err}");
}

#[derive(Debug, PartialEq, Row)]
struct Everything<'a> {
    c_bool: bool,
    c_i32: Option<i32>,
    c_i64: i64,
    c_f32: f32,
    #[row(name = "c-f64")]
    c_f64: Option<f64>,
    c_utf8: &'a str,
    c_string: Option<String>,
    c_binary: Vec<u8>,
    c_bytes: Option<&'a [u8]>,
    c_ts: Option<Timestamp>,
    c_vec: Vector<3>,
    c_array: Option<[f32; 2]>,
}

fn everything(i: usize) -> Everything<'static> {
    Everything {
        c_bool: i.is_multiple_of(2),
        c_i32: (i != 1).then_some(i as i32),
        c_i64: -(i as i64),
        c_f32: i as f32 / 2.0,
        c_f64: (i != 2).then_some(i as f64 * 1.5),
        c_utf8: ["zero", "one", "two"][i],
        c_string: (i != 0).then(|| format!("s{i}")),
        c_binary: vec![i as u8; i],
        c_bytes: (i != 1).then_some(&b"xyz"[..i]),
        c_ts: (i != 2).then_some(Timestamp::from_micros(i as i64 - 1)),
        c_vec: Vector([i as f32; 3]),
        c_array: (i == 1).then_some([1.0, 2.0]),
    }
}

#[test]
fn derived_rows_declare_their_fields() {
    let fields = Everything::fields();
    assert_eq!(fields.len(), 12);
    assert_eq!(fields[1], Field::new("c_i32", DataType::Int32, true));
    assert_eq!(fields[4], Field::new("c-f64", DataType::Float64, true));
    assert_eq!(fields[5], Field::new("c_utf8", DataType::Utf8, false));
    assert_eq!(
        fields[10],
        Field::new("c_vec", DataType::Float32Vector(3), false)
    );
    assert_eq!(
        fields[11],
        Field::new("c_array", DataType::Float32Vector(2), true)
    );
}

#[test]
fn derived_rows_round_trip_through_a_batch() {
    let mut builder = <Everything<'_> as Row>::builder(3);
    for i in 0..3 {
        <Everything<'_> as Row>::push(&mut builder, everything(i));
    }
    let mut out = BatchBuilder::new(3);
    <Everything<'_> as Row>::finish(builder, &mut out);
    let batch = out.finish().unwrap();

    fn identity(row: Everything<'_>) -> Everything<'_> {
        row
    }
    let copied = crate::row::run_rows(&batch, identity).unwrap();
    let reader = <Everything<'_> as crate::ReadRow<'_>>::reader(&copied).unwrap();
    for i in 0..3 {
        assert_eq!(
            <Everything<'_> as crate::ReadRow<'_>>::read(&reader, i),
            everything(i)
        );
    }
}

#[derive(Debug, Clone, Copy, Row)]
struct Amount {
    amount: f64,
}

#[derive(Debug, Row)]
struct Doubled {
    doubled: f64,
}

#[test]
fn per_row_errors_get_the_row_and_nulls_in_required_fields_are_refused() {
    let input = batch(
        3,
        vec![column(
            "amount",
            raw::ColumnValues::Float64(vec![1.0, -1.0, 2.0]),
            None,
        )],
    );
    let check = |row: Amount| {
        if row.amount < 0.0 {
            Err(TransformError::new("negative").with_column("amount"))
        } else {
            Ok(Doubled {
                doubled: row.amount * 2.0,
            })
        }
    };
    let err = crate::row::run_rows(&input, check).unwrap_err();
    assert_eq!(err.row, Some(1));
    assert_eq!(err.column.as_deref(), Some("amount"));

    let with_null = batch(
        2,
        vec![column(
            "amount",
            raw::ColumnValues::Float64(vec![1.0, 0.0]),
            Some(vec![0b01]),
        )],
    );
    let err = crate::row::run_rows(&with_null, |row: Amount| Doubled {
        doubled: row.amount,
    })
    .unwrap_err();
    assert_eq!(err.row, Some(1));
    assert!(err.message.contains("not an `Option`"), "{err}");
}

#[test]
fn signature_is_derived_from_the_function() {
    fn double(row: Amount) -> Doubled {
        Doubled {
            doubled: row.amount * 2.0,
        }
    }
    let signature = crate::row::row_signature(&double, "double", "1.0.0", "Doubles");
    assert_eq!(
        signature.inputs,
        [Field::new("amount", DataType::Float64, false)]
    );
    assert_eq!(
        signature.outputs,
        [Field::new("doubled", DataType::Float64, false)]
    );
    let _ = (
        TimestampBuilder::new(),
        BooleanBuilder::new(),
        Utf8Builder::new(),
    );
}
