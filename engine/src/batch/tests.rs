//! Arrow <-> WIT conversion: property round trips for every type and the checks that guard
//! the boundary.

use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    LargeStringArray, RecordBatch, StringArray, TimestampMicrosecondArray,
    TimestampNanosecondArray,
};
use arrow_schema::{Schema, SchemaRef};
use proptest::prelude::*;

use super::{from_wit, to_wit};
use crate::bindings::{Batch, Column, ColumnValues, VarLen};
use crate::error::ErrorKind;
use crate::signature::{DataType, Field, UTC};

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field {
        name: name.into(),
        data_type,
        nullable,
    }
}

fn all_types() -> Vec<Field> {
    vec![
        field("c_bool", DataType::Boolean, true),
        field("c_i32", DataType::Int32, true),
        field("c_i64", DataType::Int64, true),
        field("c_f32", DataType::Float32, true),
        field("c_f64", DataType::Float64, true),
        field("c_utf8", DataType::Utf8, true),
        field("c_binary", DataType::Binary, true),
        field("c_ts", DataType::Timestamp, true),
        field("c_vec", DataType::Float32Vector(3), true),
    ]
}

fn schema_of(fields: &[Field]) -> SchemaRef {
    Arc::new(Schema::new(
        fields.iter().map(Field::to_arrow).collect::<Vec<_>>(),
    ))
}

/// One generated row: a value (or null) for every column of [`all_types`].
#[derive(Clone, Debug)]
struct Row {
    b: Option<bool>,
    i32: Option<i32>,
    i64: Option<i64>,
    f32: Option<f32>,
    f64: Option<f64>,
    utf8: Option<String>,
    binary: Option<Vec<u8>>,
    ts: Option<i64>,
    vec: Option<[f32; 3]>,
}

fn finite_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>().prop_filter("not NaN", |f| !f.is_nan()),
        Just(-0.0f32)
    ]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("not NaN", |f| !f.is_nan()),
        Just(-0.0f64)
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any::<String>(),
        1 => Just(String::new()),
        1 => "[a-zé漢🦀]{2000,5000}",
    ]
}

fn row() -> impl Strategy<Value = Row> {
    (
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<i32>()),
            proptest::option::of(any::<i64>()),
            proptest::option::of(finite_f32()),
            proptest::option::of(finite_f64()),
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of(any::<i64>()),
            proptest::option::of([finite_f32(), finite_f32(), finite_f32()]),
        ),
    )
        .prop_map(|((b, i32, i64, f32, f64), (utf8, binary, ts, vec))| Row {
            b,
            i32,
            i64,
            f32,
            f64,
            utf8,
            binary,
            ts,
            vec,
        })
}

fn batch_of(rows: &[Row]) -> RecordBatch {
    let mut vectors = FixedSizeListBuilder::new(Float32Builder::new(), 3).with_field(Arc::new(
        arrow_schema::Field::new("item", arrow_schema::DataType::Float32, false),
    ));
    for r in rows {
        match r.vec {
            Some(v) => {
                vectors.values().append_slice(&v);
                vectors.append(true);
            }
            None => {
                vectors.values().append_slice(&[0.0; 3]);
                vectors.append(false);
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| r.b).collect::<BooleanArray>()),
        Arc::new(rows.iter().map(|r| r.i32).collect::<Int32Array>()),
        Arc::new(rows.iter().map(|r| r.i64).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.f32).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| r.f64).collect::<Float64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.utf8.as_deref())
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.binary.as_deref())
                .collect::<BinaryArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.ts)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone(UTC),
        ),
        Arc::new(vectors.finish()),
    ];
    RecordBatch::try_new(schema_of(&all_types()), columns).unwrap()
}

fn round_trip(fields: &[Field], batch: &RecordBatch) -> RecordBatch {
    let wit = to_wit(fields, batch).unwrap();
    from_wit(fields, &schema_of(fields), wit, batch.num_rows()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_type_round_trips_with_nulls(rows in proptest::collection::vec(row(), 0..200)) {
        let batch = batch_of(&rows);
        prop_assert_eq!(round_trip(&all_types(), &batch), batch);
    }

    #[test]
    fn sliced_arrays_round_trip_as_their_logical_values(
        rows in proptest::collection::vec(row(), 1..150),
        start in 0usize..150,
        len in 0usize..150,
    ) {
        let batch = batch_of(&rows);
        let start = start.min(batch.num_rows());
        let len = len.min(batch.num_rows() - start);
        let sliced = batch.slice(start, len);
        let expected = batch_of(&rows[start..start + len]);
        prop_assert_eq!(round_trip(&all_types(), &sliced), expected);
    }
}

#[test]
fn an_empty_batch_round_trips() {
    let batch = batch_of(&[]);
    assert_eq!(round_trip(&all_types(), &batch), batch);
}

#[test]
fn all_valid_columns_carry_no_validity_bitmap() {
    let batch = RecordBatch::try_new(
        schema_of(&[field("x", DataType::Int64, true)]),
        vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
    )
    .unwrap();
    let wit = to_wit(&[field("x", DataType::Int64, true)], &batch).unwrap();
    assert!(wit.columns[0].validity.is_none());
}

#[test]
fn compatible_encodings_are_converted_and_extra_columns_ignored() {
    let schema = Arc::new(Schema::new(vec![
        arrow_schema::Field::new("s", arrow_schema::DataType::LargeUtf8, true),
        arrow_schema::Field::new("n", arrow_schema::DataType::Int32, false),
        arrow_schema::Field::new(
            "t",
            arrow_schema::DataType::Timestamp(
                arrow_schema::TimeUnit::Nanosecond,
                Some("UTC".into()),
            ),
            false,
        ),
        arrow_schema::Field::new("ignored", arrow_schema::DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(LargeStringArray::from(vec![Some("héllo"), None])),
            Arc::new(Int32Array::from(vec![7, -1])),
            Arc::new(
                TimestampNanosecondArray::from(vec![1_500_000_123, -2_000]).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec!["a", "b"])),
        ],
    )
    .unwrap();
    let fields = [
        field("s", DataType::Utf8, true),
        field("n", DataType::Int64, false),
        field("t", DataType::Timestamp, false),
    ];
    let wit = to_wit(&fields, &batch).unwrap();
    assert_eq!(wit.columns.len(), 3);
    assert!(matches!(&wit.columns[1].values, ColumnValues::Int64(v) if v == &[7, -1]));
    assert!(matches!(&wit.columns[2].values, ColumnValues::Timestamp(v) if v == &[1_500_000, -2]));
}

fn single(name: &str, array: ArrayRef) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![arrow_schema::Field::new(
        name,
        array.data_type().clone(),
        true,
    )]));
    RecordBatch::try_new(schema, vec![array]).unwrap()
}

#[test]
fn input_errors_name_the_column_and_what_was_expected() {
    let batch = single("amount", Arc::new(StringArray::from(vec!["1.0"])));

    let missing = to_wit(&[field("balance", DataType::Float64, true)], &batch).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::SchemaMismatch);
    assert_eq!(missing.context_value("column"), Some("balance"));
    assert!(
        missing.message().contains("missing input column `balance`"),
        "{missing}"
    );
    assert!(missing.message().contains("[amount]"), "{missing}");

    let wrong = to_wit(&[field("amount", DataType::Float64, true)], &batch).unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::SchemaMismatch);
    assert!(wrong.message().contains("Arrow type Utf8"), "{wrong}");
    assert!(wrong.message().contains("declares it float64"), "{wrong}");

    let lossy = single("n", Arc::new(Int64Array::from(vec![1])));
    let narrowing = to_wit(&[field("n", DataType::Int32, true)], &lossy).unwrap_err();
    assert!(
        narrowing.message().contains("declares it int32"),
        "{narrowing}"
    );

    let nulls = single(
        "amount",
        Arc::new(Float64Array::from(vec![Some(1.0), None, None])),
    );
    let not_null = to_wit(&[field("amount", DataType::Float64, false)], &nulls).unwrap_err();
    assert!(
        not_null
            .message()
            .contains("declared not null but holds 2 nulls (first at row 1)"),
        "{not_null}"
    );
}

#[test]
fn a_null_element_inside_a_valid_vector_row_is_rejected() {
    let mut b = FixedSizeListBuilder::new(Float32Builder::new(), 2);
    b.values().append_value(1.0);
    b.values().append_null();
    b.append(true);
    let batch = single("emb", Arc::new(b.finish()));
    let field = field("emb", DataType::Float32Vector(2), true);
    let err = to_wit(std::slice::from_ref(&field), &batch);
    // The builder's child field is nullable, which is a different Arrow type: rejected
    // either for the type or for the null element, naming the column both ways.
    let err = err.unwrap_err();
    assert_eq!(err.context_value("column"), Some("emb"));
}

fn output(columns: Vec<Column>, num_rows: u32) -> Batch {
    Batch { num_rows, columns }
}

fn column(name: &str, values: ColumnValues, validity: Option<Vec<u8>>) -> Column {
    Column {
        name: name.into(),
        values,
        validity,
    }
}

#[test]
fn output_errors_name_the_column_and_what_was_expected() {
    let fields = [field("score", DataType::Float64, false)];
    let schema = schema_of(&fields);
    let check = |batch: Batch, rows: usize| from_wit(&fields, &schema, batch, rows).unwrap_err();

    let rows = check(
        output(
            vec![column("score", ColumnValues::Float64(vec![1.0; 3]), None)],
            3,
        ),
        2,
    );
    assert!(
        rows.message()
            .contains("returned 3 rows for an input of 2 rows"),
        "{rows}"
    );

    let len = check(
        output(
            vec![column("score", ColumnValues::Float64(vec![1.0; 3]), None)],
            2,
        ),
        2,
    );
    assert!(
        len.message()
            .contains("holds 3 values for a batch of 2 rows"),
        "{len}"
    );

    let ty = check(
        output(
            vec![column("score", ColumnValues::Int64(vec![1, 2]), None)],
            2,
        ),
        2,
    );
    assert!(
        ty.message()
            .contains("declared float64, but the transform returned int64"),
        "{ty}"
    );

    let missing = check(output(vec![], 2), 2);
    assert!(
        missing.message().contains("returned no column `score`"),
        "{missing}"
    );

    let extra = check(
        output(
            vec![
                column("score", ColumnValues::Float64(vec![1.0; 2]), None),
                column("debug", ColumnValues::Int32(vec![1; 2]), None),
            ],
            2,
        ),
        2,
    );
    assert_eq!(extra.context_value("column"), Some("debug"));
    assert!(
        extra
            .message()
            .contains("does not declare (declared outputs: [score])"),
        "{extra}"
    );

    let dup = check(
        output(
            vec![
                column("score", ColumnValues::Float64(vec![1.0; 2]), None),
                column("score", ColumnValues::Float64(vec![1.0; 2]), None),
            ],
            2,
        ),
        2,
    );
    assert!(dup.message().contains("more than once"), "{dup}");

    let nulls = check(
        output(
            vec![column(
                "score",
                ColumnValues::Float64(vec![1.0; 2]),
                Some(vec![0b01]),
            )],
            2,
        ),
        2,
    );
    assert!(
        nulls
            .message()
            .contains("declared not null, but the transform returned 1 nulls"),
        "{nulls}"
    );

    let short = check(
        output(
            vec![column(
                "score",
                ColumnValues::Float64(vec![1.0; 9]),
                Some(vec![0xff]),
            )],
            9,
        ),
        9,
    );
    assert!(
        short
            .message()
            .contains("validity bitmap of 1 bytes; 9 rows need 2"),
        "{short}"
    );
    for e in [rows, len, ty, missing, nulls, short] {
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    }
}

#[test]
fn malformed_var_len_outputs_are_errors_not_panics() {
    let fields = [field("s", DataType::Utf8, true)];
    let schema = schema_of(&fields);
    let utf8 = |offsets: Vec<i32>, data: &[u8]| {
        output(
            vec![column(
                "s",
                ColumnValues::Utf8(VarLen {
                    offsets,
                    data: data.to_vec(),
                }),
                None,
            )],
            2,
        )
    };
    for (offsets, data, expected) in [
        (vec![0, 1], &b"ab"[..], "has 2 offsets; 2 rows need 3"),
        (vec![1, 1, 2], &b"ab"[..], "malformed offsets"),
        (vec![0, 2, 1], &b"ab"[..], "malformed offsets"),
        (vec![0, 1, 9], &b"ab"[..], "malformed offsets"),
        (vec![0, -1, 2], &b"ab"[..], "malformed offsets"),
        (vec![0, 1, 2], &[b'a', 0xff][..], "not valid UTF-8"),
    ] {
        let err = from_wit(&fields, &schema, utf8(offsets.clone(), data), 2).unwrap_err();
        assert!(err.message().contains(expected), "{offsets:?}: {err}");
        assert_eq!(err.context_value("column"), Some("s"));
    }
}

#[test]
fn nan_outputs_are_canonicalized() {
    let fields = [
        field("x", DataType::Float64, true),
        field("v", DataType::Float32Vector(2), true),
    ];
    let batch = output(
        vec![
            column(
                "x",
                ColumnValues::Float64(vec![f64::from_bits(0xfff8_dead_0000_0001), 1.0]),
                None,
            ),
            column(
                "v",
                ColumnValues::Float32Vector(vec![f32::from_bits(0xffc0_0001), 2.0, 3.0, 4.0]),
                None,
            ),
        ],
        2,
    );
    let out = from_wit(&fields, &schema_of(&fields), batch, 2).unwrap();
    let x = out
        .column(0)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(x.value(0).to_bits(), 0x7ff8_0000_0000_0000);
    let v = out
        .column(1)
        .as_any()
        .downcast_ref::<arrow_array::FixedSizeListArray>()
        .unwrap();
    let values = v.values().as_any().downcast_ref::<Float32Array>().unwrap();
    assert_eq!(values.value(0).to_bits(), 0x7fc0_0000);
}
