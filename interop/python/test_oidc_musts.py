"""The OIDC / RFC 6750 / RFC 7009 MUSTs an outside security and interop test found missing
(issue 8), checked with outside clients: authlib, PyJWT, requests.

Run by .ci/interop.sh with the fixtures of test_interop.py (its environment variables).
"""

import secrets
import time
import urllib.parse

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

# Helpers and fixtures only: importing a test_* function here would run it twice.
from test_interop import (  # noqa: F401  (metadata and jwks_client are pytest fixtures)
    CLIENT_ID,
    CLIENT_SECRET,
    CODE_SCOPE,
    ISSUER,
    PUBLIC_CLIENT_ID,
    REDIRECT_URI,
    TIMEOUT,
    USER_ID,
    authorize,
    code_flow,
    confidential_session,
    jwks_client,
    metadata,
    parse_form,
)


def _query(location):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)


def _authorization_url(metadata, client, **extra):
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"],
        code_verifier=verifier,
        nonce=secrets.token_urlsafe(16),
        **extra,
    )
    return url, state, verifier


def _page(client, url):
    response = client.get(url, allow_redirects=False, timeout=TIMEOUT, withhold_token=True)
    assert response.status_code == 200, f"{response.status_code} from {url}: {response.text[:2000]}"
    return parse_form(response.text, url)


def test_max_age_zero_forces_the_sign_in_page_and_auth_time_is_returned(metadata, jwks_client):
    """OIDC Core §3.1.2.1: max_age=0 re-authenticates even with a session; auth_time returned."""
    client = confidential_session(
        scope=CODE_SCOPE, redirect_uri=REDIRECT_URI, code_challenge_method="S256"
    )
    code_flow(metadata, client)  # signs in: the session cookie is on `client`
    url, _, _ = _authorization_url(metadata, client)
    assert "password" not in _page(client, url)["inputs"], "the session was not reused"

    url, _, _ = _authorization_url(metadata, client, max_age="0")
    assert "password" in _page(client, url)["inputs"], "max_age=0 did not ask to sign in again"
    for forced in ({"prompt": "login"}, {"max_age": "0"}):
        url, _, _ = _authorization_url(metadata, client, **forced)
        assert "password" in _page(client, url)["inputs"], forced

    url, state, verifier = _authorization_url(metadata, client, max_age="0")
    before = int(time.time()) - 5
    location = authorize(client, url)
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=location,
        state=state,
        code_verifier=verifier,
    )
    key = jwks_client.get_signing_key_from_jwt(token["id_token"])
    claims = jwt.decode(
        token["id_token"],
        key.key,
        algorithms=["EdDSA"],
        audience=CLIENT_ID,
        issuer=ISSUER,
        options={"require": ["auth_time"]},
    )
    assert claims["sub"] == USER_ID
    assert before <= claims["auth_time"] <= int(time.time()) + 5, claims


def test_prompt_none_without_a_session_is_login_required(metadata):
    client = OAuth2Session(
        CLIENT_ID, CLIENT_SECRET, scope=CODE_SCOPE, redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    url, state, _ = _authorization_url(metadata, client, prompt="none")
    response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code in (302, 303), response.text[:2000]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    assert _query(location)["error"] == ["login_required"], location
    assert _query(location)["state"] == [state], location


def test_userinfo_insufficient_scope_names_it_in_www_authenticate(metadata):
    """RFC 6750 §3: a 403 from userinfo carries `error="insufficient_scope"` in its challenge."""
    client = confidential_session()
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    response = requests.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403, response.text
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer"), challenge
    assert 'error="insufficient_scope"' in challenge, challenge
    assert 'scope="openid"' in challenge, challenge

    invalid = requests.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": "Bearer not.a.token"},
        timeout=TIMEOUT,
    )
    assert invalid.status_code == 401
    assert 'error="invalid_token"' in invalid.headers.get("WWW-Authenticate", "")


def test_api_challenge_says_invalid_token_only_for_a_presented_credential():
    """RFC 6750 §3.1: no credential, a bare challenge; a refused one, `error="invalid_token"`."""
    bare = requests.get(f"{ISSUER}/v1/catalog", timeout=TIMEOUT)
    assert bare.status_code == 401
    assert "error=" not in bare.headers["WWW-Authenticate"], bare.headers
    refused = requests.get(
        f"{ISSUER}/v1/catalog", headers={"Authorization": "Bearer a.b.c"}, timeout=TIMEOUT
    )
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"], refused.headers


@pytest.mark.parametrize("mode", ["form_post", "fragment"])
def test_unsupported_response_mode_is_refused(metadata, mode):
    """Only `query` is served: any other response_mode is an error sent back in the query."""
    client = confidential_session(
        scope=CODE_SCOPE, redirect_uri=REDIRECT_URI, code_challenge_method="S256"
    )
    url, state, _ = _authorization_url(metadata, client, response_mode=mode)
    response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code in (302, 303), response.text[:2000]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    assert _query(location)["error"] == ["invalid_request"], location
    assert _query(location)["state"] == [state], location


def test_public_client_revokes_its_own_refresh_token(metadata):
    """RFC 7009 §2.1: a public client identifies itself with `client_id` to revoke."""
    client = OAuth2Session(
        PUBLIC_CLIENT_ID,
        scope=CODE_SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        default_timeout=TIMEOUT,
    )
    token, _ = code_flow(metadata, client)
    response = requests.post(
        metadata["revocation_endpoint"],
        data={
            "client_id": PUBLIC_CLIENT_ID,
            "token": token["refresh_token"],
            "token_type_hint": "refresh_token",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.headers.get("Cache-Control") == "no-store"
    with pytest.raises(OAuthError) as refused:
        client.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant", refused.value


def test_discovery_lists_standard_auth_methods_and_response_modes(metadata):
    for name, methods in metadata.items():
        if name.endswith("_auth_methods_supported"):
            assert "bearer" not in methods, (name, methods)
    assert metadata["response_modes_supported"] == ["query"]
    assert "none" in metadata["revocation_endpoint_auth_methods_supported"]
    assert {"none", "login"} <= set(metadata["prompt_values_supported"])
    assert "auth_time" in metadata["claims_supported"]
