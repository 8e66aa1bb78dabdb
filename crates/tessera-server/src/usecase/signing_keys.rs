//! The token-signing key ring, as the operator manages it from the console (`tessera keys`).
//! No route exposes these: the public half of the ring is `/.well-known/jwks.json`.
//! INVARIANT: a listing never carries a private key.

use serde_json::Value;

use crate::clock::Clock;
use crate::keys::{Keys, KeysError};

/// Publishes a new signing key now (it signs after the publish-ahead period); returns how many
/// rotation steps were applied. Operator only (`tessera keys rotate`).
pub async fn rotate(keys: &Keys, clock: &dyn Clock) -> Result<usize, KeysError> {
    keys.rotate(clock.now() / 1000).await
}

/// The signing keys, without their private parts. Operator only (`tessera keys list`).
pub async fn list(keys: &Keys) -> Result<Vec<Value>, KeysError> {
    keys.list().await
}
