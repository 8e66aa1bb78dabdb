"""Tessera's OAuth 2.x / OIDC endpoints under outside Python clients: authlib, PyJWT, requests.

Run by .ci/interop.sh, which starts a server, creates the fixtures and sets:
  TESSERA_ISSUER            the issuer URL, e.g. http://127.0.0.1:18391 (also the server's base)
  TESSERA_CLIENT_ID         a confidential private app (client_secret_basic / client_secret_post)
  TESSERA_CLIENT_SECRET     its secret
  TESSERA_PUBLIC_CLIENT_ID  a public app (no secret, PKCE only)
  TESSERA_REDIRECT_URI      the redirect URI registered on both apps (nothing listens there)
  TESSERA_INSTALLATION      the confidential app's installation (ins_…) on TESSERA_ACCOUNT
  TESSERA_AGENCY            agy_… owning everything above
  TESSERA_ACCOUNT           acc_… the apps are installed on, where the user is account_admin
  TESSERA_USER_ID           usr_… of that user
  TESSERA_USER_EMAIL        the user's email
  TESSERA_USER_PASSWORD     the user's password
Optional:
  TESSERA_REFRESH_REUSE_WAIT  seconds to wait before presenting a rotated refresh token again
                              (default 0: the contract is that it is rejected at once)
"""

import functools
import html.parser
import os
import secrets
import time
import urllib.parse

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

ISSUER = os.environ["TESSERA_ISSUER"].rstrip("/")
CLIENT_ID = os.environ["TESSERA_CLIENT_ID"]
CLIENT_SECRET = os.environ["TESSERA_CLIENT_SECRET"]
PUBLIC_CLIENT_ID = os.environ["TESSERA_PUBLIC_CLIENT_ID"]
REDIRECT_URI = os.environ["TESSERA_REDIRECT_URI"]
INSTALLATION = os.environ["TESSERA_INSTALLATION"]
AGENCY = os.environ["TESSERA_AGENCY"]
ACCOUNT = os.environ["TESSERA_ACCOUNT"]
USER_ID = os.environ["TESSERA_USER_ID"]
USER_EMAIL = os.environ["TESSERA_USER_EMAIL"]
USER_PASSWORD = os.environ["TESSERA_USER_PASSWORD"]
REUSE_WAIT = float(os.environ.get("TESSERA_REFRESH_REUSE_WAIT", "0"))

CODE_SCOPE = "openid profile email offline_access contacts.readonly"
CC_SCOPE = "contacts.readonly"
TIMEOUT = 10


# --- HTML forms -------------------------------------------------------------------------------


class _FirstForm(html.parser.HTMLParser):
    """Collects the first <form> of a page: method, action, hidden inputs, the first option of
    each <select>, the named submit buttons, and the names of the visible inputs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.form = None
        self.done = False
        self._select = None
        self._pending_text = False

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if self.done:
            return
        if tag == "form" and self.form is None:
            self.form = {
                "method": a.get("method", "get").lower(),
                "action": a.get("action", ""),
                "hidden": {},
                "selects": {},
                "buttons": [],
                "inputs": [],
            }
            return
        if self.form is None:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind == "hidden":
                self.form["hidden"][a["name"]] = a.get("value", "")
            elif kind == "submit":
                self.form["buttons"].append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.form["hidden"].setdefault(a["name"], a.get("value", "on"))
            else:
                self.form["inputs"].append(a["name"])
        elif tag == "button" and a.get("name"):
            self.form["buttons"].append((a["name"], a.get("value", "")))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select is not None:
            selects = self.form["selects"]
            if self._select not in selects or "selected" in a:
                selects[self._select] = a.get("value")  # None: the option's text, filled below
                self._pending_text = "value" not in a

    def handle_data(self, data):
        if self._select is not None and self._pending_text:
            if self.form["selects"].get(self._select) is None:
                self.form["selects"][self._select] = data.strip()
            self._pending_text = False

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "form" and self.form is not None:
            self.done = True


def parse_form(page_html, page_url):
    """The first form of a page, its action resolved against the page's URL."""
    parser = _FirstForm()
    parser.feed(page_html)
    parser.close()
    form = parser.form
    assert form is not None, f"no <form> on the page at {page_url}:\n{page_html[:2000]}"
    form["action"] = urllib.parse.urljoin(page_url, form["action"] or page_url)
    return form


def form_fields(form, **fields):
    """What a browser would post: every hidden input, each select's first option, then `fields`."""
    data = dict(form["hidden"])
    data.update(form["selects"])
    data.update(fields)
    return data


def authorize(session, authorization_url):
    """Drives the sign-in and consent pages like a browser (cookies kept on `session`) and returns
    the Location of the final redirect to the client, which is not followed."""
    # withhold_token: these are browser requests, not API calls with the client's token.
    get = functools.partial(session.get, allow_redirects=False, timeout=TIMEOUT, withhold_token=True)
    response = get(authorization_url)
    url = authorization_url
    for step in range(4):
        if response.status_code in (302, 303):
            location = urllib.parse.urljoin(url, response.headers["Location"])
            if location.startswith(REDIRECT_URI):
                return location
            url = location
            response = get(url)
            continue
        assert response.status_code == 200, (
            f"step {step}: {response.status_code} from {url}: {response.text[:2000]}"
        )
        form = parse_form(response.text, url)
        assert form["method"] == "post", f"the form at {url} does not post: {form}"
        if "password" in form["inputs"]:
            data = form_fields(form, email=USER_EMAIL, password=USER_PASSWORD)
        else:
            decisions = [value for name, value in form["buttons"] if name == "decision"]
            assert "allow" in decisions, f"no decision=allow button on the page at {url}: {form}"
            data = form_fields(form, decision="allow")
        url = form["action"]
        response = session.post(
            url, data=data, allow_redirects=False, timeout=TIMEOUT, withhold_token=True
        )
    raise AssertionError(f"no redirect to {REDIRECT_URI} after four pages; last: {response.text[:2000]}")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def metadata():
    response = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session")
def jwks_client(metadata):
    return jwt.PyJWKClient(metadata["jwks_uri"])


def verify_access_token(token, jwks_client):
    header = jwt.get_unverified_header(token)
    assert header.get("typ") == "at+jwt", header
    assert header.get("alg") == "EdDSA", header
    assert header.get("kid"), header
    key = jwks_client.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience=ISSUER,
        issuer=ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]},
    )


def code_flow(metadata, client):
    """An authorization code flow with PKCE S256 and a nonce; returns the token and the nonce."""
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"], url
    location = authorize(client, url)
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert "error" not in params, location
    assert params.get("state") == [state], location
    assert params.get("iss") == [ISSUER], location  # RFC 9207
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=location,
        state=state,
        code_verifier=verifier,
    )
    return token, nonce


def confidential_session(**kwargs):
    return OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        token_endpoint_auth_method=kwargs.pop("auth", "client_secret_basic"),
        default_timeout=TIMEOUT,
        **kwargs,
    )


# --- tests ------------------------------------------------------------------------------------


def test_discovery(metadata):
    assert metadata["issuer"] == ISSUER
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ):
        assert metadata[endpoint].startswith(ISSUER + "/"), (endpoint, metadata.get(endpoint))
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        metadata["grant_types_supported"]
    )
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    assert "EdDSA" in metadata["id_token_signing_alg_values_supported"]

    rfc8414 = requests.get(f"{ISSUER}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    assert rfc8414.status_code == 200, rfc8414.text
    oauth = rfc8414.json()
    assert oauth["issuer"] == ISSUER
    assert oauth["token_endpoint"] == metadata["token_endpoint"]

    keys = requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    assert keys and all(k.get("kid") for k in keys), keys
    assert any(k["kty"] == "OKP" and k.get("crv") == "Ed25519" for k in keys), keys
    assert all("d" not in k for k in keys), "the JWKS publishes a private key"


def test_code_flow_pkce_refresh_rotation(metadata, jwks_client):
    client = confidential_session(
        scope=CODE_SCOPE, redirect_uri=REDIRECT_URI, code_challenge_method="S256"
    )
    token, nonce = code_flow(metadata, client)
    assert token["token_type"].lower() == "bearer"
    assert token.get("refresh_token"), token
    assert token.get("id_token"), token

    claims = verify_access_token(token["access_token"], jwks_client)
    assert claims["sub"] == USER_ID
    assert claims["client_id"] == CLIENT_ID
    assert "contacts.readonly" in claims["scope"].split()
    assert claims["tenant"]["agency"] == AGENCY

    id_key = jwks_client.get_signing_key_from_jwt(token["id_token"])
    id_claims = jwt.decode(
        token["id_token"],
        id_key.key,
        algorithms=["EdDSA"],
        audience=CLIENT_ID,
        issuer=ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )
    assert id_claims["nonce"] == nonce
    assert id_claims["sub"] == USER_ID

    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    assert refreshed.get("refresh_token") and refreshed["refresh_token"] != first_refresh, (
        "the refresh token was not rotated"
    )
    assert refreshed["access_token"] != token["access_token"]
    assert verify_access_token(refreshed["access_token"], jwks_client)["sub"] == USER_ID

    time.sleep(REUSE_WAIT)
    with pytest.raises(OAuthError) as reused:
        client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    assert reused.value.error == "invalid_grant", reused.value


def test_code_flow_public_client(metadata, jwks_client):
    client = OAuth2Session(
        PUBLIC_CLIENT_ID,
        scope=CODE_SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        default_timeout=TIMEOUT,
    )
    token, _ = code_flow(metadata, client)
    claims = verify_access_token(token["access_token"], jwks_client)
    assert claims["client_id"] == PUBLIC_CLIENT_ID
    assert claims["sub"] == USER_ID
    refreshed = client.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]


def test_code_exchange_with_a_wrong_verifier_is_refused(metadata):
    client = confidential_session(
        scope=CODE_SCOPE, redirect_uri=REDIRECT_URI, code_challenge_method="S256"
    )
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"],
        code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(16),
    )
    location = authorize(client, url)
    with pytest.raises(OAuthError) as refused:
        client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=location,
            state=state,
            code_verifier=secrets.token_urlsafe(48),
        )
    assert refused.value.error == "invalid_grant", refused.value


def test_userinfo(metadata):
    client = confidential_session(
        scope=CODE_SCOPE, redirect_uri=REDIRECT_URI, code_challenge_method="S256"
    )
    code_flow(metadata, client)
    response = client.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["sub"] == USER_ID
    assert info["email"] == USER_EMAIL
    assert info.get("name")

    anonymous = requests.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
    assert anonymous.status_code == 401


@pytest.mark.parametrize("auth", ["client_secret_basic", "client_secret_post"])
def test_client_credentials(metadata, jwks_client, auth):
    client = confidential_session(auth=auth, scope=CC_SCOPE)
    token = client.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", installation=INSTALLATION
    )
    assert token["token_type"].lower() == "bearer"
    assert token["scope"].split() == [CC_SCOPE]
    assert "refresh_token" not in token
    claims = verify_access_token(token["access_token"], jwks_client)
    assert claims["client_id"] == CLIENT_ID
    assert claims["scope"].split() == [CC_SCOPE]
    assert claims["tenant"]["agency"] == AGENCY
    assert claims["tenant"]["account"] == ACCOUNT


def test_client_credentials_single_installation_implied(metadata):
    client = confidential_session(scope=CC_SCOPE)
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["access_token"]


def test_client_credentials_wrong_secret(metadata):
    client = OAuth2Session(CLIENT_ID, CLIENT_SECRET + "x", scope=CC_SCOPE, default_timeout=TIMEOUT)
    with pytest.raises(OAuthError) as refused:
        client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client", refused.value


def test_introspection_then_revocation(metadata):
    client = confidential_session(scope=CC_SCOPE)
    token = client.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", installation=INSTALLATION
    )["access_token"]

    active = client.introspect_token(metadata["introspection_endpoint"], token=token)
    assert active.status_code == 200, active.text
    body = active.json()
    assert body["active"] is True, body
    assert body["client_id"] == CLIENT_ID
    assert body["scope"].split() == [CC_SCOPE]
    assert body["sub"]
    assert body["exp"] > body["iat"]
    assert body["tenant"]["agency"] == AGENCY
    assert body["tenant"]["account"] == ACCOUNT

    revoked = client.revoke_token(
        metadata["revocation_endpoint"], token=token, token_type_hint="access_token"
    )
    assert revoked.status_code == 200, revoked.text

    inactive = client.introspect_token(metadata["introspection_endpoint"], token=token)
    assert inactive.status_code == 200, inactive.text
    assert inactive.json() == {"active": False}


def test_introspection_of_garbage_is_inactive(metadata):
    client = confidential_session()
    response = client.introspect_token(metadata["introspection_endpoint"], token="not-a-token")
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}


def test_client_credentials_requests_oauthlib(metadata):
    from oauthlib.oauth2 import BackendApplicationClient
    from requests_oauthlib import OAuth2Session as OAuthlibSession

    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # http on loopback
    session = OAuthlibSession(client=BackendApplicationClient(client_id=CLIENT_ID), scope=[CC_SCOPE])
    token = session.fetch_token(
        token_url=metadata["token_endpoint"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope=CC_SCOPE,  # requests-oauthlib sends the session's scope only when passed here
        installation=INSTALLATION,
        timeout=TIMEOUT,
    )
    assert token["access_token"]
    assert token["scope"] == [CC_SCOPE]


def test_form_helper_reads_a_consent_page():
    form = parse_form(
        """<html><body><!-- <form action="/nope"> -->
        <form method="POST" action="/oauth/authorize/consent?x=1&amp;y=2">
          <input type="hidden" name="csrf_token" value="a&quot;b">
          <input type='hidden' name=request_id value=r1 />
          <select name="account"><option value="acc_1">One</option><option>Two</option></select>
          <button type="submit" name="decision" value="allow">Allow</button>
          <button type="submit" name="decision" value="deny">Deny</button>
        </form><form action="/second"><input type="hidden" name="other" value="1"></form>
        </body></html>""",
        "http://127.0.0.1:9/oauth/authorize?client_id=app_1",
    )
    assert form == {
        "method": "post",
        "action": "http://127.0.0.1:9/oauth/authorize/consent?x=1&y=2",
        "hidden": {"csrf_token": 'a"b', "request_id": "r1"},
        "selects": {"account": "acc_1"},
        "buttons": [("decision", "allow"), ("decision", "deny")],
        "inputs": [],
    }
    login = parse_form(
        '<form method="post"><input type="hidden" name="csrf_token" value="c">'
        '<input type="email" name="email"><input type="password" name="password">'
        '<select name="account"><option>text-only</option></select></form>',
        "http://127.0.0.1:9/oauth/authorize?a=b",
    )
    assert login["action"] == "http://127.0.0.1:9/oauth/authorize?a=b"
    assert login["inputs"] == ["email", "password"]
    assert form_fields(login, email="e", password="p") == {
        "csrf_token": "c",
        "account": "text-only",
        "email": "e",
        "password": "p",
    }
