//! A watch as a stream of typed events, read line by line from the API server's chunked
//! response (one JSON event per line).

use std::marker::PhantomData;

use http_body_util::BodyExt;
use serde_json::Value;

use super::ClientError;
use crate::api::kind::Kind;
use crate::api::Status;

/// Longest event line accepted (an object is at most the API server's 3 MiB body limit,
/// plus the event envelope).
pub const MAX_WATCH_LINE_BYTES: usize = 4 * 1024 * 1024;

/// One watch event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    Added(K),
    Modified(K),
    Deleted(K),
    /// Progress: everything up to this resourceVersion has been sent.
    Bookmark(String),
    /// The server ended the watch with an error (410 Expired: re-list).
    Error(Box<Status>),
}

/// The events of one watch, in order.
pub struct WatchStream<K> {
    body: hyper::body::Incoming,
    buf: bytes::BytesMut,
    /// `buf[..scanned]` holds no newline: each byte is searched once.
    scanned: usize,
    done: bool,
    _kind: PhantomData<fn() -> K>,
}

/// Parses one event line.
pub fn parse_event<K: Kind>(line: &[u8]) -> Result<Event<K>, ClientError> {
    let bad = |e: String| ClientError::Decode(format!("watch event: {e}"));
    let v: Value = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
    let kind = v["type"].as_str().unwrap_or("").to_string();
    let object = v.get("object").cloned().unwrap_or(Value::Null);
    let typed = |o: Value| serde_json::from_value::<K>(o).map_err(|e| bad(e.to_string()));
    match kind.as_str() {
        "ADDED" => Ok(Event::Added(typed(object)?)),
        "MODIFIED" => Ok(Event::Modified(typed(object)?)),
        "DELETED" => Ok(Event::Deleted(typed(object)?)),
        "BOOKMARK" => {
            let rv = object["metadata"]["resourceVersion"].as_str().unwrap_or("");
            Ok(Event::Bookmark(rv.to_string()))
        }
        "ERROR" => {
            let status: Status = serde_json::from_value(object).map_err(|e| bad(e.to_string()))?;
            Ok(Event::Error(Box::new(status)))
        }
        other => Err(bad(format!("unknown event type {other:?}"))),
    }
}

impl<K: Kind> WatchStream<K> {
    pub fn new(body: hyper::body::Incoming) -> WatchStream<K> {
        WatchStream {
            body,
            buf: bytes::BytesMut::new(),
            scanned: 0,
            done: false,
            _kind: PhantomData,
        }
    }

    /// The next event; `None` when the server ended the watch (its timeout, or a restart).
    pub async fn next(&mut self) -> Option<Result<Event<K>, ClientError>> {
        loop {
            let newline = self.buf[self.scanned..].iter().position(|b| *b == b'\n');
            if let Some(at) = newline {
                let line = self.buf.split_to(self.scanned + at + 1);
                self.scanned = 0;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(parse_event(&line));
            }
            self.scanned = self.buf.len();
            if self.done {
                return None;
            }
            if self.buf.len() > MAX_WATCH_LINE_BYTES {
                self.done = true;
                let m = format!("an event line is longer than {MAX_WATCH_LINE_BYTES} bytes");
                return Some(Err(ClientError::Decode(m)));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(ClientError::Unreachable(format!("watch broke: {e}"))));
                }
                None => self.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::core::Pod;

    #[test]
    fn event_lines_parse_into_typed_events() {
        let added = br#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","resourceVersion":"5"}}}"#;
        let Ok(Event::Added(p)) = parse_event::<Pod>(added) else {
            panic!("an ADDED pod")
        };
        assert_eq!(p.metadata.name, "p");
        let bookmark =
            br#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"9"}}}"#;
        assert_eq!(
            parse_event::<Pod>(bookmark).unwrap(),
            Event::Bookmark("9".into())
        );
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old","reason":"Expired","code":410}}"#;
        let Ok(Event::Error(s)) = parse_event::<Pod>(gone) else {
            panic!("an ERROR")
        };
        assert_eq!(s.code, 410);
        assert!(parse_event::<Pod>(b"{\"type\":\"WHAT\"}").is_err());
        assert!(parse_event::<Pod>(b"not json").is_err());
    }
}
