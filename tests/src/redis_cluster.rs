//! A throwaway Redis Cluster for tests: six `redis-server` children on free loopback ports
//! (three masters, one replica each), joined by `redis-cli --cluster create`, with a one-second
//! node timeout so that a failover takes seconds, persistence off, killed on drop.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::redis_server::{RedisServer, free_port};

/// How long the cluster has to form, or to heal after a failover.
const SETTLE: Duration = Duration::from_secs(30);

/// A running cluster of six nodes. Every node is killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts six nodes, creates a cluster of three masters with one replica each and waits
    /// until every node reports `cluster_state:ok` and every replica is in sync.
    ///
    /// # Panics
    /// If `redis-server` or `redis-cli` is missing, or the cluster does not form within 30 s.
    pub fn start() -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(cluster) => return cluster,
                Err(e) => last = e,
            }
        }
        panic!("the Redis Cluster did not form: {last}");
    }

    fn try_start() -> Result<Self, String> {
        let mut nodes = Vec::with_capacity(6);
        for _ in 0..6 {
            let (port, bus) = (free_port(), free_port());
            let bus = bus.to_string();
            nodes.push(RedisServer::try_start_with(
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus,
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ],
            )?);
        }
        let cluster = RedisCluster { nodes };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .map_err(|e| format!("cannot run redis-cli ({e}); install redis-tools"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        cluster.wait_until_healthy()?;
        Ok(cluster)
    }

    /// The seed URLs of every node, `redis://127.0.0.1:<port>`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The ports of the live masters, as the first live node sees them.
    pub fn masters(&self) -> Vec<u16> {
        let nodes = self
            .live()
            .find_map(|port| cli(port, &["CLUSTER", "NODES"]).ok())
            .expect("a live node answers CLUSTER NODES");
        nodes
            .lines()
            .filter(|l| {
                let flags = l.split(' ').nth(2).unwrap_or("");
                flags.split(',').any(|f| f == "master") && !flags.contains("fail")
            })
            .filter_map(|l| {
                let addr = l.split(' ').nth(1)?;
                addr.split(['@', ','])
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// Whether `key` exists (`redis-cli -c`, which follows redirections).
    pub fn exists(&self, key: &str) -> bool {
        let port = self.live().next().expect("a live node");
        let out = cli(port, &["-c", "EXISTS", key]).expect("redis-cli answers");
        out.trim().trim_start_matches("(integer) ") == "1"
    }

    /// Moves `slots` slots from the master on `from` to the master on `to`, key by key
    /// (`redis-cli --cluster reshard`): while it runs, clients get `ASK` for keys already moved
    /// out of a migrating slot, and `MOVED` once a slot has moved.
    ///
    /// # Panics
    /// If the resharding fails.
    pub fn reshard(&self, from: u16, to: u16, slots: usize) {
        let id = |port: u16| {
            cli(port, &["CLUSTER", "MYID"])
                .expect("a node id")
                .trim()
                .to_owned()
        };
        let out = Command::new("redis-cli")
            .args(["--cluster", "reshard", &format!("127.0.0.1:{from}")])
            .args(["--cluster-from", &id(from), "--cluster-to", &id(to)])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .args(["--cluster-pipeline", "10"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster reshard failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills the node on `port` (SIGKILL): a master or replica that dies.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of this cluster");
        node.kill();
        node_gone(port);
    }

    /// Waits until every live node reports `cluster_state:ok` and sees the same three
    /// masters, and every live replica's link to its master is up; `Err` saying what is still
    /// wrong after 30 s.
    pub fn wait_until_healthy(&self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let problem = self.problem();
            match problem {
                None => return Ok(()),
                Some(p) if start.elapsed() > SETTLE => {
                    return Err(format!("not healthy after {SETTLE:?}: {p}"));
                }
                Some(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn problem(&self) -> Option<String> {
        for port in self.live() {
            let info = match cli(port, &["CLUSTER", "INFO"]) {
                Ok(info) => info,
                Err(e) => return Some(e),
            };
            if !info.contains("cluster_state:ok") {
                return Some(format!("{port}: cluster state not ok"));
            }
            let repl = match cli(port, &["INFO", "replication"]) {
                Ok(repl) => repl,
                Err(e) => return Some(e),
            };
            if repl.contains("role:slave") && !repl.contains("master_link_status:up") {
                return Some(format!("{port}: replica not in sync"));
            }
        }
        let masters = self.masters();
        if masters.len() != 3 {
            return Some(format!("masters: {masters:?}"));
        }
        None
    }

    fn live(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(RedisServer::port)
    }
}

/// `redis-cli -p <port> <args>`'s output.
fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "redis-cli -p {port} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Waits until nothing listens on `port` any more.
fn node_gone(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        && start.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}
