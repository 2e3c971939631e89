//! A throwaway DynamoDB-compatible server for tests: `dynalite` (from npm, installed under
//! `target/node` by `.ci/run`) as a child process on a free loopback port, in memory, killed on
//! drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::free_port;

/// How long the server has to accept connections after it starts.
const STARTUP: Duration = Duration::from_secs(15);

/// A running `dynalite`. Killed on drop.
#[derive(Debug)]
pub struct Dynalite {
    child: Option<Child>,
    port: u16,
}

/// Where `npm install --prefix target/node dynalite` puts its command.
fn command() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/node/node_modules/.bin/dynalite")
}

impl Dynalite {
    /// Starts a server on a free loopback port (tables become active at once) and waits
    /// until it accepts connections.
    ///
    /// # Panics
    /// If dynalite is not installed or does not start within 15 s.
    pub fn start() -> Self {
        let path = command();
        assert!(
            path.exists(),
            "{} is missing; the DynamoDB online store tests need it: npm install --prefix \
             target/node dynalite@4.0.0",
            path.display()
        );
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&path)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--createTableMs", "0", "--deleteTableMs", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
            let mut server = Dynalite {
                child: Some(child),
                port,
            };
            let start = Instant::now();
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return server;
                }
                let exited = server
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                if exited.is_some() || start.elapsed() > STARTUP {
                    last = format!("port {port}: exit {exited:?} after {:?}", start.elapsed());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("dynalite did not start: {last}");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        self.kill();
    }
}
