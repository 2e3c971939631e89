//! A throwaway `redis-server` for tests: a child process on a free loopback port, in a temp
//! directory, with persistence off, killed on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server has to answer PING after it starts.
const STARTUP: Duration = Duration::from_secs(5);

/// A running `redis-server` child process. Killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers PING.
    ///
    /// # Panics
    /// If `redis-server` is not installed or does not answer within 5 s.
    pub fn start() -> Self {
        // Finding a free port and binding it are two steps; another process may take the port
        // in between, so try a few.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start_on(free_port()) {
                Ok(server) => return server,
                Err(e) => last = e,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// Starts a server on `port` (e.g. the port of a killed one, to test a restart).
    ///
    /// # Panics
    /// If `redis-server` is not installed or does not answer within 5 s.
    pub fn start_on(port: u16) -> Self {
        Self::try_start_on(port).unwrap_or_else(|e| panic!("redis-server did not start: {e}"))
    }

    fn try_start_on(port: u16) -> Result<Self, String> {
        Self::try_start_with(port, &[])
    }

    /// Starts a server on `port` with more `redis-server` arguments (`--cluster-enabled yes`,
    /// ...), in a temp directory of its own; `Err` with its log if it does not answer PING
    /// within 5 s.
    ///
    /// # Panics
    /// If `redis-server` is not installed.
    pub fn try_start_with(port: u16, args: &[&str]) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("a temp dir for redis-server");
        let log = std::fs::File::create(dir.path().join("redis.log")).expect("a log file");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); the online store tests need it: install it: \
                     apt-get install -y redis-server"
                )
            });
        let mut server = RedisServer {
            child: Some(child),
            port,
            dir,
        };
        let start = Instant::now();
        loop {
            if ping(port) {
                return Ok(server);
            }
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || start.elapsed() > STARTUP {
                let log = std::fs::read_to_string(server.dir.path().join("redis.log"))
                    .unwrap_or_default();
                return Err(format!(
                    "no PONG on port {port} after {:?} (exit: {exited:?}); its log:\n{log}",
                    start.elapsed()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server was started and not killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL) and waits for it to exit: a dead Redis.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Whether something on `port` answers `PING` with `+PONG`.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0; 5];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}
