//! A minimal HTTP/1.1 client over tokio (hyper's client connection): one connection per
//! request, a deadline on the whole exchange, and a cap on the body read.
//! INVARIANT: only `http://` URLs are fetched (the guard talks to Tessera inside the cluster
//! or through a TLS-terminating sidecar), and no body larger than [`MAX_BODY`] is buffered.

use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;

use crate::error::GuardError;

/// The largest body the guard reads (4 MiB): a JWKS, a catalog or a page of the feed.
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;

/// An answer: status, headers and the whole body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, GuardError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| GuardError::Protocol(format!("{what}: unexpected answer: {e}")))
    }
}

/// Sends one request and reads the whole answer within `timeout`.
pub(crate) async fn send(
    method: Method,
    url: &str,
    headers: &[(HeaderName, String)],
    body: Option<(&'static str, Vec<u8>)>,
    timeout: Duration,
) -> Result<Answer, GuardError> {
    match tokio::time::timeout(timeout, send_inner(method, url, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(GuardError::Http(format!("{url}: timed out"))),
    }
}

async fn send_inner(
    method: Method,
    url: &str,
    headers: &[(HeaderName, String)],
    body: Option<(&'static str, Vec<u8>)>,
) -> Result<Answer, GuardError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| GuardError::Config(format!("not a URL: {url}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(GuardError::Config(format!(
            "only http:// URLs are supported: {url}"
        )));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| GuardError::Config(format!("no host in {url}")))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| GuardError::Http(format!("{url}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| GuardError::Http(format!("{url}: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let mut builder = Request::builder().method(method).uri(path);
    let header_map = builder
        .headers_mut()
        .ok_or_else(|| GuardError::Config(format!("bad request to {url}")))?;
    header_map.insert(
        HOST,
        HeaderValue::from_str(authority.as_str())
            .map_err(|_| GuardError::Config(format!("bad host in {url}")))?,
    );
    for (name, value) in headers {
        let value = HeaderValue::from_str(value)
            .map_err(|_| GuardError::Config(format!("bad `{name}` header value")))?;
        header_map.insert(name.clone(), value);
    }
    let payload = match body {
        Some((content_type, bytes)) => {
            header_map.insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            );
            Bytes::from(bytes)
        }
        None => Bytes::new(),
    };
    let request = builder
        .body(Full::new(payload))
        .map_err(|e| GuardError::Config(format!("{url}: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| GuardError::Http(format!("{url}: {e}")))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| GuardError::Http(format!("{url}: body: {e}")))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// `max-age` of a `Cache-Control` header, if any (`no-store`/`no-cache` count as 0).
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(hyper::header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        if let Some((name, v)) = directive.split_once('=') {
            if name.trim().eq_ignore_ascii_case("max-age") {
                age = v.trim().trim_matches('"').parse::<u64>().ok();
            }
        }
    }
    age.map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=120"),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(120)));
        h.insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        assert_eq!(max_age(&h), Some(Duration::ZERO));
    }
}
