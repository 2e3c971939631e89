//! The README's main job stays true whatever day it runs: the example feature repo
//! (`examples/feature-repo/skewless.toml`, 30-day TTLs) over data generated as
//! `run.sh` generates it (`skewless-datagen`'s default end, `now`), materialized, serves
//! present values for the users `run.sh` prints, not `outside_max_age`.

use skewless_datagen::{Spec, batches, parse_end};
use skewless_runtime::TransformEngine;
use skewless_runtime::materialize::Options;
use skewless_runtime::online::ReadStatus;
use skewless_runtime::registry::FeatureRepo;
use skewless_runtime::serving::{FeatureRequest, OnlineServing};
use skewless_tests::components;
use skewless_tests::feature_repo::TestRepo;
use skewless_tests::languages::workspace;

#[test]
fn the_main_job_serves_present_values_today() {
    let toml = std::fs::read_to_string(
        workspace()
            .join("examples")
            .join("feature-repo")
            .join("skewless.toml"),
    )
    .unwrap();
    // The example's components, as the tests build them.
    let guests = "../../target/guests/wasm32-wasip2/guest/";
    let toml = toml
        .replace(
            &format!("{guests}transaction_features.wasm"),
            components::TRANSACTION_FEATURES,
        )
        .replace(
            &format!("{guests}merchant_category.wasm"),
            components::MERCHANT_CATEGORY,
        )
        .replace(
            &format!("{guests}time_features.wasm"),
            components::TIME_FEATURES,
        );
    assert!(
        !toml.contains(guests),
        "a component path of the example was not replaced"
    );
    let repo = TestRepo::new(&toml);

    // What `run.sh` runs: `skewless-datagen` with its default `--end now`.
    let spec = Spec {
        rows: 20_000,
        users: 500,
        days: 90,
        end_us: parse_end("now").unwrap(),
        ..Spec::default()
    };
    let data: Vec<_> = batches(spec, 8192).collect();
    repo.ingest("raw.transactions", "transactions.parquet", &data);
    let plan = repo.apply().unwrap();
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    let online = repo.online();
    let views = [
        "user_transaction_features",
        "user_merchant_features",
        "user_time_features",
        "user_txn_aggregates",
    ];
    for view in views {
        repo.materialize(view, &Options::default(), online.as_ref())
            .unwrap();
    }

    let feature_repo = FeatureRepo::open(repo.path()).unwrap();
    let registry = feature_repo.applied().unwrap();
    let engine = TransformEngine::builder()
        .cache_dir(feature_repo.state_dir().join("compiled"))
        .build()
        .unwrap();
    let serving = OnlineServing::open(&feature_repo, &registry, &engine, online).unwrap();
    let request = FeatureRequest::from_json(
        br#"{"features": ["user_transaction_features:*", "user_merchant_features:*",
                          "user_time_features:*", "user_txn_aggregates:*"],
             "entities": {"user_id": [1, 2, 3]}}"#,
    )
    .unwrap();
    let answer = serving.get(&request).unwrap();
    let mut present = 0;
    for column in &answer.features {
        for status in &column.statuses {
            assert!(
                matches!(status, ReadStatus::Present | ReadStatus::NullValue),
                "{}:{} is {status:?}: the example data is older than its views' TTL",
                column.view,
                column.feature
            );
            present += usize::from(*status == ReadStatus::Present);
        }
    }
    assert!(
        present > answer.features.len(),
        "too few present values: {present}"
    );
}
