//! Authentication: who sent a request. In order, as upstream: a bearer token (static token
//! file, ServiceAccount token, bootstrap token), else a verified client certificate (CN =
//! user, O = groups), else anonymous. A bearer token that matches nothing is a 401 — it is
//! never downgraded to anonymous.
//!
//! ServiceAccount tokens are JWTs signed with HMAC-SHA256 under a secret the API servers
//! share through the data dir; they carry the account's namespace, name and uid, and are only
//! accepted while that account still exists with that uid.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::platform::tls::PeerIdentity;

pub const ANONYMOUS: &str = "system:anonymous";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const MASTERS: &str = "system:masters";
pub const NODES: &str = "system:nodes";
pub const NODE_USER_PREFIX: &str = "system:node:";
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";
/// Issuer written into and required of ServiceAccount tokens.
pub const TOKEN_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Lifetime of a requested ServiceAccount token when the request does not say (upstream: 1 h).
pub const DEFAULT_TOKEN_SECONDS: i64 = 3600;
/// Longest a requested token may live.
pub const MAX_TOKEN_SECONDS: i64 = 48 * 3600;
/// Longest bearer token considered (anything longer is refused unread).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS.into(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED.into()],
        }
    }

    /// An authenticated user: every one is also in `system:authenticated`.
    pub fn authenticated(name: &str, uid: &str, groups: &[String]) -> UserInfo {
        let mut all: Vec<String> = groups.to_vec();
        if !all.iter().any(|g| g == AUTHENTICATED) {
            all.push(AUTHENTICATED.into());
        }
        UserInfo {
            name: name.into(),
            uid: uid.into(),
            groups: all,
        }
    }

    pub fn in_group(&self, g: &str) -> bool {
        self.groups.iter().any(|x| x == g)
    }

    /// The node a kubelet's identity names (`system:node:<name>` in `system:nodes`).
    pub fn node_name(&self) -> Option<&str> {
        let name = self.name.strip_prefix(NODE_USER_PREFIX)?;
        (self.in_group(NODES) && !name.is_empty()).then_some(name)
    }
}

/// Parses a static token file: CSV lines `token,user,uid[,"group1,group2"]`.
pub fn parse_token_file(text: &str) -> Result<BTreeMap<String, UserInfo>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (fields, quoted) = match line.split_once(",\"") {
            Some((head, q)) => {
                let q = q
                    .strip_suffix('"')
                    .ok_or_else(|| format!("line {}: unterminated quoted groups", i + 1))?;
                (head, Some(q))
            }
            None => (line, None),
        };
        let parts: Vec<&str> = fields.split(',').map(str::trim).collect();
        let split = |g: &str| -> Vec<String> {
            g.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let (token, user, uid, groups) = match (parts.as_slice(), quoted) {
            ([t, u, id], Some(g)) => (*t, *u, *id, split(g)),
            ([t, u, id], None) => (*t, *u, *id, Vec::new()),
            ([t, u, id, g], None) => (*t, *u, *id, split(g)),
            _ => return Err(format!("line {}: want token,user,uid[,\"groups\"]", i + 1)),
        };
        if token.is_empty() || user.is_empty() {
            return Err(format!("line {}: token and user are required", i + 1));
        }
        out.insert(
            token.to_string(),
            UserInfo::authenticated(user, uid, &groups),
        );
    }
    Ok(out)
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Compares without stopping at the first difference (no timing hint to an attacker).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// Who a valid ServiceAccount token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountClaim {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl ServiceAccountClaim {
    pub fn user(&self) -> UserInfo {
        let name = format!("{SERVICE_ACCOUNT_PREFIX}{}:{}", self.namespace, self.name);
        let groups = [
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{}", self.namespace),
        ];
        UserInfo::authenticated(&name, &self.uid, &groups)
    }
}

/// Issues and verifies ServiceAccount tokens.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl TokenSigner {
    pub fn new(key: &[u8]) -> TokenSigner {
        assert!(key.len() >= 16, "a signing key needs at least 128 bits");
        TokenSigner { key: key.to_vec() }
    }

    /// A token for the account, valid from `now_s` to `expires_s` (Unix seconds).
    pub fn issue(&self, sa: &ServiceAccountClaim, now_s: i64, expires_s: i64) -> String {
        let header = json!({"alg": "HS256", "typ": "JWT"});
        let claims = json!({
            "iss": TOKEN_ISSUER,
            "sub": format!("{SERVICE_ACCOUNT_PREFIX}{}:{}", sa.namespace, sa.name),
            "aud": [TOKEN_ISSUER],
            "iat": now_s,
            "nbf": now_s,
            "exp": expires_s,
            "kubernetes.io": {"namespace": sa.namespace,
                "serviceaccount": {"name": sa.name, "uid": sa.uid}},
        });
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = hmac_sha256(&self.key, signed.as_bytes());
        format!("{signed}.{}", b64(&sig))
    }

    /// The account a token names, if its signature is ours and it is current at `now_s`.
    pub fn verify(&self, token: &str, now_s: i64) -> Option<ServiceAccountClaim> {
        let (signed, sig) = token.rsplit_once('.')?;
        let (header, claims) = signed.split_once('.')?;
        let want = hmac_sha256(&self.key, signed.as_bytes());
        if !same_bytes(&unb64(sig)?, &want) {
            return None;
        }
        let header: Value = serde_json::from_slice(&unb64(header)?).ok()?;
        if header["alg"] != "HS256" {
            return None;
        }
        let c: Value = serde_json::from_slice(&unb64(claims)?).ok()?;
        let current = c["nbf"].as_i64()? <= now_s && now_s < c["exp"].as_i64()?;
        if c["iss"] != TOKEN_ISSUER || !current {
            return None;
        }
        let k = &c["kubernetes.io"];
        Some(ServiceAccountClaim {
            namespace: k["namespace"].as_str()?.to_string(),
            name: k["serviceaccount"]["name"].as_str()?.to_string(),
            uid: k["serviceaccount"]["uid"].as_str()?.to_string(),
        })
    }
}

/// A bootstrap token `<id>.<secret>` (6 and 16 characters of `[a-z0-9]`).
pub fn parse_bootstrap_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// The user a bootstrap token authenticates as, judged against its Secret
/// (`kube-system/bootstrap-token-<id>`, type `bootstrap.kubernetes.io/token`).
pub fn bootstrap_user(
    secret: &Value,
    id: &str,
    token_secret: &str,
    now_ms: i64,
) -> Option<UserInfo> {
    if secret["type"] != "bootstrap.kubernetes.io/token" {
        return None;
    }
    let field = |k: &str| -> Option<String> {
        let encoded = secret["data"][k].as_str()?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        String::from_utf8(raw).ok()
    };
    if field("token-id")? != id
        || !same_bytes(field("token-secret")?.as_bytes(), token_secret.as_bytes())
    {
        return None;
    }
    if field("usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    if let Some(exp) = field("expiration") {
        let exp_ms = crate::api::time::parse_rfc3339(&exp)?;
        if now_ms >= exp_ms {
            return None;
        }
    }
    let mut groups = vec![BOOTSTRAPPERS.to_string()];
    if let Some(extra) = field("auth-extra-groups") {
        let extra: Vec<&str> = extra
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .collect();
        // Upstream's rule: extra groups must be bootstrapper groups, or whoever can write a
        // Secret in kube-system could mint a token in system:masters.
        let prefix = format!("{BOOTSTRAPPERS}:");
        if !extra.iter().all(|g| g.starts_with(&prefix)) {
            return None;
        }
        groups.extend(extra.into_iter().map(String::from));
    }
    Some(UserInfo::authenticated(
        &format!("system:bootstrap:{id}"),
        "",
        &groups,
    ))
}

/// The user a verified client certificate names.
pub fn certificate_user(peer: &PeerIdentity) -> Option<UserInfo> {
    (!peer.common_name.is_empty())
        .then(|| UserInfo::authenticated(&peer.common_name, "", &peer.organizations))
}

/// The bearer token of an `Authorization` header value, if it carries one.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_BYTES)
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_parse_like_upstream() {
        let text = "# comment\nt1,alice,u1\nt2,bob,u2,\"dev,ops\"\nt3,carol,u3,single\n";
        let t = parse_token_file(text).unwrap();
        assert_eq!(t["t1"].name, "alice");
        assert_eq!(t["t1"].groups, [AUTHENTICATED]);
        assert_eq!(t["t2"].groups, ["dev", "ops", AUTHENTICATED]);
        assert_eq!(t["t3"].groups, ["single", AUTHENTICATED]);
        assert!(parse_token_file("onlytoken\n").is_err());
        assert!(parse_token_file(",user,uid\n").is_err());
        assert!(parse_token_file("t,u,id,\"open\n").is_err());
    }

    #[test]
    fn service_account_tokens_verify_only_untampered_and_current() {
        let signer = TokenSigner::new(b"0123456789abcdef0123456789abcdef");
        let sa = ServiceAccountClaim {
            namespace: "team-a".into(),
            name: "default".into(),
            uid: "u-1".into(),
        };
        let token = signer.issue(&sa, 1000, 2000);
        assert_eq!(signer.verify(&token, 1500), Some(sa.clone()));
        assert_eq!(signer.verify(&token, 2000), None, "expired");
        assert_eq!(signer.verify(&token, 999), None, "not yet valid");
        let other = TokenSigner::new(b"another key, also long enough!!!");
        assert_eq!(other.verify(&token, 1500), None, "someone else's signature");
        let mut forged = token.clone();
        forged.insert(forged.find('.').unwrap() + 3, 'x');
        assert_eq!(signer.verify(&forged, 1500), None, "changed claims");
        assert_eq!(sa.user().name, "system:serviceaccount:team-a:default");
        assert!(sa.user().in_group("system:serviceaccounts:team-a"));
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bootstrap_tokens_match_their_secret() {
        assert_eq!(
            parse_bootstrap_token("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        assert_eq!(parse_bootstrap_token("ABCDEF.0123456789abcdef"), None);
        assert_eq!(parse_bootstrap_token("abcdef.short"), None);
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let secret = json!({"type": "bootstrap.kubernetes.io/token", "data": {
            "token-id": enc("abcdef"), "token-secret": enc("0123456789abcdef"),
            "usage-bootstrap-authentication": enc("true"),
            "expiration": enc("2030-01-01T00:00:00Z"),
            "auth-extra-groups": enc("system:bootstrappers:worker")}});
        let u = bootstrap_user(&secret, "abcdef", "0123456789abcdef", 0).unwrap();
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert!(u.in_group(BOOTSTRAPPERS) && u.in_group("system:bootstrappers:worker"));
        assert!(bootstrap_user(&secret, "abcdef", "0123456789abcdeX", 0).is_none());
        let mut escalating = secret.clone();
        escalating["data"]["auth-extra-groups"] = json!(enc("system:masters"));
        assert!(bootstrap_user(&escalating, "abcdef", "0123456789abcdef", 0).is_none());
        let late = crate::api::time::parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
        assert!(bootstrap_user(&secret, "abcdef", "0123456789abcdef", late).is_none());
    }

    #[test]
    fn identities() {
        let node = UserInfo::authenticated("system:node:n1", "", &[NODES.into()]);
        assert_eq!(node.node_name(), Some("n1"));
        assert_eq!(
            UserInfo::authenticated("system:node:n1", "", &[]).node_name(),
            None
        );
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        let peer = PeerIdentity {
            common_name: "kubernetes-admin".into(),
            organizations: vec![MASTERS.into()],
        };
        assert!(certificate_user(&peer).unwrap().in_group(MASTERS));
    }
}
