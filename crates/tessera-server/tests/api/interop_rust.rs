//! Interop with Rust client libraries we did not write: `openidconnect` 4 and `oauth2` 5 drive a
//! real server on 127.0.0.1 port 0 — discovery and the JWKS, the code flow with PKCE S256
//! through the sign-in and consent pages, EdDSA id-token verification with the nonce, refresh
//! rotation, client credentials, introspection (RFC 7662) and userinfo (OIDC Core §5.3).
//! The libraries speak through `SocketClient`, hyper's HTTP/1.1 client connection (no TLS).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::http::{self, Method, StatusCode};
use openidconnect::{
    AccessToken, AsyncHttpClient, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::harness::TestApp;

const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// The libraries' transport: hyper's HTTP/1.1 client connection (the hyper the server uses).

/// One request per connection, `http://` only.
#[derive(Clone, Copy, Debug, Default)]
struct SocketClient;

impl<'c> AsyncHttpClient<'c> for SocketClient {
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, io::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(request))
    }
}

fn failed(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

async fn send(request: HttpRequest) -> io::Result<HttpResponse> {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;

    let uri = request.uri().clone();
    if uri.scheme_str() != Some("http") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("only http:// is supported, not `{uri}`"),
        ));
    }
    let host = uri.host().ok_or_else(|| failed("the URL has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(failed)?;
    tokio::spawn(connection);
    // Origin form on the wire (RFC 9112 §3.2.1), the authority in `Host`.
    let (mut parts, body) = request.into_parts();
    parts.uri = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(failed)?;
    parts.headers.insert(
        http::header::HOST,
        format!("{host}:{port}").parse().map_err(failed)?,
    );
    let response = sender
        .send_request(http::Request::from_parts(
            parts,
            Full::new(Bytes::from(body)),
        ))
        .await
        .map_err(failed)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(failed)?.to_bytes();
    Ok(http::Response::from_parts(parts, body.to_vec()))
}

// ---------------------------------------------------------------------------------------------
// The server, its fixtures, and a browser for the pages.

/// A real server on 127.0.0.1 port 0, its issuer `http://127.0.0.1:<port>`.
struct Server {
    app: TestApp,
    issuer: String,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let app = TestApp::sqlite_with_issuer(&issuer).await;
        let router = tessera_server::app(app.state.clone()).unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Self { app, issuer }
    }

    fn redirect(&self) -> String {
        // Registered, never followed: the test reads the `Location` instead.
        format!("{}/callback", self.issuer)
    }

    async fn discover(&self) -> CoreProviderMetadata {
        CoreProviderMetadata::discover_async(
            IssuerUrl::new(self.issuer.clone()).unwrap(),
            &SocketClient,
        )
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e} ({e:?})"))
    }
}

/// A confidential private app installed on an account, and a user who may sign in there.
struct Fixture {
    client_id: String,
    secret: String,
    email: String,
    user: String,
}

async fn fixture(s: &Server, name: &str) -> Fixture {
    let app = &s.app;
    let ag = app.agency(name).await;
    let email = format!("pat@{}.test", name.to_lowercase());
    let user = app
        .post(
            &format!("/v1/agencies/{}/users", ag.id),
            &app.admin,
            json!({ "email": email, "name": "Pat", "password": PASSWORD }),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.body);
    let b = app
        .post(
            &format!("/v1/agencies/{}/bindings", ag.id),
            &app.admin,
            json!({ "principal": user.id(), "role": "account_admin", "account": ag.acc }),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    let (client_id, secret, _) =
        crate::harness::installed_app(app, &ag, &s.redirect(), &["contacts.readonly"]).await;
    Fixture {
        client_id,
        secret,
        email,
        user: user.id(),
    }
}

/// A user agent: the socket client, cookies kept by name, forms posted where they point.
#[derive(Default)]
struct Browser {
    jar: Vec<(String, String)>,
}

impl Browser {
    async fn go(
        &mut self,
        method: Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> HttpResponse {
        let mut b = http::Request::builder().method(method).uri(url);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            b = b.header("cookie", cookies.join("; "));
        }
        let body = match form {
            Some(pairs) => {
                b = b.header("content-type", "application/x-www-form-urlencoded");
                serde_urlencoded::to_string(pairs).unwrap().into_bytes()
            }
            None => Vec::new(),
        };
        let resp = send(b.body(body).unwrap()).await.unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.jar.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.jar.push((name.to_owned(), value.to_owned()));
            }
        }
        resp
    }
}

fn text(r: &HttpResponse) -> String {
    String::from_utf8_lossy(r.body()).into_owned()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `attr` on the first tag after `anchor` (`anchor` itself included).
fn attribute(page: &str, anchor: &str, attr: &str) -> String {
    let at = page
        .find(anchor)
        .unwrap_or_else(|| panic!("no `{anchor}` in {page}"));
    let rest = &page[at..];
    let v = rest
        .find(&format!("{attr}=\""))
        .unwrap_or_else(|| panic!("no {attr} after `{anchor}`"))
        + attr.len()
        + 2;
    let end = rest[v..].find('"').unwrap();
    unescape(&rest[v..v + end])
}

/// Posts the page's only form, with its hidden `csrf_token` and `fields`.
async fn submit(
    browser: &mut Browser,
    issuer: &str,
    page: &str,
    fields: &[(&str, &str)],
) -> HttpResponse {
    let action = attribute(page, "<form", "action");
    let url = if action.starts_with('/') {
        format!("{issuer}{action}")
    } else {
        action
    };
    let csrf = attribute(page, "name=\"csrf_token\"", "value");
    let mut form = fields.to_vec();
    form.push(("csrf_token", &csrf));
    browser.go(Method::POST, &url, Some(&form)).await
}

/// Follows `auth_url` through the sign-in and consent pages; returns the redirect `Location`.
async fn sign_in_and_allow(s: &Server, f: &Fixture, auth_url: &str) -> String {
    let mut browser = Browser::default();
    let page = browser.go(Method::GET, auth_url, None).await;
    assert_eq!(page.status(), StatusCode::OK, "{}", text(&page));
    let page = submit(
        &mut browser,
        &s.issuer,
        &text(&page),
        &[("email", &f.email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK, "{}", text(&page));
    assert!(
        text(&page).contains("decision"),
        "consent page expected: {}",
        text(&page)
    );
    let done = submit(
        &mut browser,
        &s.issuer,
        &text(&page),
        &[("decision", "allow")],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "{}", text(&done));
    done.headers()["location"].to_str().unwrap().to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    openidconnect::url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The library's client as discovery builds it: authorization endpoint set, token and userinfo
/// endpoints as the metadata says.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The library's client for the fixture's app, from discovery.
fn oidc_client(s: &Server, f: &Fixture, meta: CoreProviderMetadata) -> DiscoveredClient {
    CoreClient::from_provider_metadata(
        meta,
        ClientId::new(f.client_id.clone()),
        Some(ClientSecret::new(f.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(s.redirect()).unwrap())
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn openidconnect_discovers_the_provider_and_its_eddsa_keys() {
    let s = Server::start().await;
    let meta = s.discover().await;
    assert_eq!(meta.issuer().as_str(), s.issuer);
    assert_eq!(
        meta.authorization_endpoint().as_str(),
        format!("{}/oauth/authorize", s.issuer)
    );
    assert_eq!(
        meta.token_endpoint().map(|u| u.as_str().to_owned()),
        Some(format!("{}/oauth/token", s.issuer))
    );
    assert_eq!(
        meta.userinfo_endpoint().map(|u| u.as_str().to_owned()),
        Some(format!("{}/oauth/userinfo", s.issuer))
    );
    // Ed25519 by default, an ES256 lineage for clients without EdDSA, and the RS256 one that
    // OpenID Connect Discovery §3 requires.
    assert_eq!(
        meta.id_token_signing_alg_values_supported(),
        &vec![
            CoreJwsSigningAlgorithm::EdDsa,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
        ]
    );
    // The JWKS was fetched with the metadata, and its keys are ones the library can use.
    let keys = meta.jwks().keys();
    assert!(!keys.is_empty(), "the JWKS is empty");
    let mut okp = 0;
    for k in keys {
        use openidconnect::JsonWebKey as _;
        assert!(k.key_id().is_some(), "every key has a kid");
        match k.key_type() {
            openidconnect::core::CoreJsonWebKeyType::OctetKeyPair => {
                okp += 1;
                assert!(matches!(
                    k.signing_alg(),
                    openidconnect::JsonWebKeyAlgorithm::Algorithm(CoreJwsSigningAlgorithm::EdDsa)
                        | openidconnect::JsonWebKeyAlgorithm::Unspecified
                ));
            }
            openidconnect::core::CoreJsonWebKeyType::EllipticCurve => assert!(matches!(
                k.signing_alg(),
                openidconnect::JsonWebKeyAlgorithm::Algorithm(
                    CoreJwsSigningAlgorithm::EcdsaP256Sha256
                ) | openidconnect::JsonWebKeyAlgorithm::Unspecified
            )),
            openidconnect::core::CoreJsonWebKeyType::RSA => assert!(matches!(
                k.signing_alg(),
                openidconnect::JsonWebKeyAlgorithm::Algorithm(
                    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
                )
            )),
            other => panic!("unexpected key type {other:?}"),
        }
    }
    assert_eq!(okp, 1, "one Ed25519 key signs");
}

#[tokio::test]
async fn openidconnect_code_flow_with_pkce_verifies_the_id_token_and_refreshes() {
    let s = Server::start().await;
    let f = fixture(&s, "Interop").await;
    let client = oidc_client(&s, &f, s.discover().await);

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("contacts.readonly".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert_eq!(
        query_param(auth_url.as_str(), "code_challenge_method").as_deref(),
        Some("S256")
    );

    let location = sign_in_and_allow(&s, &f, auth_url.as_str()).await;
    assert!(location.starts_with(&s.redirect()), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(s.issuer.as_str())
    );
    let code = query_param(&location, "code").expect("a code in the redirect");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&SocketClient)
        .await
        .unwrap_or_else(|e| panic!("code exchange failed: {e} ({e:?})"));
    let scopes: Vec<String> = tokens
        .scopes()
        .expect("the granted scope is returned")
        .iter()
        .map(|s| s.to_string())
        .collect();
    for want in ["openid", "email", "profile", "contacts.readonly"] {
        assert!(scopes.iter().any(|s| s == want), "{want} not in {scopes:?}");
    }

    // The id token, verified by the library: EdDSA signature against the discovered JWKS,
    // issuer, audience, expiry and the nonce.
    let id_token = tokens.id_token().expect("an id token");
    assert_eq!(
        id_token.signing_alg().unwrap(),
        &CoreJwsSigningAlgorithm::EdDsa
    );
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs([CoreJwsSigningAlgorithm::EdDsa]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .unwrap_or_else(|e| panic!("the id token does not verify: {e} ({e:?})"));
    assert_eq!(claims.subject().as_str(), f.user);
    assert_eq!(claims.issuer().as_str(), s.issuer);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(f.email.as_str()));
    assert!(claims.audiences().iter().any(|a| a.as_str() == f.client_id));
    // A wrong nonce, or a token whose signature was tampered with, is refused.
    let wrong_nonce = id_token.claims(&verifier, &Nonce::new("other".into()));
    assert!(
        matches!(wrong_nonce, Err(ClaimsVerificationError::InvalidNonce(_))),
        "{wrong_nonce:?}"
    );
    let serialized = id_token.to_string();
    let (signed, sig) = serialized.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let forged: openidconnect::core::CoreIdToken =
        format!("{signed}.{flipped}{}", &sig[1..]).parse().unwrap();
    let forged = forged.claims(&verifier, &nonce);
    assert!(
        matches!(
            forged,
            Err(ClaimsVerificationError::SignatureVerification(_))
        ),
        "a tampered signature must be refused: {forged:?}"
    );
    // `at_hash` is OPTIONAL in the code flow (OIDC Core §3.1.3.6): checked when present.
    if let Some(expected) = claims.access_token_hash() {
        let actual = openidconnect::AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected, "at_hash");
    }

    // Refresh rotates: a new refresh token and a new access token.
    let rt1 = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&rt1)
        .unwrap()
        .request_async(&SocketClient)
        .await
        .unwrap_or_else(|e| panic!("refresh failed: {e} ({e:?})"));
    let rt2 = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(rt2.secret(), rt1.secret());
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
}

#[tokio::test]
async fn oauth2_client_credentials_token_is_active_on_introspection() {
    let s = Server::start().await;
    let f = fixture(&s, "Machine").await;
    let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(f.client_id.clone()))
        .set_client_secret(oauth2::ClientSecret::new(f.secret.clone()))
        .set_token_uri(TokenUrl::new(format!("{}/oauth/token", s.issuer)).unwrap())
        .set_introspection_url(
            IntrospectionUrl::new(format!("{}/oauth/introspect", s.issuer)).unwrap(),
        );
    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("contacts.readonly".into()))
        .request_async(&SocketClient)
        .await
        .unwrap_or_else(|e| panic!("client credentials failed: {e} ({e:?})"));
    assert_eq!(token.token_type(), &oauth2::basic::BasicTokenType::Bearer);
    assert!(token.expires_in().is_some());
    assert!(
        token.refresh_token().is_none(),
        "RFC 6749 §4.4.3: no refresh token"
    );

    let info = client
        .introspect(token.access_token())
        .request_async(&SocketClient)
        .await
        .unwrap_or_else(|e| panic!("introspection failed: {e} ({e:?})"));
    assert!(info.active());
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(f.client_id.as_str())
    );
    assert_eq!(info.iss(), Some(s.issuer.as_str()));
    assert!(info.exp().is_some());
    let scopes: Vec<String> = info
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["contacts.readonly"]);

    // Something that is no token of ours is inactive, not an error.
    let info = client
        .introspect(&AccessToken::new("not-a-token".into()))
        .request_async(&SocketClient)
        .await
        .unwrap();
    assert!(!info.active());
}

#[tokio::test]
async fn openidconnect_userinfo_returns_the_signed_in_user() {
    let s = Server::start().await;
    let f = fixture(&s, "Profile").await;
    let client = oidc_client(&s, &f, s.discover().await);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let location = sign_in_and_allow(&s, &f, auth_url.as_str()).await;
    let code = query_param(&location, "code").expect("code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&SocketClient)
        .await
        .unwrap();
    let id = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();

    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(id.subject().clone()))
        .unwrap()
        .request_async(&SocketClient)
        .await
        .unwrap_or_else(|e| panic!("userinfo failed: {e} ({e:?})"));
    assert_eq!(info.subject().as_str(), f.user);
    assert_eq!(info.email().map(|e| e.as_str()), Some(f.email.as_str()));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Pat")
    );
    // The library refuses the answer for another subject (token substitution).
    let other = openidconnect::SubjectIdentifier::new("usr_someone_else".into());
    let refused: Result<openidconnect::core::CoreUserInfoClaims, _> = client
        .user_info(tokens.access_token().clone(), Some(other))
        .unwrap()
        .request_async(&SocketClient)
        .await;
    assert!(
        matches!(
            refused,
            Err(openidconnect::UserInfoError::ClaimsVerification(
                ClaimsVerificationError::InvalidSubject(_)
            ))
        ),
        "{refused:?}"
    );
}
