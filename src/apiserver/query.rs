//! URL query strings (`?a=b&c=d`), percent-decoded.

use std::collections::BTreeMap;

/// Longest query string accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// The query's parameters (the last value wins when a name repeats).
pub fn parse(query: Option<&str>) -> Result<BTreeMap<String, String>, String> {
    let Some(q) = query else {
        return Ok(BTreeMap::new());
    };
    if q.len() > MAX_QUERY_BYTES {
        return Err(format!("query string longer than {MAX_QUERY_BYTES} bytes"));
    }
    let mut out = BTreeMap::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k)?, decode(v)?);
    }
    Ok(out)
}

/// Percent-decoding with `+` as a space.
pub fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("query parameter {s:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_parameters() {
        let q = parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&x")).unwrap();
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert!(parse(Some("a=%zz")).is_err());
        assert!(parse(Some("a=%e2")).is_err());
        assert!(parse(None).unwrap().is_empty());
    }
}
