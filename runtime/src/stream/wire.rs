//! [`Wire`]: a connection to Redis of the stream's own, for its reads, whose replies are
//! taken from the socket's bytes straight into messages ([`super::resp`]) instead of
//! through the Redis client's values.
//!
//! It connects where the client's connection settings say (TCP or a Unix socket), logs in
//! (`AUTH`) and selects the database (`SELECT`) as the client would, and speaks RESP2: the
//! connection is used for XREADGROUP only, so what the client negotiates for its own
//! connections (RESP3 among them) does not matter here. One command is in flight at a time;
//! the reply is read into a buffer that is kept (and grows to the largest reply) across
//! reads.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo};

use super::Message;
use super::resp::{self, ReplyError, Scan};

/// What went wrong on a [`Wire`].
#[derive(Debug)]
pub(super) enum WireError {
    /// Connecting, reading or writing failed.
    Io(std::io::Error),
    /// A reply was an error or not what was expected.
    Reply(ReplyError),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Io(e) => e.fmt(f),
            WireError::Reply(e) => e.fmt(f),
        }
    }
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        WireError::Io(e)
    }
}

impl From<ReplyError> for WireError {
    fn from(e: ReplyError) -> Self {
        WireError::Reply(e)
    }
}

enum Socket {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Socket {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_read_timeout(timeout),
            #[cfg(unix)]
            Socket::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_write_timeout(timeout),
            #[cfg(unix)]
            Socket::Unix(s) => s.set_write_timeout(timeout),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Socket::Unix(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Socket::Tcp(s) => s.write_all(buf),
            #[cfg(unix)]
            Socket::Unix(s) => s.write_all(buf),
        }
    }
}

/// The first size of the reply buffer; it doubles as replies need.
const FIRST_BUFFER: usize = 64 * 1024;

/// A RESP2 connection for stream reads. See the [module docs](self).
pub(super) struct Wire {
    socket: Socket,
    /// Bytes read; `buf[..filled]` hold data, the rest is room for the next read.
    buf: Vec<u8>,
    filled: usize,
    /// The command being sent, kept for its allocation.
    command: Vec<u8>,
    read_timeout: Option<Duration>,
}

impl Wire {
    /// Connects where `info` says, with `timeout` for connecting and for each write, and
    /// logs in and selects the database as it says.
    pub(super) fn connect(info: &ConnectionInfo, timeout: Duration) -> Result<Self, WireError> {
        let socket = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let mut last = None;
                let mut connected = None;
                for addr in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(stream) => {
                            connected = Some(stream);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let stream = connected.ok_or_else(|| {
                    last.unwrap_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("`{host}` resolves to no address"),
                        )
                    })
                })?;
                stream.set_nodelay(true)?;
                Socket::Tcp(stream)
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => Socket::Unix(UnixStream::connect(path)?),
            other => {
                return Err(WireError::Io(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    format!("the stream reader cannot connect to {other:?}"),
                )));
            }
        };
        socket.set_write_timeout(Some(timeout))?;
        let mut wire = Wire {
            socket,
            buf: vec![0; FIRST_BUFFER],
            filled: 0,
            command: Vec::new(),
            read_timeout: None,
        };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = settings.username() {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            wire.simple(&args, timeout)?;
        }
        if settings.db() != 0 {
            let db = settings.db().to_string();
            wire.simple(&[b"SELECT", db.as_bytes()], timeout)?;
        }
        Ok(wire)
    }

    /// Sends a command whose reply is a status (`+OK`); its error otherwise.
    fn simple(&mut self, args: &[&[u8]], timeout: Duration) -> Result<(), WireError> {
        let reply = self.call(args, timeout)?;
        match reply.first() {
            Some(b'+') => Ok(()),
            Some(b'-') => Err(ReplyError::Server(
                String::from_utf8_lossy(reply[1..].trim_ascii_end()).into_owned(),
            )
            .into()),
            _ => Err(ReplyError::Shape(format!(
                "expected a status reply to {}, found \"{}\"",
                String::from_utf8_lossy(args[0]),
                reply.escape_ascii()
            ))
            .into()),
        }
    }

    /// Sends an XREADGROUP command (its arguments) and reads its reply into messages,
    /// waiting up to `timeout` for each part of the reply.
    pub(super) fn read_group(
        &mut self,
        args: &[&[u8]],
        timeout: Duration,
    ) -> Result<Vec<Message>, WireError> {
        let reply = self.call(args, timeout)?;
        Ok(resp::messages(reply)?)
    }

    /// Sends a command and reads its whole reply (the bytes of one RESP value).
    fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<&[u8], WireError> {
        self.command.clear();
        encode(&mut self.command, args);
        self.socket.write_all(&self.command)?;
        if self.read_timeout != Some(timeout) {
            self.socket.set_read_timeout(Some(timeout))?;
            self.read_timeout = Some(timeout);
        }
        // What is left of the last reply (nothing, one command being in flight at a time)
        // was dropped when it was taken; a reply starts at the buffer's start.
        let mut scan = Scan::default();
        let end = loop {
            if let Some(end) = scan.advance(&self.buf[..self.filled])? {
                break end;
            }
            if self.filled == self.buf.len() {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
            let read = match self.socket.read(&mut self.buf[self.filled..]) {
                // A signal: the reply is still on its way.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => read?,
            };
            if read == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "Redis closed the connection",
                )
                .into());
            }
            self.filled += read;
        };
        if end != self.filled {
            // Bytes beyond the reply of the one command sent: the connection is out of step.
            return Err(ReplyError::Protocol(format!(
                "{} bytes after the reply, with no command waiting for them",
                self.filled - end
            ))
            .into());
        }
        self.filled = 0;
        Ok(&self.buf[..end])
    }
}

/// Appends a command, an array of bulk strings, to `out`.
fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(arg.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}
