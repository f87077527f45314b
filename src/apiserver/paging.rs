//! `continue` tokens of paginated lists: where the next page starts and the store revision
//! every page is read at (so the pages form one consistent snapshot). Opaque to clients: hex
//! of a small JSON document.

use serde::{Deserialize, Serialize};

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    pub start: Vec<u8>,
    pub revision: i64,
}

#[derive(Serialize, Deserialize)]
struct Token {
    rv: i64,
    /// The last key returned, hex.
    last: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd length".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| "not hex".to_string()))
        .collect()
}

/// The token for a page that ended at `last_key`, read at `revision`.
pub fn encode(last_key: &[u8], revision: i64) -> String {
    let t = Token {
        rv: revision,
        last: hex(last_key),
    };
    hex(&serde_json::to_vec(&t).expect("token serializes"))
}

/// Decodes a token; the next page must lie under `prefix` (a token from another collection
/// is refused).
pub fn decode(token: &str, prefix: &str) -> Result<Continue, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("too long".into());
    }
    let t: Token = serde_json::from_slice(&unhex(token)?).map_err(|e| e.to_string())?;
    let mut start = unhex(&t.last)?;
    if !start.starts_with(prefix.as_bytes()) || t.rv <= 0 {
        return Err("not a token of this list".into());
    }
    start.push(0);
    Ok(Continue {
        start,
        revision: t.rv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_stay_in_their_collection() {
        let t = encode(b"/registry/pods/a/p1", 42);
        let c = decode(&t, "/registry/pods/").unwrap();
        assert_eq!(c.revision, 42);
        assert_eq!(c.start, b"/registry/pods/a/p1\0".to_vec());
        assert!(decode(&t, "/registry/secrets/").is_err());
        assert!(decode("zz", "/registry/pods/").is_err());
        assert!(decode(&"0".repeat(MAX_TOKEN_BYTES + 2), "/").is_err());
    }
}
