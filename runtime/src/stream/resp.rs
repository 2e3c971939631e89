//! XREADGROUP replies taken straight from RESP bytes into [`Message`]s.
//!
//! The Redis client parses a reply into a tree of values (an allocation for every id, field
//! name and value, and one for every array) that then has to be taken apart into messages;
//! for a stream read of thousands of messages that was most of the reader thread's time.
//! Here a reply is handled in two passes over the bytes as they arrive:
//!
//! - [`Scan`] finds where the reply ends, resumably: it walks the headers (`*3`, `$12`, ...)
//!   and jumps over string bodies, keeping only a stack of how many elements each open
//!   array still expects, so bytes read later continue the walk instead of starting it
//!   again, and nothing is allocated per element;
//! - [`messages`] then reads the complete reply once, copying each id, field name and value
//!   out of the buffer into the message it belongs to.
//!
//! Shapes, as the Redis client's values taken apart ([`super::redis`]'s earlier parser, kept
//! as the oracle of this module's tests): a nil (`$-1`, `*-1`, RESP3 `_`: the wait ran out)
//! is no message; an array of `[key, entries]` pairs (RESP2) or a map of key to entries
//! (RESP3) gives every stream's entries in order; an entry is `[id, [field, value, ...]]`
//! whose fields are nil for a pending message deleted from the stream since (the consumer
//! dead-letters it: it has no `row`). Ids, names and values are bulk strings (any bytes)
//! or simple strings. An error reply (`-NOGROUP ...`) is [`ReplyError::Server`]; anything
//! else is [`ReplyError::Shape`] or, for bytes that are not RESP, [`ReplyError::Protocol`],
//! with what was found and where.

use std::fmt;

use super::{Message, MessageId};

/// Why a reply gave no messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ReplyError {
    /// Redis answered with an error (its text, e.g. `NOGROUP No such key ...`).
    Server(String),
    /// The bytes are not RESP.
    Protocol(String),
    /// RESP, but not the shape of an XREADGROUP reply.
    Shape(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Server(text) => write!(f, "Redis answered with an error: {text}"),
            ReplyError::Protocol(text) => write!(f, "not a RESP reply: {text}"),
            ReplyError::Shape(text) => {
                write!(f, "an XREADGROUP reply of an unexpected shape: {text}")
            }
        }
    }
}

/// The most bytes of a reply quoted in an error.
const QUOTED: usize = 64;

/// Up to [`QUOTED`] bytes from `at`, escaped, for an error message.
fn quote(buf: &[u8], at: usize) -> String {
    let end = buf.len().min(at.saturating_add(QUOTED));
    let text = buf
        .get(at..end)
        .unwrap_or_default()
        .escape_ascii()
        .to_string();
    match end < buf.len() {
        true => format!("\"{text}\"..."),
        false => format!("\"{text}\""),
    }
}

/// A RESP line: its type byte, the text after it up to the line's end, and where the next
/// byte after the line is.
type Line<'a> = (u8, &'a [u8], usize);

/// The RESP header (or whole simple value) at `at`; `None` when the line has not fully
/// arrived.
fn line(buf: &[u8], at: usize) -> Result<Option<Line<'_>>, ReplyError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some(cr) = buf[at + 1..].iter().position(|&b| b == b'\r') else {
        return Ok(None);
    };
    let cr = at + 1 + cr;
    match buf.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((kind, &buf[at + 1..cr], cr + 2))),
        Some(_) => Err(ReplyError::Protocol(format!(
            "a line not ended by CRLF at byte {at}: {}",
            quote(buf, at)
        ))),
    }
}

/// A RESP length or integer: `-`? digits, at most an `i64`.
fn number(text: &[u8], buf: &[u8], at: usize) -> Result<i64, ReplyError> {
    std::str::from_utf8(text)
        .ok()
        .filter(|t| !t.starts_with('+'))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| {
            ReplyError::Protocol(format!(
                "a length or integer that is not a number at byte {at}: {}",
                quote(buf, at)
            ))
        })
}

/// A length of a string or an aggregate: `-1` (nil) is `None`, below that is not RESP.
fn length(text: &[u8], buf: &[u8], at: usize) -> Result<Option<usize>, ReplyError> {
    match number(text, buf, at)? {
        -1 => Ok(None),
        n if n >= 0 => Ok(Some(n as usize)),
        _ => Err(ReplyError::Protocol(format!(
            "a negative length at byte {at}: {}",
            quote(buf, at)
        ))),
    }
}

/// Finds where the reply at the start of a buffer ends, as its bytes arrive. See the
/// [module docs](self).
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Where the next value (or header) starts.
    at: usize,
    /// Per open aggregate, how many more values it holds.
    open: Vec<u64>,
    /// Whether the first header was read.
    started: bool,
}

impl Scan {
    /// Continues over `buf` (the same bytes as before, and maybe more): the length of the
    /// reply once it is complete, `None` while more bytes are needed.
    pub(super) fn advance(&mut self, buf: &[u8]) -> Result<Option<usize>, ReplyError> {
        loop {
            if self.started && self.open.is_empty() {
                return Ok(Some(self.at));
            }
            let at = self.at;
            let Some((kind, text, mut next)) = line(buf, at)? else {
                return Ok(None);
            };
            // How many values this one holds.
            let children: u64 = match kind {
                b'*' | b'~' | b'>' => length(text, buf, at)?.unwrap_or(0) as u64,
                b'%' => (length(text, buf, at)?.unwrap_or(0) as u64).saturating_mul(2),
                // An attribute comes before the value it describes: that value is its last
                // element, so that the two take one place in the enclosing aggregate.
                b'|' => (length(text, buf, at)?.unwrap_or(0) as u64)
                    .saturating_mul(2)
                    .saturating_add(1),
                b'$' | b'!' | b'=' => {
                    if let Some(n) = length(text, buf, at)? {
                        let end = next.saturating_add(n);
                        if buf.len() < end.saturating_add(2) {
                            return Ok(None);
                        }
                        if &buf[end..end + 2] != b"\r\n" {
                            return Err(ReplyError::Protocol(format!(
                                "a string of {n} bytes not followed by CRLF at byte {at}: {}",
                                quote(buf, at)
                            )));
                        }
                        next = end + 2;
                    }
                    0
                }
                b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => 0,
                _ => {
                    return Err(ReplyError::Protocol(format!(
                        "an unknown RESP type byte at byte {at}: {}",
                        quote(buf, at)
                    )));
                }
            };
            self.at = next;
            self.started = true;
            if let Some(left) = self.open.last_mut() {
                *left -= 1;
            }
            if children > 0 {
                self.open.push(children);
            }
            while self.open.last() == Some(&0) {
                self.open.pop();
            }
        }
    }
}

/// One value's head, as [`Cursor::next`] reads it.
#[derive(Debug)]
enum Item<'a> {
    Nil,
    /// A bulk string's or a simple string's bytes.
    Text(&'a [u8]),
    Error(&'a [u8]),
    Array(usize),
    Map(usize),
    /// Any other value: how many values it holds (an aggregate's elements, which follow).
    Other(u64),
}

/// Reads a complete reply value by value.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn truncated(&self) -> ReplyError {
        ReplyError::Protocol(format!("the reply ends early at byte {}", self.at))
    }

    /// The next value's head; an aggregate's elements follow it.
    fn next(&mut self) -> Result<(Item<'a>, usize), ReplyError> {
        let at = self.at;
        let buf = self.buf;
        let (kind, text, next) = line(buf, at)?.ok_or_else(|| self.truncated())?;
        self.at = next;
        let item = match kind {
            b'$' => match length(text, buf, at)? {
                None => Item::Nil,
                Some(n) => {
                    let end = next.saturating_add(n);
                    let body = buf.get(next..end).ok_or_else(|| self.truncated())?;
                    if buf.get(end..end.saturating_add(2)) != Some(b"\r\n") {
                        return Err(self.truncated());
                    }
                    self.at = end + 2;
                    Item::Text(body)
                }
            },
            // UTF-8, as the Redis client requires (a simple string is text).
            b'+' if std::str::from_utf8(text).is_ok() => Item::Text(text),
            b'+' => {
                return Err(ReplyError::Protocol(format!(
                    "a simple string that is not UTF-8 at byte {at}: {}",
                    quote(buf, at)
                )));
            }
            b'-' => Item::Error(text),
            b'_' => Item::Nil,
            b'*' => match length(text, buf, at)? {
                None => Item::Nil,
                Some(n) => Item::Array(n),
            },
            b'%' => match length(text, buf, at)? {
                None => Item::Nil,
                Some(n) => Item::Map(n),
            },
            b'~' | b'>' => Item::Other(length(text, buf, at)?.unwrap_or(0) as u64),
            // An attribute's last element is the value it describes (as in the scan).
            b'|' => Item::Other(
                (length(text, buf, at)?.unwrap_or(0) as u64)
                    .saturating_mul(2)
                    .saturating_add(1),
            ),
            b'!' | b'=' => {
                if let Some(n) = length(text, buf, at)? {
                    let end = next.saturating_add(n).saturating_add(2);
                    if end > buf.len() {
                        return Err(self.truncated());
                    }
                    self.at = end;
                }
                Item::Other(0)
            }
            b':' | b',' | b'#' | b'(' => Item::Other(0),
            _ => {
                return Err(ReplyError::Protocol(format!(
                    "an unknown RESP type byte at byte {at}: {}",
                    quote(buf, at)
                )));
            }
        };
        Ok((item, at))
    }

    /// Steps over one whole value.
    fn skip(&mut self) -> Result<(), ReplyError> {
        let mut left: u64 = 1;
        while left > 0 {
            left -= 1;
            left = left.saturating_add(match self.next()?.0 {
                Item::Array(n) => n as u64,
                Item::Map(n) => (n as u64).saturating_mul(2),
                Item::Other(n) => n,
                Item::Nil | Item::Text(_) | Item::Error(_) => 0,
            });
        }
        Ok(())
    }

    fn shape(&self, at: usize, expected: &str) -> ReplyError {
        ReplyError::Shape(format!(
            "expected {expected} at byte {at}, found {}",
            quote(self.buf, at)
        ))
    }
}

/// The messages of a complete XREADGROUP reply (as [`Scan`] delimits it), in order. See the
/// [module docs](self) for the shapes.
pub(super) fn messages(reply: &[u8]) -> Result<Vec<Message>, ReplyError> {
    let mut cursor = Cursor { buf: reply, at: 0 };
    let mut out = Vec::new();
    let (top, at) = cursor.next()?;
    match top {
        Item::Nil => {}
        Item::Error(text) => {
            return Err(ReplyError::Server(
                String::from_utf8_lossy(text).into_owned(),
            ));
        }
        Item::Array(streams) => {
            for _ in 0..streams {
                let (pair, at) = cursor.next()?;
                if !matches!(pair, Item::Array(2)) {
                    return Err(cursor.shape(at, "a [stream, entries] pair"));
                }
                cursor.skip()?;
                entries(&mut cursor, &mut out)?;
            }
        }
        Item::Map(streams) => {
            for _ in 0..streams {
                cursor.skip()?;
                entries(&mut cursor, &mut out)?;
            }
        }
        _ => return Err(cursor.shape(at, "an array or map of streams, or nil")),
    }
    if cursor.at != reply.len() {
        return Err(ReplyError::Protocol(format!(
            "{} bytes after the reply's end at byte {}",
            reply.len() - cursor.at,
            cursor.at
        )));
    }
    Ok(out)
}

/// One stream's entries, appended to `out`.
fn entries(cursor: &mut Cursor<'_>, out: &mut Vec<Message>) -> Result<(), ReplyError> {
    let (item, at) = cursor.next()?;
    let Item::Array(n) = item else {
        return Err(cursor.shape(at, "an array of stream entries"));
    };
    // Not more than the bytes could hold: a length is not trusted with memory.
    out.reserve(n.min(cursor.buf.len() / 8));
    for _ in 0..n {
        let (item, at) = cursor.next()?;
        if !matches!(item, Item::Array(2)) {
            return Err(cursor.shape(at, "an entry [id, [field, value, ...]]"));
        }
        let (item, at) = cursor.next()?;
        let id = match item {
            Item::Text(text) => std::str::from_utf8(text).ok().and_then(MessageId::parse),
            _ => None,
        }
        .ok_or_else(|| cursor.shape(at, "a message id <ms>-<seq>"))?;
        let (item, at) = cursor.next()?;
        let fields = match item {
            Item::Nil => Vec::new(),
            Item::Array(n) if n % 2 == 0 => {
                let mut fields = Vec::with_capacity((n / 2).min(cursor.buf.len() / 8));
                for _ in 0..n / 2 {
                    let (name, at) = cursor.next()?;
                    let Item::Text(name) = name else {
                        return Err(cursor.shape(at, "a field name (a string)"));
                    };
                    let (value, at) = cursor.next()?;
                    let Item::Text(value) = value else {
                        return Err(cursor.shape(at, "a field value (a string)"));
                    };
                    let name = match std::str::from_utf8(name) {
                        Ok(name) => name.to_owned(),
                        Err(_) => String::from_utf8_lossy(name).into_owned(),
                    };
                    fields.push((name, value.to_vec()));
                }
                fields
            }
            _ => {
                return Err(cursor.shape(at, "the entry's fields [field, value, ...] or nil"));
            }
        };
        out.push(Message { id, fields });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use redis::Value;

    use super::*;

    /// The earlier parser, over the Redis client's values: the oracle. Same bytes in
    /// (through `redis::parse_redis_value`), same messages out.
    mod oracle {
        use redis::Value;

        use super::super::{Message, MessageId};

        fn text(value: Value) -> Option<Vec<u8>> {
            match value {
                Value::BulkString(bytes) => Some(bytes),
                Value::SimpleString(s) => Some(s.into_bytes()),
                _ => None,
            }
        }

        pub(super) fn parse_read(reply: Value) -> Result<Vec<Message>, Value> {
            let streams = match reply {
                Value::Nil => return Ok(Vec::new()),
                Value::Array(streams)
                    if streams
                        .iter()
                        .all(|s| matches!(s, Value::Array(p) if p.len() == 2)) =>
                {
                    streams
                        .into_iter()
                        .filter_map(|s| match s {
                            Value::Array(mut pair) => pair.pop(),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                }
                Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
                other => return Err(other),
            };
            let mut out = Vec::new();
            for entries in streams {
                let entries = match entries {
                    Value::Array(entries) => entries,
                    other => return Err(other),
                };
                for entry in entries {
                    out.push(parse_entry(entry)?);
                }
            }
            Ok(out)
        }

        fn parse_entry(entry: Value) -> Result<Message, Value> {
            let Value::Array(mut parts) = entry else {
                return Err(entry);
            };
            if parts.len() != 2 {
                return Err(Value::Array(parts));
            }
            let fields = parts.pop().expect("two parts");
            let id = parts.pop().expect("two parts");
            let Some(id) = (match &id {
                Value::BulkString(bytes) => {
                    std::str::from_utf8(bytes).ok().and_then(MessageId::parse)
                }
                Value::SimpleString(s) => MessageId::parse(s),
                _ => None,
            }) else {
                return Err(id);
            };
            let fields = match fields {
                Value::Array(fields) => {
                    let mut out = Vec::with_capacity(fields.len() / 2);
                    let mut fields = fields.into_iter();
                    while let Some(name) = fields.next() {
                        let (Some(name), Some(value)) = (text(name), fields.next().and_then(text))
                        else {
                            return Err(Value::Nil);
                        };
                        let name = String::from_utf8(name)
                            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                        out.push((name, value));
                    }
                    out
                }
                Value::Nil => Vec::new(),
                other => return Err(other),
            };
            Ok(Message { id, fields })
        }
    }

    /// The oracle's messages for `bytes`, or `None` when it finds no reply or another shape.
    fn oracle(bytes: &[u8]) -> Option<Vec<Message>> {
        let value = redis::parse_redis_value(bytes).ok()?;
        if let Value::ServerError(_) = value {
            return None;
        }
        oracle::parse_read(value).ok()
    }

    /// Scans `bytes` in the pieces `cuts` makes, then reads the reply.
    fn read_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<Vec<Message>, ReplyError> {
        let mut scan = Scan::default();
        for &cut in cuts {
            assert_eq!(
                scan.advance(&bytes[..cut])?,
                None,
                "complete at {cut} of {bytes:?}"
            );
        }
        let end = scan.advance(bytes)?.expect("complete");
        assert_eq!(end, bytes.len());
        messages(&bytes[..end])
    }

    fn read(bytes: &[u8]) -> Result<Vec<Message>, ReplyError> {
        read_in_pieces(bytes, &[])
    }

    fn message(id: (u64, u64), fields: &[(&str, &[u8])]) -> Message {
        Message {
            id: MessageId(id.0, id.1),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn a_nil_or_empty_reply_is_no_message() {
        for bytes in [&b"$-1\r\n"[..], b"*-1\r\n", b"_\r\n", b"*0\r\n", b"%0\r\n"] {
            assert_eq!(read(bytes), Ok(Vec::new()), "{bytes:?}");
            assert_eq!(oracle(bytes), Some(Vec::new()), "{bytes:?}");
        }
        // A stream with no entries (what re-reading a drained pending list gives).
        let bytes = b"*1\r\n*2\r\n$1\r\ns\r\n*0\r\n";
        assert_eq!(read(bytes), Ok(Vec::new()));
    }

    #[test]
    fn a_resp2_reply_gives_every_streams_entries_in_order_with_binary_values() {
        let bytes = b"*2\r\n\
            *2\r\n$1\r\na\r\n*2\r\n\
              *2\r\n$3\r\n1-0\r\n*2\r\n$3\r\nrow\r\n$4\r\n\x00\r\n\xff\r\n\
              *2\r\n$5\r\n1-100\r\n*4\r\n$1\r\nx\r\n$0\r\n\r\n+y\r\n+z z\r\n\
            *2\r\n$1\r\nb\r\n*1\r\n\
              *2\r\n+18446744073709551615-7\r\n*-1\r\n";
        let expected = vec![
            message((1, 0), &[("row", b"\x00\r\n\xff")]),
            message((1, 100), &[("x", b""), ("y", b"z z")]),
            message((u64::MAX, 7), &[]),
        ];
        assert_eq!(read(bytes).as_ref(), Ok(&expected));
        assert_eq!(oracle(bytes), Some(expected));
    }

    #[test]
    fn a_resp3_map_reply_and_a_non_utf8_field_name_read_as_the_client_reads_them() {
        let bytes = b"%1\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n5-6\r\n*2\r\n$2\r\n\xc3(\r\n$1\r\nv\r\n";
        let expected = vec![Message {
            id: MessageId(5, 6),
            fields: vec![("\u{fffd}(".to_owned(), b"v".to_vec())],
        }];
        assert_eq!(read(bytes).as_ref(), Ok(&expected));
        assert_eq!(oracle(bytes), Some(expected));
    }

    #[test]
    fn an_error_reply_is_the_servers_error() {
        let bytes = b"-NOGROUP No such key 's' or consumer group 'g'\r\n";
        assert_eq!(
            read(bytes),
            Err(ReplyError::Server(
                "NOGROUP No such key 's' or consumer group 'g'".to_owned()
            ))
        );
    }

    #[test]
    fn replies_of_other_shapes_are_errors_that_say_what_was_expected_and_found() {
        let cases: &[(&[u8], &str)] = &[
            (
                b":1\r\n",
                "expected an array or map of streams, or nil at byte 0, found \":1",
            ),
            (
                b"*1\r\n*3\r\n",
                "expected a [stream, entries] pair at byte 4",
            ),
            (
                b"*1\r\n*2\r\n$1\r\na\r\n$-1\r\n",
                "expected an array of stream entries at byte 15",
            ),
            (
                b"*1\r\n*2\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n1-x\r\n*0\r\n",
                "expected a message id <ms>-<seq> at byte 23",
            ),
            (
                b"*1\r\n*2\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*1\r\n$1\r\nf\r\n",
                "expected the entry's fields [field, value, ...] or nil",
            ),
            (
                b"*1\r\n*2\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n:7\r\n",
                "expected a field value (a string) at byte 43, found \":7\\r\\n\"",
            ),
            (
                b"*1\r\n*2\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n1-1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
                "expected the entry's fields",
            ),
        ];
        for (bytes, expected) in cases {
            let mut scan = Scan::default();
            // Complete RESP, or cut short: either way, read as far as it goes.
            let end = scan.advance(bytes).unwrap().unwrap_or(bytes.len());
            match messages(&bytes[..end]) {
                Err(ReplyError::Shape(text)) => {
                    assert!(text.contains(expected), "{text:?} lacks {expected:?}")
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn bytes_that_are_not_resp_are_protocol_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"hello\r\n", "an unknown RESP type byte at byte 0"),
            (
                b"*x\r\n",
                "a length or integer that is not a number at byte 0",
            ),
            (b"*+1\r\n", "not a number"),
            (b"$-2\r\n", "a negative length at byte 0"),
            (
                b"$3\r\nabcde\r\n",
                "a string of 3 bytes not followed by CRLF",
            ),
            (
                b"*1\r\n$1\r\na\rb",
                "a string of 1 bytes not followed by CRLF at byte 4",
            ),
            (b"*1\r\n+a\rb", "a line not ended by CRLF at byte 4"),
        ];
        for (bytes, expected) in cases {
            match Scan::default().advance(bytes) {
                Err(ReplyError::Protocol(text)) => {
                    assert!(text.contains(expected), "{text:?} lacks {expected:?}")
                }
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
        // Bytes after the reply, or a reply cut short, read without a scan.
        assert!(
            matches!(messages(b"*0\r\n*0\r\n"), Err(ReplyError::Protocol(t)) if t.contains("4 bytes after"))
        );
        assert!(
            matches!(messages(b"*1\r\n*2\r\n"), Err(ReplyError::Protocol(t)) if t.contains("ends early"))
        );
    }

    #[test]
    fn a_scan_waits_for_the_whole_reply_whatever_the_pieces_it_arrives_in() {
        let bytes = b"*1\r\n*2\r\n$4\r\nkey!\r\n*1\r\n*2\r\n$3\r\n9-9\r\n*2\r\n$3\r\nrow\r\n$9\r\n{\"a\":\r\n1}\r\n";
        let all: Vec<usize> = (0..bytes.len()).collect();
        let expected = vec![message((9, 9), &[("row", b"{\"a\":\r\n1}")])];
        assert_eq!(read_in_pieces(bytes, &all), Ok(expected));
        // Attributes and RESP3 aggregates are stepped over as one value each.
        let mut scan = Scan::default();
        let bytes = b"|1\r\n+a\r\n:1\r\n~2\r\n#t\r\n,1.5\r\n";
        assert_eq!(scan.advance(bytes), Ok(Some(bytes.len())));
        let bytes = b"*2\r\n|1\r\n+a\r\n:1\r\n=5\r\ntxt:x\r\n(12\r\n";
        assert_eq!(Scan::default().advance(&bytes[..bytes.len() - 1]), Ok(None));
        // The attribute and the value it describes take one place of the two.
        assert_eq!(Scan::default().advance(bytes), Ok(Some(bytes.len())));
    }

    /// A reply as Redis could send it, and the messages in it.
    #[derive(Debug, Clone)]
    struct Reply {
        streams: Vec<(Vec<u8>, Vec<Entry>)>,
        map: bool,
    }

    #[derive(Debug, Clone)]
    struct Entry {
        id: (u64, u64),
        /// `None`: a deleted pending message.
        fields: Option<Vec<(Text, Text)>>,
    }

    /// A string as a bulk string (any bytes) or a simple string (no CR or LF).
    #[derive(Debug, Clone)]
    enum Text {
        Bulk(Vec<u8>),
        Simple(String),
    }

    impl Text {
        fn bytes(&self) -> &[u8] {
            match self {
                Text::Bulk(b) => b,
                Text::Simple(s) => s.as_bytes(),
            }
        }

        fn encode(&self, out: &mut Vec<u8>) {
            match self {
                Text::Bulk(b) => bulk(out, b),
                Text::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
            }
        }
    }

    fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }

    impl Reply {
        fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            let n = self.streams.len();
            out.extend_from_slice(
                format!("{}{n}\r\n", if self.map { '%' } else { '*' }).as_bytes(),
            );
            for (key, entries) in &self.streams {
                if !self.map {
                    out.extend_from_slice(b"*2\r\n");
                }
                bulk(&mut out, key);
                out.extend_from_slice(format!("*{}\r\n", entries.len()).as_bytes());
                for entry in entries {
                    out.extend_from_slice(b"*2\r\n");
                    bulk(
                        &mut out,
                        format!("{}-{}", entry.id.0, entry.id.1).as_bytes(),
                    );
                    match &entry.fields {
                        None => out.extend_from_slice(b"*-1\r\n"),
                        Some(fields) => {
                            out.extend_from_slice(format!("*{}\r\n", fields.len() * 2).as_bytes());
                            for (name, value) in fields {
                                name.encode(&mut out);
                                value.encode(&mut out);
                            }
                        }
                    }
                }
            }
            out
        }

        fn messages(&self) -> Vec<Message> {
            self.streams
                .iter()
                .flat_map(|(_, entries)| entries)
                .map(|e| Message {
                    id: MessageId(e.id.0, e.id.1),
                    fields: e
                        .fields
                        .iter()
                        .flatten()
                        .map(|(n, v)| {
                            (
                                String::from_utf8_lossy(n.bytes()).into_owned(),
                                v.bytes().to_vec(),
                            )
                        })
                        .collect(),
                })
                .collect()
        }
    }

    fn text() -> impl Strategy<Value = Text> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Text::Bulk),
            // The client reads `+OK` as a value of its own, not as text: left out.
            1 => "[ -~]{0,12}"
                .prop_filter("not OK", |s| s != "OK")
                .prop_map(Text::Simple),
        ]
    }

    fn reply() -> impl Strategy<Value = Reply> {
        let entry = (
            (any::<u64>(), any::<u64>()),
            proptest::option::weighted(0.9, proptest::collection::vec((text(), text()), 0..4)),
        )
            .prop_map(|(id, fields)| Entry { id, fields });
        let stream = (
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(entry, 0..6),
        );
        (proptest::collection::vec(stream, 0..3), any::<bool>())
            .prop_map(|(streams, map)| Reply { streams, map })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn replies_read_as_the_client_reads_them(reply in reply(), cut in any::<prop::sample::Index>()) {
            let bytes = reply.encode();
            let expected = reply.messages();
            prop_assert_eq!(oracle(&bytes), Some(expected.clone()));
            // Arriving in two pieces, cut anywhere.
            let cut = cut.index(bytes.len());
            let cuts: Vec<usize> = if cut == 0 { vec![] } else { vec![cut] };
            prop_assert_eq!(read_in_pieces(&bytes, &cuts), Ok(expected));
        }

        #[test]
        fn damaged_replies_are_errors_or_read_as_the_client_reads_them(
            reply in reply(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = reply.encode();
            let at = at.index(bytes.len());
            bytes[at] = byte;
            bytes.truncate(bytes.len() - cut.index(bytes.len() / 4 + 1));
            // Never a panic; what reads as a complete reply reads as the client reads it.
            let mut scan = Scan::default();
            // (The client reads `+OK` as a value of its own, not as text.)
            if let Ok(Some(end)) = scan.advance(&bytes)
                && let Ok(messages) = messages(&bytes[..end])
                && !bytes.windows(5).any(|w| w == b"+OK\r\n")
            {
                prop_assert_eq!(oracle(&bytes[..end]), Some(messages));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Scan::default().advance(&bytes);
            let _ = messages(&bytes);
        }
    }
}
