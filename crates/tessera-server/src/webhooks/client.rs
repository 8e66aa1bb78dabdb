//! One delivery attempt: resolve, check, connect, (TLS), POST, read the status.
//!
//! INVARIANT: the socket connects only to an address that was checked after resolution (no
//! second lookup between the check and the connect); redirects are never followed (a 3xx is a
//! failure); the whole attempt is bounded by the total timeout and the response body is
//! never read beyond `MAX_RESPONSE_BODY` bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use url::{Host, Url};

/// Response bytes read at most (then the connection is dropped).
pub const MAX_RESPONSE_BODY: usize = 4096;

/// How an attempt talks to the network.
#[derive(Clone, Debug)]
pub struct Transport {
    /// TLS for https endpoints (Mozilla's roots).
    pub tls: Arc<rustls::ClientConfig>,
    /// Whether internal addresses may be reached.
    pub allow_private: bool,
    /// Bound on resolving and connecting.
    pub connect_timeout: Duration,
    /// Bound on the whole attempt.
    pub total_timeout: Duration,
}

/// The TLS client configuration: ring, TLS 1.2 and 1.3, Mozilla's root store.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS configuration: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What an attempt ended with: the endpoint's status, or why there was none.
pub type Outcome = Result<u16, String>;

/// POSTs `body` with `headers` to `url`.
pub async fn post(
    t: &Transport,
    url: &Url,
    headers: &[(&'static str, String)],
    body: String,
) -> Outcome {
    match tokio::time::timeout(t.total_timeout, attempt(t, url, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timed out after {} ms",
            t.total_timeout.as_millis()
        )),
    }
}

async fn resolve(t: &Transport, url: &Url) -> Result<Vec<SocketAddr>, String> {
    let port = url.port_or_known_default().ok_or("no port")?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(a)) => vec![SocketAddr::new(a.into(), port)],
        Some(Host::Ipv6(a)) => vec![SocketAddr::new(a.into(), port)],
        Some(Host::Domain(d)) => {
            tokio::time::timeout(t.connect_timeout, tokio::net::lookup_host((d, port)))
                .await
                .map_err(|_| "DNS resolution timed out".to_owned())?
                .map_err(|e| format!("cannot resolve `{d}`: {e}"))?
                .collect()
        }
        None => return Err("no host".into()),
    };
    if addrs.is_empty() {
        return Err("the name resolves to no address".into());
    }
    if !t.allow_private {
        // Every address, not just the first: a mixed answer is refused as a whole.
        if let Some(bad) = addrs.iter().find(|a| super::ranges::forbidden(a.ip())) {
            return Err(format!(
                "refused: resolves to the internal address {} (see --webhook-allow-private-targets)",
                bad.ip()
            ));
        }
    }
    Ok(addrs)
}

async fn attempt(
    t: &Transport,
    url: &Url,
    headers: &[(&'static str, String)],
    body: String,
) -> Outcome {
    let addrs = resolve(t, url).await?;
    let mut last = String::from("no address to connect to");
    let mut tcp = None;
    for a in &addrs {
        match tokio::time::timeout(t.connect_timeout, TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = format!("cannot connect to {a}: {e}"),
            Err(_) => last = format!("connecting to {a} timed out"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let _ = tcp.set_nodelay(true);
    let host_header = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut req = hyper::Request::post(path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "Tessera-Webhooks/1")
        .header(hyper::header::CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    if url.scheme() == "https" {
        let name = match url.host() {
            Some(Host::Domain(d)) => rustls::pki_types::ServerName::try_from(d.to_owned())
                .map_err(|e| format!("invalid TLS server name: {e}"))?,
            Some(Host::Ipv4(a)) => {
                rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::V4(a).into())
            }
            Some(Host::Ipv6(a)) => {
                rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::V6(a).into())
            }
            None => return Err("no host".into()),
        };
        let tls = tokio_rustls::TlsConnector::from(t.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        send(TokioIo::new(tls), req).await
    } else {
        send(TokioIo::new(tcp), req).await
    }
}

async fn send<IO>(io: IO, req: hyper::Request<Full<Bytes>>) -> Outcome
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(conn);
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status().as_u16();
        // Read a little of the body (so a small answer completes cleanly), never more.
        let _ = Limited::new(resp.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await;
        Ok(status)
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn transport(allow_private: bool) -> Transport {
        Transport {
            tls: tls_config().unwrap(),
            allow_private,
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(3),
        }
    }

    /// The check at delivery time is on the resolved address: a name (which creation cannot
    /// judge) that resolves to loopback is refused before any connection.
    #[tokio::test]
    async fn a_name_resolving_to_an_internal_address_is_refused_at_delivery() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = Url::parse(&format!("http://localhost:{port}/hook")).unwrap();
        let err = post(&transport(false), &url, &[], "{}".into())
            .await
            .unwrap_err();
        assert!(
            err.contains("refused: resolves to the internal address"),
            "{err}"
        );
        // Nothing connected.
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a connection was made");
        let url = Url::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap();
        let err = post(&transport(false), &url, &[], "{}".into())
            .await
            .unwrap_err();
        assert!(err.contains("refused"), "{err}");
    }

    /// A redirect is a failure (never followed), a stalled endpoint times out, and a huge
    /// answer is not read beyond the bound.
    #[tokio::test]
    async fn redirects_are_not_followed_and_stalls_time_out() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let n = h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    match n {
                        0 => {
                            let _ = s.write_all(format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{port}/elsewhere\r\ncontent-length: 0\r\n\r\n").as_bytes()).await;
                        }
                        1 => tokio::time::sleep(Duration::from_secs(30)).await,
                        _ => {
                            let big = vec![b'x'; 1 << 20];
                            let _ = s
                                .write_all(
                                    format!(
                                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                                        big.len()
                                    )
                                    .as_bytes(),
                                )
                                .await;
                            let _ = s.write_all(&big).await;
                        }
                    }
                });
            }
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap();
        let t = transport(true);
        assert_eq!(post(&t, &url, &[], "{}".into()).await, Ok(307));
        let started = std::time::Instant::now();
        let err = post(&t, &url, &[], "{}".into()).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(post(&t, &url, &[], "{}".into()).await, Ok(200));
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "the redirect was not followed"
        );
    }
}
