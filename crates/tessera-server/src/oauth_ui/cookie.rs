//! Stateless, tamper-proof cookie values and CSRF tokens for the authorization UI, and the
//! `Set-Cookie` / `Cookie` header plumbing.
//! INVARIANT: a sealed value or CSRF token is accepted only if its HMAC-SHA-256 (under a key
//! derived from the master key) verifies in constant time, for the same kind or binding, before
//! its expiry. Sealing gives integrity, not confidentiality: the payload is readable by anyone
//! holding the cookie, so it must never carry a secret.
//!
//! Hand-written on purpose, not the `cookie` crate's signed/private jar (measured against
//! `cookie` 0.18.2): (1) its signed jar MACs the value alone — not the cookie's name or kind,
//! and no expiry (`Max-Age` is only a hint to the browser, so a copied session cookie would be
//! valid forever) — while a sealed value here binds kind and expiry under the MAC; (2) a CSRF
//! token MACs a binding it does not carry, which no jar does; (3) `cookie` depends on `time`
//! unconditionally (`time`, `time-core`, `deranged`, `powerfmt`, `num-conv`, none in today's
//! build) and its private jar adds `aes-gcm` (`aes`, `ctr`, `ghash`, `polyval`), for
//! confidentiality these values do not need. What it would replace is ~60 lines over `hmac`
//! and `base64`, which the build already has.

use std::fmt;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tessera_token::{ct_eq, MasterKey, SecretBytes};

/// The purpose under which the cookie key was derived from the master key (HKDF info
/// `tessera/cookies/v1`, see [`MasterKey::derive_key`]); that derivation is now the stored
/// `cookies` secret's first version (`crate::secrets::root`).
pub const KEY_PURPOSE: &str = "cookies/v1";
/// Domain separation: a sealed value can never pass for a CSRF token, or the reverse.
const SEAL_TAG: &[u8] = b"tessera/cookie/seal/v1";
const CSRF_TAG: &[u8] = b"tessera/cookie/csrf/v1";
/// The first byte of a sealed value, so the format can change without ambiguity.
const SEAL_VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const EXPIRY_LEN: usize = 8;
/// Browsers keep at most about 4096 bytes per cookie; longer input is refused before decoding.
const MAX_ENCODED_LEN: usize = 4096;

/// How long a CSRF token is valid, in seconds.
pub const CSRF_LIFETIME_SECS: i64 = 3600;

/// The HMAC-SHA-256 key that authenticates cookie values and CSRF tokens. Printed as
/// `[redacted]`, zeroized on drop.
#[derive(Clone)]
pub struct CookieKey(SecretBytes<32>);

impl CookieKey {
    /// The cookie key of this installation: HKDF-SHA-256 of the master key with info
    /// `tessera/cookies/v1`, so every node derives the same key and no extra secret is stored.
    pub fn from_master(master: &MasterKey) -> CookieKey {
        CookieKey(master.derive_key(KEY_PURPOSE))
    }

    /// The stored (unwrapped) cookie key.
    pub fn from_secret(key: SecretBytes<32>) -> CookieKey {
        CookieKey(key)
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> CookieKey {
        CookieKey(SecretBytes::new(bytes))
    }

    /// A cookie-safe string (base64url, no padding) that authenticates `kind`, `expires_at`
    /// (epoch seconds) and `payload`. The payload is visible to whoever holds the string: this
    /// protects its integrity only, so it may carry ids and times, never a secret.
    pub fn seal(&self, kind: &str, payload: &[u8], expires_at: i64) -> String {
        let expiry = expires_at.to_be_bytes();
        let mac = self.mac(&[SEAL_TAG, kind.as_bytes(), &expiry, payload]);
        let mut blob = Vec::with_capacity(1 + EXPIRY_LEN + payload.len() + MAC_LEN);
        blob.push(SEAL_VERSION);
        blob.extend_from_slice(&expiry);
        blob.extend_from_slice(payload);
        blob.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(blob)
    }

    /// The payload of `value` if it was sealed by this key for `kind` and has not expired at
    /// `now` (epoch seconds); `None` for anything else, without saying why.
    pub fn open(&self, kind: &str, value: &str, now: i64) -> Option<Vec<u8>> {
        if value.len() > MAX_ENCODED_LEN {
            return None;
        }
        // The engine refuses non-canonical trailing bits, so every string has one meaning.
        let blob = URL_SAFE_NO_PAD.decode(value).ok()?;
        let (&version, rest) = blob.split_first()?;
        if version != SEAL_VERSION || rest.len() < EXPIRY_LEN + MAC_LEN {
            return None;
        }
        let (expiry, rest) = rest.split_at(EXPIRY_LEN);
        let (payload, mac) = rest.split_at(rest.len() - MAC_LEN);
        let expected = self.mac(&[SEAL_TAG, kind.as_bytes(), expiry, payload]);
        if !ct_eq(&expected, mac) {
            return None;
        }
        let expires_at = i64::from_be_bytes(expiry.try_into().ok()?);
        (now < expires_at).then(|| payload.to_vec())
    }

    /// A CSRF token bound to `session_binding` (a per-browser value the attacker cannot read,
    /// e.g. a random pre-session cookie), valid for [`CSRF_LIFETIME_SECS`] from `now` (epoch
    /// seconds). The binding itself is not in the token, so the page never reveals it.
    pub fn csrf_token(&self, session_binding: &str, now: i64) -> String {
        let expiry = now.saturating_add(CSRF_LIFETIME_SECS).to_be_bytes();
        let mac = self.mac(&[CSRF_TAG, session_binding.as_bytes(), &expiry]);
        let mut blob = Vec::with_capacity(EXPIRY_LEN + MAC_LEN);
        blob.extend_from_slice(&expiry);
        blob.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(blob)
    }

    /// Whether `token` was issued by [`CookieKey::csrf_token`] for this `session_binding` and has
    /// not expired at `now`. An empty binding never matches: a browser without its binding
    /// cookie has no valid token.
    pub fn check_csrf(&self, session_binding: &str, token: &str, now: i64) -> bool {
        if session_binding.is_empty() || token.len() > MAX_ENCODED_LEN {
            return false;
        }
        let Ok(blob) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        if blob.len() != EXPIRY_LEN + MAC_LEN {
            return false;
        }
        let (expiry, mac) = blob.split_at(EXPIRY_LEN);
        let expected = self.mac(&[CSRF_TAG, session_binding.as_bytes(), expiry]);
        if !ct_eq(&expected, mac) {
            return false;
        }
        let Ok(expiry) = <[u8; EXPIRY_LEN]>::try_from(expiry) else {
            return false;
        };
        now < i64::from_be_bytes(expiry)
    }

    /// HMAC-SHA-256 over `parts`, each prefixed with its length so no two lists of parts
    /// collide (`"ab" + "c"` differs from `"a" + "bc"`).
    fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        // HMAC accepts keys of any length, so this error arm cannot be taken.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose()) else {
            unreachable!("hmac accepts keys of any length");
        };
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A `Set-Cookie` value: `name=value; Path=…; Max-Age=…; HttpOnly; SameSite=Lax`, plus
/// `; Secure` when `secure`. `Lax` (not `Strict`) because the browser arrives at
/// `/oauth/authorize` by a top-level navigation from the client's site and must bring the
/// session along; cross-site POSTs still go without it, and the forms carry a CSRF token anyway.
///
/// `name` must be an HTTP token and `value` cookie-octets (no space, `"`, `,`, `;` or `\`):
/// [`CookieKey::seal`] output is. With `secure` and `path` `/`, a name starting with `__Host-`
/// also stops a sibling subdomain from planting the cookie.
pub fn set_cookie_header(
    name: &str,
    value: &str,
    max_age_secs: i64,
    secure: bool,
    path: &str,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age_secs.max(0)
    )
}

/// The value of the first cookie called `name` across every `Cookie` header (HTTP/2 may split
/// them). Headers that are not visible ASCII are skipped; surrounding double quotes are removed
/// (RFC 6265 §4.1.1). Only the first of several same-named cookies is returned (browsers send
/// the most specific path first); the value still has to pass [`CookieKey::open`].
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
}

/// Whether `issuer_url` is plain `http` on a loopback host (`127.0.0.0/8`, `[::1]`,
/// `localhost`): a development setup where browsers would drop `Secure` cookies. Callers set
/// `Secure` for every other issuer.
pub fn is_loopback_issuer(issuer_url: &str) -> bool {
    let Some(scheme) = issuer_url.get(..7) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http://") {
        return false;
    }
    let rest = issuer_url.get(7..).unwrap_or_default();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host_is_loopback, after_host) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return false;
        };
        let ip = host.parse::<std::net::Ipv6Addr>();
        (ip.is_ok_and(|ip| ip.is_loopback()), after)
    } else {
        let (host, after) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
        let ip = host.parse::<std::net::Ipv4Addr>();
        let loopback =
            host.eq_ignore_ascii_case("localhost") || ip.is_ok_and(|ip| ip.is_loopback());
        (loopback, after)
    };
    // After the host: nothing, or `:` and a port number (so no `user@` and no other host).
    host_is_loopback
        && match after_host.strip_prefix(':') {
            None => after_host.is_empty(),
            Some(port) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn key() -> CookieKey {
        CookieKey::from_bytes([7u8; 32])
    }

    const PAYLOAD: &[u8] = br#"{"sub":"usr_1","agy":"agy_1","auth_time":1700000000}"#;

    #[test]
    fn seal_round_trips() {
        let k = key();
        let v = k.seal("session", PAYLOAD, 2_000);
        assert!(v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(k.open("session", &v, 1_999).as_deref(), Some(PAYLOAD));
        assert_eq!(
            k.open("e", &k.seal("e", b"", 10), 0).as_deref(),
            Some(&b""[..])
        );
        // Deterministic, and a different payload is a different value.
        assert_eq!(v, k.seal("session", PAYLOAD, 2_000));
        assert_ne!(v, k.seal("session", b"x", 2_000));
    }

    #[test]
    fn tampering_with_any_byte_fails() {
        let k = key();
        let v = k.seal("session", PAYLOAD, 2_000);
        let blob = URL_SAFE_NO_PAD.decode(&v).unwrap();
        for i in 0..blob.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = blob.clone();
                bad[i] ^= bit;
                let bad = URL_SAFE_NO_PAD.encode(bad);
                assert_eq!(k.open("session", &bad, 0), None, "byte {i}");
            }
        }
        // Every character of the encoded string, too (including the trailing-bits one).
        for (i, c) in v.char_indices() {
            let other = if c == 'A' { 'B' } else { 'A' };
            let mut bad = v.clone();
            bad.replace_range(i..=i, &other.to_string());
            assert_eq!(k.open("session", &bad, 0), None, "char {i}");
        }
        // Truncated, extended, empty, garbage.
        assert_eq!(k.open("session", &v[..v.len() - 1], 0), None);
        assert_eq!(k.open("session", &format!("{v}A"), 0), None);
        assert_eq!(k.open("session", "", 0), None);
        assert_eq!(k.open("session", "!!!", 0), None);
        assert_eq!(k.open("session", &"A".repeat(10_000), 0), None);
    }

    #[test]
    fn wrong_kind_or_key_fails() {
        let k = key();
        let v = k.seal("session", PAYLOAD, 2_000);
        assert_eq!(k.open("presession", &v, 0), None);
        assert_eq!(k.open("", &v, 0), None);
        assert_eq!(
            CookieKey::from_bytes([8u8; 32]).open("session", &v, 0),
            None
        );
        // Length prefixes: moving bytes between kind and payload does not verify.
        let a = k.seal("ab", b"c", 10);
        assert_eq!(k.open("a", &a, 0), None);
    }

    #[test]
    fn expired_fails() {
        let k = key();
        let v = k.seal("session", PAYLOAD, 2_000);
        assert!(k.open("session", &v, 1_999).is_some());
        assert_eq!(k.open("session", &v, 2_000), None);
        assert_eq!(k.open("session", &v, 3_000), None);
        let past = k.seal("session", PAYLOAD, -5);
        assert_eq!(k.open("session", &past, 0), None);
    }

    #[test]
    fn derived_from_the_master_key() {
        let master = MasterKey::from_bytes([1u8; 32]);
        let a = CookieKey::from_master(&master);
        let b = CookieKey::from_master(&MasterKey::from_bytes([1u8; 32]));
        let v = a.seal("session", PAYLOAD, 10);
        assert!(b.open("session", &v, 0).is_some());
        assert_eq!(
            a.0.expose(),
            master.derive_key("cookies/v1").expose(),
            "info is tessera/cookies/v1"
        );
        assert_ne!(a.0.expose(), &[1u8; 32]);
        let other = CookieKey::from_master(&MasterKey::from_bytes([2u8; 32]));
        assert_eq!(other.open("session", &v, 0), None);
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", key()), "[redacted]");
        assert_eq!(format!("{:#?}", key()), "[redacted]");
    }

    #[test]
    fn csrf_is_bound_and_expires() {
        let k = key();
        let t = k.csrf_token("browser-a", 1_000);
        assert!(!t.contains("browser-a"));
        assert!(k.check_csrf("browser-a", &t, 1_000));
        assert!(k.check_csrf("browser-a", &t, 1_000 + CSRF_LIFETIME_SECS - 1));
        assert!(!k.check_csrf("browser-a", &t, 1_000 + CSRF_LIFETIME_SECS));
        assert!(!k.check_csrf("browser-b", &t, 1_000));
        assert!(!k.check_csrf("browser-a", &k.csrf_token("browser-b", 1_000), 1_000));
        assert!(!CookieKey::from_bytes([9u8; 32]).check_csrf("browser-a", &t, 1_000));
        // An empty binding never matches, even with a token made for it.
        assert!(!k.check_csrf("", &k.csrf_token("", 1_000), 1_000));
        assert!(!k.check_csrf("browser-a", "", 1_000));
        assert!(!k.check_csrf("browser-a", "not base64!", 1_000));
    }

    #[test]
    fn csrf_token_tampering_fails() {
        let k = key();
        let t = k.csrf_token("browser-a", 1_000);
        let blob = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert!(!k.check_csrf("browser-a", &URL_SAFE_NO_PAD.encode(bad), 1_000));
        }
    }

    #[test]
    fn sealed_values_and_csrf_tokens_do_not_mix() {
        let k = key();
        let t = k.csrf_token("browser-a", 1_000);
        assert_eq!(k.open("browser-a", &t, 1_000), None);
        // A sealed value with an empty payload has the CSRF token's length plus one byte.
        let v = k.seal("browser-a", b"", 5_000);
        assert!(!k.check_csrf("browser-a", &v, 1_000));
        assert!(!k.check_csrf("browser-a", &v[1..], 1_000));
    }

    #[test]
    fn set_cookie_header_format() {
        assert_eq!(
            set_cookie_header("__Host-tessera_session", "abc-_", 3600, true, "/"),
            "__Host-tessera_session=abc-_; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            set_cookie_header("s", "v", 60, false, "/oauth"),
            "s=v; Path=/oauth; Max-Age=60; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            set_cookie_header("s", "v", -1, false, "/"),
            "s=v; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
        // A valid header value.
        assert!(HeaderValue::from_str(&set_cookie_header("s", "v", 1, true, "/")).is_ok());
    }

    #[test]
    fn read_cookie_parses_every_header() {
        let mut h = HeaderMap::new();
        assert_eq!(read_cookie(&h, "a"), None);
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2;c=3"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("d=\"4\"; a=other; e="),
        );
        h.append(header::COOKIE, HeaderValue::from_bytes(b"f=\xff").unwrap());
        assert_eq!(read_cookie(&h, "a"), Some("1"));
        assert_eq!(read_cookie(&h, "b"), Some("2"));
        assert_eq!(read_cookie(&h, "c"), Some("3"));
        assert_eq!(read_cookie(&h, "d"), Some("4"));
        assert_eq!(read_cookie(&h, "e"), Some(""));
        assert_eq!(read_cookie(&h, "f"), None);
        assert_eq!(read_cookie(&h, "A"), None);
        assert_eq!(read_cookie(&h, ""), None);
        assert_eq!(read_cookie(&h, "x"), None);
        // A name is matched whole, not as a prefix or suffix.
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("xa=1; ax=2"));
        assert_eq!(read_cookie(&h, "a"), None);
    }

    #[test]
    fn loopback_issuers() {
        for yes in [
            "http://127.0.0.1",
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/tessera",
            "http://[::1]",
            "http://[::1]:9000/x",
            "http://localhost",
            "http://LOCALHOST:3000",
            "HTTP://localhost/",
            "http://localhost?x",
        ] {
            assert!(is_loopback_issuer(yes), "{yes}");
        }
        for no in [
            "https://127.0.0.1",
            "https://localhost:8443",
            "http://example.com",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
            "http://localhost@example.com",
            "http://user@localhost",
            "http://example.com#@localhost",
            "http://10.0.0.1",
            "http://[::2]",
            "http://[::1",
            "http://[::1]x",
            "http://localhost:",
            "http://localhost:80x",
            "http://",
            "http:/",
            "",
            "localhost",
            "ftp://localhost",
        ] {
            assert!(!is_loopback_issuer(no), "{no}");
        }
    }
}
