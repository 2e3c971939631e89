//! Parsing and structural checks of `skewless.toml`.

use super::*;

const GOOD: &str = r#"
[project]
name = "card-fraud"

[online]
type = "redis"
url = "redis://127.0.0.1:6379"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

[[batch_view]]
name = "user_transactions"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "t.wasm"
ttl = "30d"

[[request_view]]
name = "request_amount"
transform = "t.wasm"
entities = ["user"]
inputs.request_amount = { request = "amount" }
inputs.user_last_amount = { feature = "user_transactions:amount" }

[[feature_service]]
name = "fraud_model_v1"
features = ["user_transactions:*", "request_amount:amount_to_last_ratio"]
"#;

fn repo_with_component() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.wasm"), b"\0asm").unwrap();
    dir
}

#[test]
fn a_sound_repo_parses_with_defaults_and_has_no_problems() {
    let spec = RepoSpec::parse(GOOD).unwrap();
    assert_eq!(spec.offline, OfflineSpec::default());
    assert_eq!(
        spec.online,
        OnlineSpec::Redis {
            url: "redis://127.0.0.1:6379".into()
        }
    );
    assert!(spec.batch_views[0].online, "online defaults to true");
    assert_eq!(
        RepoSpec::ttl(&spec.batch_views[0]).unwrap(),
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
    let dir = repo_with_component();
    assert_eq!(spec.check(dir.path()), Vec::<String>::new());
}

#[test]
fn a_misspelt_key_is_an_error_naming_it() {
    let err = RepoSpec::parse(&GOOD.replace("event_timestamp", "event_timestmap")).unwrap_err();
    assert!(err.message().contains("event_timestmap"), "{err}");
    let err =
        RepoSpec::parse(&GOOD.replace("type = \"redis\"", "type = \"memcached\"")).unwrap_err();
    assert!(err.message().contains("memcached"), "{err}");
}

#[test]
fn every_structural_problem_is_listed_at_once() {
    let broken =
        GOOD.replace(
            "entities = [\"user\"]\nsource",
            "entities = [\"account\"]\nsource",
        )
        .replace("raw.transactions", "transactions")
        .replace("ttl = \"30d\"", "ttl = \"30 days\"")
        .replace("user_transactions:amount", "nope:amount")
        .replace(
            "transform = \"t.wasm\"\nttl",
            "transform = \"missing.wasm\"\nttl",
        ) + "\n[[entity]]\nname = \"user\"\njoin_keys = []\n";
    let spec = RepoSpec::parse(&broken).unwrap();
    let dir = repo_with_component();
    let problems = spec.check(dir.path());
    let expect = [
        "entity `user` is declared more than once",
        "entity `user` declares no join keys",
        "uses entity `account`, which is not declared (declared: [user])",
        "source `transactions` is not a table name; expected `namespace.table`",
        "ttl: `30 days` is not a duration",
        "transform `missing.wasm` does not exist",
        "input `user_last_amount` reads `nope:amount`, but there is no batch or aggregate view `nope`",
    ];
    for e in expect {
        assert!(
            problems.iter().any(|p| p.contains(e)),
            "missing {e:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}

#[test]
fn feature_refs_parse_and_reject_malformed_text() {
    let r = FeatureRef::parse("view:feat").unwrap();
    assert_eq!((r.view.as_str(), r.feature.as_str()), ("view", "feat"));
    assert_eq!(r.to_string(), "view:feat");
    for bad in ["view", ":f", "v:", "a:b:c"] {
        assert!(FeatureRef::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn push_sources_are_checked_by_name_table_and_settings() {
    let dir = repo_with_component();
    let good = format!(
        "{GOOD}\n[[push_source]]\nname = \"txn_push\"\nsource = \"raw.transactions\"\n\n\
         [push]\ncommit_interval = \"250ms\"\nmax_rows = 10\n"
    );
    let spec = RepoSpec::parse(&good).unwrap();
    assert_eq!(spec.check(dir.path()), Vec::<String>::new());
    assert_eq!(
        spec.push.commit_interval().unwrap(),
        std::time::Duration::from_millis(250)
    );
    assert_eq!(
        RepoSpec::parse(GOOD)
            .unwrap()
            .push
            .commit_interval()
            .unwrap(),
        std::time::Duration::from_secs(1)
    );

    let e = RepoSpec::parse(&format!(
        "{GOOD}\n[[push_source]]\nname = \"p\"\nsource = \"raw.transactions\"\ntable = \"x\"\n"
    ))
    .unwrap_err();
    assert!(e.message().contains("unknown field `table`"), "{e}");

    let bad = format!(
        "{GOOD}\n[[push_source]]\nname = \"p\"\nsource = \"raw.transaction\"\n\
         [[push_source]]\nname = \"p\"\nsource = \"raw.transactions\"\n\n\
         [push]\ncommit_interval = \"soon\"\nmax_rows = 0\n"
    );
    let problems = RepoSpec::parse(&bad).unwrap().check(dir.path());
    let expected = [
        "push source `p`: no view reads source `raw.transaction` (the views' sources: [raw.transactions])",
        "push source `p` is declared more than once",
        "[push] commit_interval: `soon` is not a duration",
        "[push] max_rows must be at least 1",
    ];
    for needle in expected {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle} missing from {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}
