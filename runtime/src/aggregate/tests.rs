//! Properties of states: order and grouping never change a bit, encodings are canonical, and
//! the stated rules hold on hand-picked edge cases. (The differential test against an exact
//! oracle is in `tests/all/aggregate.rs`.)

use proptest::prelude::*;

use super::*;
use crate::online::FeatureValue;

const ALL: [Function; 11] = [
    Function::Count,
    Function::Sum,
    Function::Mean,
    Function::Min,
    Function::Max,
    Function::Last,
    Function::LastN(3),
    Function::CountDistinct,
    Function::ApproxCountDistinct,
    Function::Variance,
    Function::Stddev,
];

fn f(x: f64) -> FeatureValue {
    FeatureValue::Float64(x)
}

fn value_of(function: Function, values: &[FeatureValue]) -> Output {
    let integer = values
        .iter()
        .any(|v| matches!(v, FeatureValue::Int64(_) | FeatureValue::Int32(_)));
    let mut s = State::new(function, integer);
    for (i, v) in values.iter().enumerate() {
        s.update(v, i as i64, 0).unwrap();
    }
    s.evaluate().unwrap()
}

fn scalar(function: Function, values: &[FeatureValue]) -> FeatureValue {
    match value_of(function, values) {
        Output::Value(v) => v,
        Output::List(l) => panic!("a list: {l:?}"),
    }
}

#[test]
fn cancelling_values_sum_exactly() {
    assert_eq!(scalar(Function::Sum, &[f(1e16), f(1.0), f(-1e16)]), f(1.0));
    assert_eq!(
        scalar(Function::Sum, &[f(1e308), f(1e308), f(-1e308)]),
        f(1e308)
    );
    assert_eq!(
        scalar(Function::Mean, &[f(1e16), f(1.0), f(-1e16)]),
        f(1.0 / 3.0)
    );
    assert_eq!(scalar(Function::Sum, &[f(0.1), f(0.2), f(0.3)]), f(0.6));
    assert_eq!(
        scalar(
            Function::Variance,
            &[f(1e9 + 1.0), f(1e9 + 2.0), f(1e9 + 3.0)]
        ),
        f(2.0 / 3.0)
    );
    assert_eq!(
        scalar(
            Function::Stddev,
            &[
                f(2.0),
                f(4.0),
                f(4.0),
                f(4.0),
                f(5.0),
                f(5.0),
                f(7.0),
                f(9.0)
            ]
        ),
        f(2.0)
    );
}

#[test]
fn empty_windows_count_zero_and_summarize_null() {
    for function in ALL {
        let expected = match function {
            Function::Count | Function::CountDistinct | Function::ApproxCountDistinct => {
                Output::Value(FeatureValue::Int64(0))
            }
            Function::LastN(_) => Output::List(vec![]),
            _ => Output::Value(FeatureValue::Null),
        };
        assert_eq!(value_of(function, &[]), expected, "{function}");
        assert_eq!(
            value_of(function, &[FeatureValue::Null]),
            expected,
            "{function} of a null"
        );
    }
}

#[test]
fn special_values_follow_the_stated_rules() {
    let inf = f64::INFINITY;
    let nan = FeatureValue::Float64(f64::from_bits(0x7ff0_0000_0000_0abc));
    let is_canonical_nan = |v: FeatureValue| matches!(v, FeatureValue::Float64(x) if x.to_bits() == f64::NAN.to_bits());
    assert_eq!(scalar(Function::Sum, &[f(inf), f(1.0)]), f(inf));
    assert_eq!(scalar(Function::Sum, &[f(-inf), f(1.0)]), f(-inf));
    assert!(is_canonical_nan(scalar(Function::Sum, &[f(inf), f(-inf)])));
    assert!(is_canonical_nan(scalar(
        Function::Sum,
        &[nan.clone(), f(1.0)]
    )));
    assert!(is_canonical_nan(scalar(
        Function::Variance,
        &[f(inf), f(1.0)]
    )));
    assert_eq!(
        scalar(Function::Sum, &[f(f64::MAX), f(f64::MAX)]),
        f(inf),
        "an exact sum past MAX rounds to inf"
    );
    assert_eq!(
        scalar(Function::Mean, &[f(f64::MAX), f(f64::MAX)]),
        f(f64::MAX),
        "but its mean does not"
    );
    assert_eq!(
        scalar(Function::Stddev, &[f(f64::MAX), f(-f64::MAX)]),
        f(f64::MAX),
        "from the exact variance, which overflows"
    );
    assert!(is_canonical_nan(scalar(
        Function::Max,
        &[f(1.0), nan.clone()]
    )));
    assert_eq!(scalar(Function::Min, &[f(1.0), nan.clone()]), f(1.0));
    // −0.0
    let neg = scalar(Function::Sum, &[f(-0.0), f(-0.0)]);
    assert!(matches!(neg, FeatureValue::Float64(x) if x == 0.0 && x.is_sign_negative()));
    let pos = scalar(Function::Sum, &[f(-0.0), f(0.0)]);
    assert!(matches!(pos, FeatureValue::Float64(x) if x == 0.0 && x.is_sign_positive()));
    let pos = scalar(Function::Sum, &[f(-1.0), f(1.0)]);
    assert!(matches!(pos, FeatureValue::Float64(x) if x == 0.0 && x.is_sign_positive()));
    assert_eq!(scalar(Function::Min, &[f(0.0), f(-0.0)]), f(-0.0));
    assert_eq!(scalar(Function::Max, &[f(0.0), f(-0.0)]), f(0.0));
    assert_eq!(
        scalar(
            Function::CountDistinct,
            &[f(0.0), f(-0.0), nan.clone(), f(f64::NAN)]
        ),
        FeatureValue::Int64(3)
    );
    // A tiny negative mean rounds to −0.0: it keeps the sign of the exact value.
    let tiny = scalar(Function::Mean, &[f(-f64::from_bits(1)), f(0.0), f(0.0)]);
    assert!(
        matches!(tiny, FeatureValue::Float64(x) if x == 0.0 && x.is_sign_negative()),
        "{tiny:?}"
    );
}

#[test]
fn integer_sums_are_exact_and_overflow_is_an_error() {
    let i = FeatureValue::Int64;
    assert_eq!(
        scalar(Function::Sum, &[i(i64::MAX), i(1), i(-2)]),
        i(i64::MAX - 1)
    );
    let mut s = State::new(Function::Sum, true);
    s.update(&i(i64::MAX), 0, 0).unwrap();
    s.update(&i(1), 0, 0).unwrap();
    let e = s.evaluate().unwrap_err();
    assert!(e.message().contains("does not fit in int64"), "{e}");
    assert_eq!(
        scalar(Function::Mean, &[i(i64::MAX), i(i64::MAX)]),
        f(i64::MAX as f64)
    );
    assert_eq!(
        scalar(Function::Variance, &[i(1), i(2), i(3), i(4)]),
        f(1.25)
    );
    let e = State::new(Function::Sum, true)
        .update(&FeatureValue::Utf8("x".into()), 0, 0)
        .unwrap_err();
    assert!(
        e.message()
            .contains("expected an integer, got a utf8 value"),
        "{e}"
    );
}

#[test]
fn last_orders_by_event_then_created_then_value_bytes() {
    let mut s = State::new(Function::LastN(3), false);
    for (e, c, v) in [
        (5, 1, 1.0),
        (5, 2, 2.0),
        (7, 0, 3.0),
        (5, 2, 0.5),
        (1, 9, 9.0),
    ] {
        s.update(&f(v), e, c).unwrap();
    }
    assert_eq!(
        s.evaluate().unwrap(),
        Output::List(vec![f(3.0), f(0.5), f(2.0)])
    );
    let mut last = State::new(Function::Last, false);
    last.update(&f(2.0), 5, 2).unwrap();
    last.update(&f(0.5), 5, 2).unwrap();
    // Little-endian bits of 0.5 (…e0 3f) are greater bytes than those of 2.0 (…00 40).
    assert_eq!(
        last.evaluate().unwrap(),
        Output::Value(f(0.5)),
        "bytes break the tie"
    );
}

#[test]
fn states_of_different_functions_do_not_merge() {
    let mut a = State::new(Function::Sum, false);
    let e = a.merge(&State::new(Function::Mean, false)).unwrap_err();
    assert_eq!(e.kind(), crate::error::ErrorKind::Internal);
    assert!(a.merge(&State::new(Function::LastN(2), false)).is_err());
}

fn value_strategy() -> impl Strategy<Value = FeatureValue> {
    prop_oneof![
        Just(FeatureValue::Null),
        any::<u64>().prop_map(|b| f(f64::from_bits(b))),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            1e16,
            -1e16,
            0.1,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324
        ])
        .prop_map(f),
        (-1000i32..1000).prop_map(|x| f(f64::from(x) / 8.0)),
    ]
}

fn int_strategy() -> impl Strategy<Value = FeatureValue> {
    prop_oneof![
        Just(FeatureValue::Null),
        any::<i64>().prop_map(FeatureValue::Int64),
        (-5i64..5).prop_map(FeatureValue::Int64),
    ]
}

/// Builds the state of `rows` grouped by `groups` (each row's group), each group folded in
/// `order`, then merged in reverse group order.
fn grouped(
    function: Function,
    integer: bool,
    rows: &[(i64, i64, FeatureValue)],
    groups: &[usize],
) -> State {
    let n_groups = groups.iter().copied().max().unwrap_or(0) + 1;
    let mut states = vec![State::new(function, integer); n_groups];
    for (row, g) in rows.iter().zip(groups.iter().cycle()) {
        states[*g].update(&row.2, row.0, row.1).unwrap();
    }
    let mut total = State::new(function, integer);
    for s in states.iter().rev() {
        total.merge(s).unwrap();
    }
    total
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any order of updates and any grouping of merges give the same state and the same
    /// bytes, which decode to that state.
    #[test]
    fn order_and_grouping_change_no_byte(
        floats in prop::collection::vec((0i64..6, 0i64..3, value_strategy()), 0..40),
        ints in prop::collection::vec((0i64..6, 0i64..3, int_strategy()), 0..40),
        groups in prop::collection::vec(0usize..4, 1..8),
    ) {
        for (integer, rows) in [(false, &floats), (true, &ints)] {
            for function in ALL {
                let mut sequential = State::new(function, integer);
                for r in rows.iter() {
                    sequential.update(&r.2, r.0, r.1).unwrap();
                }
                let mut reversed: Vec<_> = rows.clone();
                reversed.reverse();
                let merged = grouped(function, integer, &reversed, &groups);
                prop_assert_eq!(&merged, &sequential, "{}", function);
                let bytes = encode(&sequential);
                prop_assert_eq!(&encode(&merged), &bytes, "{}", function);
                prop_assert_eq!(decode(&bytes).unwrap(), sequential.clone());
                let a = sequential.evaluate();
                let b = decode(&bytes).unwrap().evaluate();
                prop_assert_eq!(a.is_ok(), b.is_ok());
                if let (Ok(a), Ok(b)) = (a, b) {
                    prop_assert_eq!(a, b);
                }
            }
        }
    }

    /// Decoding arbitrary bytes never panics, and whatever it accepts re-encodes to the very
    /// same bytes (there is one spelling of each state).
    #[test]
    fn decoding_is_total_and_canonical(tail in prop::collection::vec(any::<u8>(), 0..64), tag in 0u8..10) {
        let mut bytes = vec![FORMAT, tag];
        bytes.extend(tail);
        if let Ok(state) = decode(&bytes) {
            prop_assert_eq!(encode(&state), bytes);
        }
    }
}

#[test]
fn decoding_names_what_is_wrong() {
    let e = decode(&[9, 1]).unwrap_err();
    assert!(e.message().contains("format 9 is unknown"), "{e}");
    let e = decode(&[]).unwrap_err();
    assert!(e.message().contains("end early"), "{e}");
    let mut bytes = encode(&State::new(Function::Count, false));
    bytes.push(0);
    assert!(decode(&bytes).unwrap_err().message().contains("trailing"));
}
