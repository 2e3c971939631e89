//! Each example component on a known batch, with its exact expected output.

use std::sync::Arc;

use arrow_array::{Float64Array, StringArray, TimestampMicrosecondArray};
use expect_test::expect;
use skewless_tests::{batch, components, engine, load, pretty};

#[test]
fn transaction_features() {
    let cache = tempfile::tempdir().unwrap();
    let t = load(&engine(&cache), components::TRANSACTION_FEATURES);
    let amount = Float64Array::from(vec![
        Some(99.0),
        Some(0.0),
        Some(-20.0),
        None,
        Some(1000.0),
        Some(7500.0),
        Some(12.5),
        Some(f64::NAN),
    ]);
    let balance = Float64Array::from(vec![
        Some(1000.0),
        Some(50.0),
        Some(0.0),
        Some(10.0),
        None,
        Some(2500.0),
        Some(-0.0),
        Some(1.0),
    ]);
    let out = t
        .run(&batch(vec![
            ("amount", Arc::new(amount)),
            ("balance_before", Arc::new(balance)),
        ]))
        .unwrap();
    expect![[r#"
        +--------------------+----------------------+---------------+-------------------------+---------------+
        | amount_log1p       | amount_zscore        | amount_bucket | amount_to_balance_ratio | is_high_value |
        +--------------------+----------------------+---------------+-------------------------+---------------+
        | 4.605170185988092  | 0.058333333333333334 | 4             | 0.099                   | false         |
        | 0.0                | -0.3541666666666667  | 2             | 0.0                     | false         |
        |                    | -0.4375              | 1             |                         | false         |
        |                    | 0.0                  | 0             |                         | false         |
        | 6.90875477931522   | 3.8125               | 7             |                         | true          |
        | 8.922791623969637  | 30.895833333333332   | 8             | 3.0                     | true          |
        | 2.6026896854443837 | -0.3020833333333333  | 3             |                         | false         |
        |                    | 0.0                  | 0             |                         | false         |
        +--------------------+----------------------+---------------+-------------------------+---------------+"#]].assert_eq(&pretty(&out));
}

#[test]
fn merchant_category() {
    let cache = tempfile::tempdir().unwrap();
    let t = load(&engine(&cache), components::MERCHANT_CATEGORY);
    let merchants = StringArray::from(vec![
        Some("SQ *BLUE BOTTLE COFFEE #123"),
        Some("WHOLEFDS MKT 10234"),
        Some("Shell Oil 57442"),
        Some("TST* JOE'S PIZZA - BROOKLYN"),
        Some("PAYPAL *STEAM GAMES"),
        Some("DELTA AIR 0062345"),
        Some("Trader Joe's #552"),
        Some("Café Münchën"),
        Some("#1234"),
        None,
    ]);
    let out = t
        .run(&batch(vec![("merchant", Arc::new(merchants))]))
        .unwrap();
    expect![[r#"
        +---------------------+-------------------+---------------+
        | merchant_normalized | merchant_category | merchant_hash |
        +---------------------+-------------------+---------------+
        | blue bottle coffee  | dining            | 725           |
        | wholefds mkt        | other             | 1023          |
        | shell oil           | fuel              | 145           |
        | joes pizza brooklyn | dining            | 978           |
        | steam games         | entertainment     | 752           |
        | delta air           | travel            | 365           |
        | trader joes         | grocery           | 328           |
        | café münchën        | other             | 34            |
        |                     | other             | 805           |
        |                     |                   |               |
        +---------------------+-------------------+---------------+"#]]
    .assert_eq(&pretty(&out));
}

#[test]
fn time_features() {
    let cache = tempfile::tempdir().unwrap();
    let t = load(&engine(&cache), components::TIME_FEATURES);
    let ts = TimestampMicrosecondArray::from(vec![
        0,                      // 1970-01-01T00:00:00Z, a Thursday
        -1,                     // 1969-12-31T23:59:59.999999Z, a Wednesday
        1_732_924_800_000_000,  // 2024-11-30T00:00:00Z, a Saturday
        1_733_011_199_999_999,  // 2024-11-30T23:59:59.999999Z
        1_709_164_800_000_000,  // 2024-02-29T00:00:00Z, a Thursday (leap day)
        951_782_400_000_000,    // 2000-02-29T00:00:00Z, a Tuesday
        -2_208_988_800_000_000, // 1900-01-01T00:00:00Z, a Monday
    ])
    .with_timezone("+00:00");
    let out = t.run(&batch(vec![("event_ts", Arc::new(ts))])).unwrap();
    expect![[r#"
        +-------------+-------------+------------+--------------+
        | hour_of_day | day_of_week | is_weekend | day_of_month |
        +-------------+-------------+------------+--------------+
        | 0           | 3           | false      | 1            |
        | 23          | 2           | false      | 31           |
        | 0           | 5           | true       | 30           |
        | 23          | 5           | true       | 30           |
        | 0           | 3           | false      | 29           |
        | 0           | 1           | false      | 29           |
        | 0           | 0           | false      | 1            |
        +-------------+-------------+------------+--------------+"#]]
    .assert_eq(&pretty(&out));
}

#[test]
fn request_amount_ratio() {
    let cache = tempfile::tempdir().unwrap();
    let t = load(&engine(&cache), components::REQUEST_AMOUNT_RATIO);
    let amount = Float64Array::from(vec![100.0, 100.0, 400.0, 50.0, 0.0, f64::NAN]);
    let last = Float64Array::from(vec![
        Some(50.0),
        None,
        Some(100.0),
        Some(0.0),
        Some(10.0),
        Some(1.0),
    ]);
    let avg = Float64Array::from(vec![
        Some(80.0),
        Some(25.0),
        Some(100.0),
        None,
        Some(-5.0),
        Some(1.0),
    ]);
    let out = t
        .run(&batch(vec![
            ("request_amount", Arc::new(amount)),
            ("user_last_amount", Arc::new(last)),
            ("user_avg_amount_30d", Arc::new(avg)),
        ]))
        .unwrap();
    expect![[r#"
        +----------------------+---------------------+------------------+-----------------+
        | amount_to_last_ratio | amount_to_avg_ratio | amount_minus_avg | is_amount_spike |
        +----------------------+---------------------+------------------+-----------------+
        | 2.0                  | 1.25                | 20.0             | false           |
        |                      | 4.0                 | 75.0             | true            |
        | 4.0                  | 4.0                 | 300.0            | true            |
        |                      |                     |                  | false           |
        | 0.0                  |                     | 5.0              | false           |
        |                      |                     |                  | false           |
        +----------------------+---------------------+------------------+-----------------+"#]]
    .assert_eq(&pretty(&out));
}
