//! Which master serves which hash slot: the cluster's map as `CLUSTER SLOTS` reports it, and
//! the slot of a key.
//!
//! A key's slot is CRC16 (XMODEM) of its hash tag (the bytes between the first `{` and the
//! next `}`, when not empty) or of the whole key, modulo 16384: the function every Redis
//! Cluster node applies, checked against the server's own `CLUSTER KEYSLOT` in the tests.
//! The store names every key `skewless:{<entity>}:<view>`, so one entity's rows of every view
//! share a slot, hence a node.

use std::fmt;

use redis::Value;

/// The number of hash slots of a Redis Cluster.
pub(super) const SLOTS: usize = 16_384;

/// A node's address as the cluster announces it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct NodeAddr {
    pub(super) host: String,
    pub(super) port: u16,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One master and how many live replicas the map lists for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Master {
    pub(super) addr: NodeAddr,
    /// Live replicas (`CLUSTER SLOTS` leaves out replicas flagged as failed). A write to a
    /// master with one waits until a replica has it (`WAIT`), so a failover cannot lose it.
    pub(super) replicas: usize,
}

/// The slot map: the master of each slot (an index into `masters`), or none while a slot is
/// not served.
#[derive(Clone, Debug)]
pub(super) struct Topology {
    owner: Vec<Option<u16>>,
    masters: Vec<Master>,
}

impl Topology {
    /// Parses a `CLUSTER SLOTS` answer from the node at `answering_host` (which an empty host
    /// in the answer stands for). `None` if the answer is not a slot map.
    pub(super) fn parse(answer: &Value, answering_host: &str) -> Option<Topology> {
        let Value::Array(ranges) = answer else {
            return None;
        };
        let mut topology = Topology {
            owner: vec![None; SLOTS],
            masters: Vec::new(),
        };
        for range in ranges {
            let Value::Array(fields) = range else {
                return None;
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(master)) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                return None;
            };
            let (start, end) = (usize::try_from(*start).ok()?, usize::try_from(*end).ok()?);
            if start > end || end >= SLOTS {
                return None;
            }
            let addr = node_addr(master, answering_host)?;
            let replicas = fields[3..]
                .iter()
                .filter(|r| node_addr(r, answering_host).is_some())
                .count();
            let index = match topology.masters.iter().position(|m| m.addr == addr) {
                Some(i) => i,
                None => {
                    topology.masters.push(Master { addr, replicas });
                    topology.masters.len() - 1
                }
            };
            let index = u16::try_from(index).ok()?;
            topology.owner[start..=end].fill(Some(index));
        }
        Some(topology)
    }

    /// The master serving `slot`, if any.
    pub(super) fn master_of(&self, slot: u16) -> Option<&Master> {
        let index = (*self.owner.get(usize::from(slot))?)?;
        self.masters.get(usize::from(index))
    }

    /// Every master that serves at least one slot.
    pub(super) fn masters(&self) -> &[Master] {
        &self.masters
    }

    /// How many slots no master serves (0 when the cluster covers every slot).
    pub(super) fn uncovered(&self) -> usize {
        self.owner.iter().filter(|o| o.is_none()).count()
    }
}

/// A `[host, port, id, ...]` entry of `CLUSTER SLOTS`; `None` for an unknown node (`?`).
fn node_addr(value: &Value, answering_host: &str) -> Option<NodeAddr> {
    let Value::Array(fields) = value else {
        return None;
    };
    let host = match fields.first()? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
        Value::SimpleString(s) => s.clone(),
        Value::Nil => String::new(),
        _ => return None,
    };
    let host = match host.as_str() {
        "?" => return None,
        "" | "0.0.0.0" | "::" => answering_host.to_owned(),
        _ => host,
    };
    let Some(Value::Int(port)) = fields.get(1) else {
        return None;
    };
    Some(NodeAddr {
        host,
        port: u16::try_from(*port).ok()?,
    })
}

/// The hash slot of `key` (see the module docs).
pub(super) fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16_xmodem(hashed) % SLOTS as u16
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_specification() {
        // The check value of CRC16/XMODEM, and examples from the cluster specification.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag hashes the whole key.
        assert_eq!(
            slot(b"foo{}{bar}"),
            crc16_xmodem(b"foo{}{bar}") % SLOTS as u16
        );
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn a_slot_map_is_parsed_with_replicas_and_gaps() {
        let answer = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(99),
                node("10.0.0.1", 7000),
                node("10.0.0.2", 7003),
            ]),
            Value::Array(vec![Value::Int(200), Value::Int(16383), node("", 7001)]),
            Value::Array(vec![
                Value::Int(100),
                Value::Int(150),
                node("10.0.0.1", 7000),
            ]),
        ]);
        let t = Topology::parse(&answer, "seed").unwrap();
        assert_eq!(t.masters().len(), 2);
        assert_eq!(t.master_of(0).unwrap().addr.to_string(), "10.0.0.1:7000");
        assert_eq!(t.master_of(0).unwrap().replicas, 1);
        assert_eq!(t.master_of(150).unwrap().addr.port, 7000);
        assert_eq!(t.master_of(151), None);
        assert_eq!(t.master_of(16383).unwrap().addr.to_string(), "seed:7001");
        assert_eq!(t.master_of(16384), None);
        assert_eq!(t.uncovered(), 49);
        assert!(Topology::parse(&Value::Int(1), "x").is_none());
        let bad = Value::Array(vec![Value::Array(vec![
            Value::Int(5),
            Value::Int(16384),
            node("a", 1),
        ])]);
        assert!(Topology::parse(&bad, "x").is_none());
    }
}
