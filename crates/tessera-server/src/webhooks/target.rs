//! Where a webhook may deliver: an absolute `http`/`https` URL, and (unless private targets
//! are allowed) never an address inside the network the server runs in (SSRF).
//!
//! INVARIANT: with private targets refused, no delivery connects to a loopback, private,
//! link-local, CGNAT, multicast, broadcast, documentation, reserved or unspecified address:
//! literal IPs are refused at creation, and every address a name resolves to is checked at
//! delivery time, right before connecting to that very address (DNS rebinding).

use std::net::IpAddr;

use url::{Host, Url};

use super::ranges::forbidden;
use crate::error::{ApiError, ErrorCode};

/// The longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Parses and checks a webhook URL (literal IPs checked here too).
pub fn parse(value: &str, allow_private: bool) -> Result<Url, ApiError> {
    if value.len() > MAX_URL_LEN {
        return Err(ApiError::invalid(format!(
            "`url` must be at most {MAX_URL_LEN} bytes"
        )));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::invalid(
            "`url` must not contain spaces or control characters",
        ));
    }
    let url = Url::parse(value)
        .map_err(|e| ApiError::invalid(format!("`url` is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::invalid("`url` must be http or https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid("`url` must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(ApiError::invalid("`url` must not have a fragment"));
    }
    let host = url
        .host()
        .ok_or_else(|| ApiError::invalid("`url` must name a host"))?;
    if !allow_private {
        let ip = match host {
            Host::Ipv4(a) => Some(IpAddr::V4(a)),
            Host::Ipv6(a) => Some(IpAddr::V6(a)),
            Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    return Err(refused("`localhost`"));
                }
                None
            }
        };
        if let Some(ip) = ip {
            if forbidden(ip) {
                return Err(refused(&ip.to_string()));
            }
        }
    }
    Ok(url)
}

/// The refusal of a private target.
pub fn refused(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::TargetRefused,
        format!("webhook target {what} is a loopback, private, link-local or otherwise internal address; the server refuses those unless started with --webhook-allow-private-targets"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        assert!(parse("https://siem.example.com/hook?x=1", false).is_ok());
        assert!(parse("http://93.184.216.34:8080/", false).is_ok());
        for (bad, code) in [
            ("ftp://example.com/", ErrorCode::InvalidRequest),
            ("https://user:pw@example.com/", ErrorCode::InvalidRequest),
            ("https://example.com/#frag", ErrorCode::InvalidRequest),
            ("/relative", ErrorCode::InvalidRequest),
            ("https://exa mple.com/", ErrorCode::InvalidRequest),
            ("http://127.0.0.1:9/", ErrorCode::TargetRefused),
            ("http://2130706433/", ErrorCode::TargetRefused),
            ("http://0x7f.1/", ErrorCode::TargetRefused),
            ("http://[::1]/", ErrorCode::TargetRefused),
            ("http://[::ffff:169.254.169.254]/", ErrorCode::TargetRefused),
            ("http://localhost:8080/", ErrorCode::TargetRefused),
            ("http://LOCALHOST./", ErrorCode::TargetRefused),
            (
                "http://169.254.169.254/latest/meta-data",
                ErrorCode::TargetRefused,
            ),
        ] {
            assert_eq!(parse(bad, false).unwrap_err().code, code, "{bad}");
        }
        assert!(parse("http://127.0.0.1:9/", true).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            parse(&long, false).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }
}
