-- The token-signing key ring (DESIGN.md §5). Global, like `agencies`: platform keys, no
-- agency_id, so no row-level security (it holds no tenant data). Times here are epoch SECONDS
-- (as the token crate and JWT claims use them), unlike the millisecond timestamps of the other
-- tables. `sealed_private` is the private key sealed under the master key (envelope
-- encryption); it is emptied when the key is retired.

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    state          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    activates_at   BIGINT NOT NULL,
    retires_at     BIGINT,
    expires_at     BIGINT,
    public_jwk     TEXT NOT NULL,
    sealed_private BYTEA NOT NULL
);
