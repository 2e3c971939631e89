//! Arrow -> WIT -> component -> WIT -> Arrow through a real component (the echo guest),
//! for every type, with nulls, unicode, empty batches and large strings.

use proptest::prelude::*;
use skewless_tests::{all_types_batch, components, engine, load};

#[test]
fn an_empty_batch_of_every_type_round_trips() {
    let cache = tempfile::tempdir().unwrap();
    let echo = load(&engine(&cache), components::ECHO_GUEST);
    let input = all_types_batch(&[]);
    assert_eq!(echo.run(&input).unwrap(), input);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_type_round_trips_through_the_echo_component(
        f64s in proptest::collection::vec(any::<f64>().prop_filter("not NaN", |v| !v.is_nan()), 0..3000),
        start in 0usize..50,
    ) {
        let cache = tempfile::tempdir().unwrap();
        let echo = load(&engine(&cache), components::ECHO_GUEST);
        let input = all_types_batch(&f64s);
        // Sliced inputs (non-zero offsets) come back as their logical values.
        let start = start.min(input.num_rows());
        let input = input.slice(start, input.num_rows() - start);
        let output = echo.run(&input).unwrap();
        prop_assert_eq!(output.num_rows(), input.num_rows());
        for (i, field) in input.schema().fields().iter().enumerate() {
            prop_assert_eq!(output.column(i).to_data(), input.column(i).to_data(), "column {}", field.name());
        }
    }
}
