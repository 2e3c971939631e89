//! Feast's own Python SDK (pinned in `tests/python/requirements.txt`) against the feature
//! server on a real socket: a Feast `FeatureStore` whose online store is
//! `type: remote, path: <this server>` asks for features by name, by feature service, with
//! full feature names, for an unknown entity, over the row limit, for an unknown feature and
//! to write values; its answers are compared with the server's native endpoint in the
//! script (`tests/python/feast_sdk.py`), and its errors must carry the server's message.
//!
//! A schema-driven fuzz run (`tests/python/openapi_fuzz.py`, schemathesis) then checks the
//! server against its own `/openapi.json`: no 5xx, no body the spec and the server judge
//! differently.

use skewless_server as server;
use skewless_tests::python::{python_or_skip, run_script};

use crate::server::{block_on, limits, materialized, router};

/// Serves the test repo on a free loopback port while `client` runs with its base URL.
fn with_server(client: impl FnOnce(String) + Send + 'static) {
    let repo = materialized(None);
    let router = router(&repo, repo.online(), limits());
    block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(server::serve(listener, router, async {
            let _ = stopped.await;
        }));
        // The client blocks (a child process): off the runtime serving it.
        let client = tokio::task::spawn_blocking(move || client(url));
        let outcome = client.await;
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    });
}

#[test]
fn feasts_sdk_reads_through_the_remote_online_store() {
    let Some(python) = python_or_skip("feasts_sdk_reads_through_the_remote_online_store") else {
        return;
    };
    with_server(move |url| {
        let work = tempfile::tempdir().unwrap();
        let out = run_script(
            &python,
            "feast_sdk.py",
            &[&url, work.path().to_str().unwrap()],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}");
        assert!(stdout.contains("feast sdk: all checks passed"), "{stdout}");
    });
}

#[test]
fn the_openapi_spec_and_the_server_agree_under_fuzzing() {
    let Some(python) = python_or_skip("the_openapi_spec_and_the_server_agree_under_fuzzing") else {
        return;
    };
    with_server(move |url| {
        let out = run_script(&python, "openapi_fuzz.py", &[&url]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("openapi fuzz: all checks passed"),
            "{stdout}"
        );
    });
}
