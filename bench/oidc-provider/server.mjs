// The benchmark peer for bench/oauth.sh: oidc-provider (a certified OpenID provider) set up for
// the grant Tessera is measured on, client credentials with client_secret_basic, plus RFC 7662
// introspection.
//   node bench/oidc-provider/server.mjs PORT FORMAT CLIENT_ID CLIENT_SECRET
// FORMAT is `jwt` (access tokens are JWTs signed with EdDSA over an Ed25519 key, as Tessera's
// are: the issue comparison) or `opaque` (stored tokens, the only kind oidc-provider introspects:
// the introspection comparison). The store is oidc-provider's in-memory adapter (an LRU).
// Resolved from bench/peers/node_modules (installed there by bench/oauth.sh, ignored by git).
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const [port, format, clientId, clientSecret] = process.argv.slice(2);
if (!port || !['jwt', 'opaque'].includes(format) || !clientId || !clientSecret) {
  console.error('usage: server.mjs PORT jwt|opaque CLIENT_ID CLIENT_SECRET');
  process.exit(2);
}

const peers = fileURLToPath(new URL('../peers/', import.meta.url));
const { default: Provider } = await import(createRequire(peers).resolve('oidc-provider'));

const issuer = `http://127.0.0.1:${port}`;
const resource = 'urn:tessera-bench:api';
const scope = 'contacts.readonly';
const signing = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'EdDSA',
    },
  ],
  jwks: { keys: [{ ...signing, kid: 'bench-ed25519', alg: 'EdDSA', use: 'sig' }] },
  clientDefaults: { id_token_signed_response_alg: 'EdDSA' },
  cookies: { keys: ['tessera-bench-cookie-key'] },
  scopes: [scope],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true, allowedPolicy: async () => true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope,
        audience: resource,
        accessTokenTTL: 3600,
        accessTokenFormat: format,
        ...(format === 'jwt' ? { jwt: { sign: { alg: 'EdDSA' } } } : {}),
      }),
    },
  },
});
provider.proxy = false;
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider ${format} listening on ${issuer}`);
});
