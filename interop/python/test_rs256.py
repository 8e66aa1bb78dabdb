"""RS256 under PyJWT: OpenID Connect Core §15.1 and Discovery §3 require every provider to
support and list RS256. Checks that discovery lists it, that the JWKS publishes the RSA key, and
that a client-credentials token of an app created with `token_signing_alg: "RS256"` verifies
with PyJWT from the JWKS, and with nothing else.

Run by .ci/interop.sh, which sets, besides the variables of test_interop.py:
  TESSERA_ISSUER               the issuer URL (also the server's base)
  TESSERA_RS256_CLIENT_ID      a confidential private app created with token_signing_alg RS256
  TESSERA_RS256_CLIENT_SECRET  its secret
  TESSERA_RS256_INSTALLATION   its installation (ins_…) on TESSERA_ACCOUNT
  TESSERA_AGENCY, TESSERA_ACCOUNT  where it is installed
"""

import base64
import json
import os

import jwt
import pytest
import requests
from jwt.algorithms import RSAAlgorithm

ISSUER = os.environ["TESSERA_ISSUER"].rstrip("/")
CLIENT_ID = os.environ["TESSERA_RS256_CLIENT_ID"]
CLIENT_SECRET = os.environ["TESSERA_RS256_CLIENT_SECRET"]
INSTALLATION = os.environ["TESSERA_RS256_INSTALLATION"]
AGENCY = os.environ["TESSERA_AGENCY"]
ACCOUNT = os.environ["TESSERA_ACCOUNT"]
SCOPE = "contacts.readonly"
TIMEOUT = 10


@pytest.fixture(scope="module")
def metadata():
    response = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def rs256_token(metadata):
    response = requests.post(
        metadata["token_endpoint"],
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": SCOPE, "installation": INSTALLATION},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"].lower() == "bearer", token
    return token["access_token"]


def test_discovery_lists_rs256(metadata):
    # Discovery §3: "The value RS256 MUST be included" in id_token_signing_alg_values_supported.
    assert "RS256" in metadata["id_token_signing_alg_values_supported"], metadata
    assert "RS256" in metadata["access_token_signing_alg_values_supported"], metadata
    # Only client authentication methods (RFC 8414 §2): a bearer token is not one.
    for field in (
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ):
        assert "bearer" not in metadata[field], (field, metadata[field])


def test_jwks_publishes_the_rsa_key(metadata):
    keys = requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    rsa = [k for k in keys if k["kty"] == "RSA"]
    assert rsa, keys
    for jwk in rsa:
        assert jwk["alg"] == "RS256" and jwk["use"] == "sig" and jwk["kid"], jwk
        assert "d" not in jwk and "p" not in jwk, "the JWKS publishes a private key"
        key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        assert key.key_size >= 2048, key.key_size


def test_rs256_client_credentials_token_verifies_with_pyjwt(metadata, rs256_token):
    header = jwt.get_unverified_header(rs256_token)
    assert header.get("alg") == "RS256", header
    assert header.get("typ") == "at+jwt", header
    # The key through PyJWKClient, as a resource server finds it.
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(rs256_token)
    claims = jwt.decode(
        rs256_token,
        signing_key.key,
        algorithms=["RS256"],
        audience=ISSUER,
        issuer=ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"]},
    )
    assert claims["client_id"] == CLIENT_ID
    assert claims["scope"].split() == [SCOPE]
    assert claims["tenant"]["agency"] == AGENCY
    assert claims["tenant"]["account"] == ACCOUNT

    # The same key built by hand from the JWK with RSAAlgorithm.
    keys = requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256", jwk
    public = RSAAlgorithm.from_jwk(json.dumps(jwk))
    assert jwt.decode(rs256_token, public, algorithms=["RS256"], audience=ISSUER)["jti"]


def test_rs256_token_refuses_other_algorithms_and_tampering(metadata, rs256_token):
    keys = requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    kid = jwt.get_unverified_header(rs256_token)["kid"]
    public = RSAAlgorithm.from_jwk(json.dumps(next(k for k in keys if k["kid"] == kid)))
    # A verifier that expects EdDSA or ES256 refuses it.
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(rs256_token, public, algorithms=["ES256"], audience=ISSUER)
    # One claim changed under the signature: refused by PyJWT and by the issuer.
    head, payload, sig = rs256_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "contacts.write"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{head}.{forged_payload}.{sig}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public, algorithms=["RS256"], audience=ISSUER)
    introspected = introspect(metadata, forged)
    assert introspected == {"active": False}, introspected


def test_issuer_verifies_its_rs256_token(metadata, rs256_token):
    # Introspection (RFC 7662) verifies the RS256 signature on the server side.
    answer = introspect(metadata, rs256_token)
    assert answer["active"] is True, answer
    assert answer["client_id"] == CLIENT_ID, answer


def introspect(metadata, token):
    response = requests.post(
        metadata["introspection_endpoint"],
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"token": token},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()
