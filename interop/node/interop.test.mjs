// Tessera's OAuth 2.x / OIDC endpoints under outside Node clients: openid-client 6 (a certified
// relying party, strict about the protocol) and jose 6. `node --test` in this folder; run by
// .ci/interop.sh, which sets the variables documented in ../python/test_interop.py:
// TESSERA_ISSUER, TESSERA_CLIENT_ID, TESSERA_CLIENT_SECRET, TESSERA_PUBLIC_CLIENT_ID,
// TESSERA_REDIRECT_URI, TESSERA_INSTALLATION, TESSERA_AGENCY, TESSERA_ACCOUNT, TESSERA_USER_ID,
// TESSERA_USER_EMAIL, TESSERA_USER_PASSWORD.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as jose from 'jose';
import * as client from 'openid-client';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see interop/README.md)`);
  return value;
}
const ISSUER = env('TESSERA_ISSUER').replace(/\/+$/, '');
const CLIENT_ID = env('TESSERA_CLIENT_ID');
const CLIENT_SECRET = env('TESSERA_CLIENT_SECRET');
const PUBLIC_CLIENT_ID = env('TESSERA_PUBLIC_CLIENT_ID');
const REDIRECT_URI = env('TESSERA_REDIRECT_URI');
const INSTALLATION = env('TESSERA_INSTALLATION');
const AGENCY = env('TESSERA_AGENCY');
const ACCOUNT = env('TESSERA_ACCOUNT');
const USER_ID = env('TESSERA_USER_ID');
const USER_EMAIL = env('TESSERA_USER_EMAIL');
const USER_PASSWORD = env('TESSERA_USER_PASSWORD');
const CODE_SCOPE = 'openid profile email offline_access contacts.readonly';
const CC_SCOPE = 'contacts.readonly';

// --- HTML forms -------------------------------------------------------------------------------

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1].toLowerCase() === 'x' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function parseAttributes(text) {
  const attributes = {};
  const re = /([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  for (const m of text.matchAll(re)) {
    attributes[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attributes;
}

/** The first <form> of a page: method, action (resolved against the page's URL), hidden inputs,
 *  the first (or selected) option of each <select>, named buttons, names of visible inputs. */
export function parseForm(html, pageUrl) {
  const page = html.replace(/<!--[\s\S]*?-->/g, '');
  const open = /<form\b((?:[^>"']|"[^"]*"|'[^']*')*)>/i.exec(page);
  assert.ok(open, `no <form> on the page at ${pageUrl}:\n${html.slice(0, 2000)}`);
  const rest = page.slice(open.index + open[0].length);
  const close = rest.search(/<\/form\s*>/i);
  const body = close === -1 ? rest : rest.slice(0, close);
  const attributes = parseAttributes(open[1]);
  const form = {
    method: (attributes.method || 'get').toLowerCase(),
    action: new URL(attributes.action || pageUrl, pageUrl).href,
    hidden: {},
    selects: {},
    buttons: [],
    inputs: [],
  };
  let select = null;
  const tags = /<(\/?)(input|button|select|option)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/gi;
  for (const m of body.matchAll(tags)) {
    const [, closing, rawTag, rawAttributes] = m;
    const tag = rawTag.toLowerCase();
    const a = parseAttributes(rawAttributes);
    if (closing) {
      if (tag === 'select') select = null;
      continue;
    }
    if (tag === 'input' && a.name) {
      const type = (a.type || 'text').toLowerCase();
      if (type === 'hidden') form.hidden[a.name] = a.value ?? '';
      else if (type === 'submit') form.buttons.push([a.name, a.value ?? '']);
      else if (type === 'checkbox' || type === 'radio') {
        if ('checked' in a && !(a.name in form.hidden)) form.hidden[a.name] = a.value ?? 'on';
      } else form.inputs.push(a.name);
    } else if (tag === 'button' && a.name) {
      form.buttons.push([a.name, a.value ?? '']);
    } else if (tag === 'select' && a.name) {
      select = a.name;
    } else if (tag === 'option' && select !== null) {
      if (!(select in form.selects) || 'selected' in a) {
        const text = body.slice(m.index + m[0].length).split('<', 1)[0];
        form.selects[select] = a.value ?? decodeEntities(text.trim());
      }
    }
  }
  return form;
}

// --- a browser, minimal: a cookie jar, no redirects followed ----------------------------------

class Browser {
  cookies = new Map();

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((attr) => {
        const [k, v = ''] = attr.split('=').map((s) => s.trim());
        if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now();
        return false;
      });
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  /** Signs in and consents through the HTML pages; returns the final redirect's Location. */
  async authorize(authorizationUrl) {
    let url = authorizationUrl.href;
    let response = await this.request(url);
    for (let step = 0; step < 4; step += 1) {
      if (response.status === 302 || response.status === 303) {
        const location = new URL(response.headers.get('location'), url).href;
        if (location.startsWith(REDIRECT_URI)) return location;
        url = location;
        response = await this.request(url);
        continue;
      }
      const html = await response.text();
      assert.equal(response.status, 200, `step ${step}: ${response.status} from ${url}: ${html.slice(0, 2000)}`);
      const form = parseForm(html, url);
      assert.equal(form.method, 'post', `the form at ${url} does not post`);
      const fields = { ...form.hidden, ...form.selects };
      if (form.inputs.includes('password')) {
        Object.assign(fields, { email: USER_EMAIL, password: USER_PASSWORD });
      } else {
        const decisions = form.buttons.filter(([name]) => name === 'decision').map(([, v]) => v);
        assert.ok(decisions.includes('allow'), `no decision=allow button at ${url}: ${JSON.stringify(form)}`);
        fields.decision = 'allow';
      }
      url = form.action;
      response = await this.request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields),
      });
    }
    throw new Error(`no redirect to ${REDIRECT_URI} after four pages`);
  }
}

// --- clients ----------------------------------------------------------------------------------

const insecure = { execute: [client.allowInsecureRequests] };
let confidential;
function confidentialClient() {
  confidential ??= client.discovery(
    new URL(ISSUER),
    CLIENT_ID,
    { client_secret: CLIENT_SECRET, id_token_signed_response_alg: 'EdDSA' },
    client.ClientSecretBasic(CLIENT_SECRET),
    insecure,
  );
  return confidential;
}
let publicOne;
function publicClient() {
  publicOne ??= client.discovery(
    new URL(ISSUER),
    PUBLIC_CLIENT_ID,
    { id_token_signed_response_alg: 'EdDSA' },
    client.None(),
    insecure,
  );
  return publicOne;
}
let jwks;
async function verifyAccessToken(config, token) {
  jwks ??= jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    issuer: ISSUER,
    audience: ISSUER,
    typ: 'at+jwt',
    algorithms: ['EdDSA'],
    requiredClaims: ['sub', 'exp', 'iat', 'nbf', 'jti'],
  });
  assert.ok(protectedHeader.kid, 'the access token has no kid');
  return payload;
}

async function codeFlow(config) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: CODE_SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const location = await new Browser().authorize(url);
  const callback = new URL(location);
  assert.equal(callback.searchParams.get('iss'), ISSUER, 'RFC 9207 `iss` missing or wrong');
  // Checks state, iss, PKCE, and the id_token: signature, iss, aud, exp, iat, nonce.
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  return tokens;
}

// --- tests ------------------------------------------------------------------------------------

test('discovery', async () => {
  const config = await confidentialClient();
  const metadata = config.serverMetadata();
  assert.equal(metadata.issuer, ISSUER);
  for (const endpoint of [
    'authorization_endpoint',
    'token_endpoint',
    'jwks_uri',
    'userinfo_endpoint',
    'introspection_endpoint',
    'revocation_endpoint',
  ]) {
    assert.ok(metadata[endpoint]?.startsWith(`${ISSUER}/`), `${endpoint}: ${metadata[endpoint]}`);
  }
  assert.ok(metadata.supportsPKCE('S256'));
  assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
  assert.ok(metadata.id_token_signing_alg_values_supported.includes('EdDSA'));
});

test('client credentials (client_secret_basic) and jose verification of the access token', async () => {
  const config = await confidentialClient();
  const tokens = await client.clientCredentialsGrant(config, { scope: CC_SCOPE, installation: INSTALLATION });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.expiresIn() > 0);
  const claims = await verifyAccessToken(config, tokens.access_token);
  assert.equal(claims.client_id, CLIENT_ID);
  assert.deepEqual(claims.scope.split(' '), [CC_SCOPE]);
  assert.equal(claims.tenant.agency, AGENCY);
  assert.equal(claims.tenant.account, ACCOUNT);
});

test('a tampered access token fails jose verification', async () => {
  const config = await confidentialClient();
  const { access_token: token } = await client.clientCredentialsGrant(config, { scope: CC_SCOPE });
  const [header, payload, signature] = token.split('.');
  const forged = jose.base64url.encode(
    JSON.stringify({ ...JSON.parse(new TextDecoder().decode(jose.base64url.decode(payload))), scope: 'contacts.write' }),
  );
  await assert.rejects(verifyAccessToken(config, `${header}.${forged}.${signature}`), {
    code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  });
});

test('authorization code + PKCE S256, id_token validated, userinfo', async () => {
  const config = await confidentialClient();
  const tokens = await codeFlow(config);
  const idToken = tokens.claims();
  assert.equal(idToken.sub, USER_ID);
  assert.equal(idToken.aud, CLIENT_ID);
  assert.ok(tokens.refresh_token, 'no refresh token from the code exchange');

  const access = await verifyAccessToken(config, tokens.access_token);
  assert.equal(access.sub, USER_ID);
  assert.equal(access.client_id, CLIENT_ID);

  const info = await client.fetchUserInfo(config, tokens.access_token, idToken.sub);
  assert.equal(info.sub, USER_ID);
  assert.equal(info.email, USER_EMAIL);

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'not rotated');
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), { error: 'invalid_grant' });
});

test('authorization code + PKCE for a public client', async () => {
  const config = await publicClient();
  const tokens = await codeFlow(config);
  assert.equal(tokens.claims().aud, PUBLIC_CLIENT_ID);
  const access = await verifyAccessToken(config, tokens.access_token);
  assert.equal(access.client_id, PUBLIC_CLIENT_ID);
});

test('introspection and revocation through openid-client', async () => {
  const config = await confidentialClient();
  const { access_token: token } = await client.clientCredentialsGrant(config, { scope: CC_SCOPE });
  const active = await client.tokenIntrospection(config, token);
  assert.equal(active.active, true);
  assert.equal(active.client_id, CLIENT_ID);
  await client.tokenRevocation(config, token);
  const inactive = await client.tokenIntrospection(config, token);
  assert.equal(inactive.active, false);
});

test('the form helper reads a consent page', () => {
  const form = parseForm(
    `<html><body><!-- <form action="/nope"> -->
     <form method="POST" action="/oauth/authorize/consent?x=1&amp;y=2">
       <input type="hidden" name="csrf_token" value="a&quot;b">
       <input type='hidden' name=request_id value=r1 />
       <select name="account"><option value="acc_1">One</option><option value="acc_2">Two</option></select>
       <button type="submit" name="decision" value="allow">Allow</button>
       <button type="submit" name="decision" value="deny">Deny</button>
     </form><form action="/second"><input type="hidden" name="other" value="1"></form></body></html>`,
    'http://127.0.0.1:9/oauth/authorize?client_id=app_1',
  );
  assert.deepEqual(form, {
    method: 'post',
    action: 'http://127.0.0.1:9/oauth/authorize/consent?x=1&y=2',
    hidden: { csrf_token: 'a"b', request_id: 'r1' },
    selects: { account: 'acc_1' },
    buttons: [['decision', 'allow'], ['decision', 'deny']],
    inputs: [],
  });
});
