//! What the binary's end-to-end tests share: the one-view feature repo they run on.

use std::path::Path;

use skewless_test_components::TRANSACTION_FEATURES;

/// Writes `dir/skewless.toml`: entity `user` (`user_id`, int64) and batch view `txn`
/// (`transaction-features` over `raw.transactions`, event time `event_ts`), with `ttl` when
/// given, on the default stores.
pub(crate) fn write_txn_repo(dir: &Path, project: &str, ttl: Option<&str>) {
    let ttl = ttl.map_or_else(String::new, |t| format!("ttl = \"{t}\"\n"));
    std::fs::write(
        dir.join("skewless.toml"),
        format!(
            r#"
[project]
name = "{project}"

[[entity]]
name = "user"
join_keys = [{{ name = "user_id", type = "int64" }}]

[[batch_view]]
name = "txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "{TRANSACTION_FEATURES}"
{ttl}"#
        ),
    )
    .expect("skewless.toml written");
}
