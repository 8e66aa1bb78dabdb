//! Webhook signing secrets: generated as Standard Webhooks `whsec_…` strings, and sealed at
//! rest under the agency's data key (`secrets::DataKeys`), so deleting the agency shreds them.
//!
//! INVARIANT: this pair (`seal`, `open`) is the ONLY place webhook secrets are sealed or
//! opened; the AAD binds each sealed secret to its webhook (and the data key to its agency), so
//! a sealed value copied to another row does not open.

use base64::Engine as _;
use rand::RngCore;
use tessera_core::WebhookId;
use tessera_store::TenantScope;
use zeroize::Zeroizing;

use crate::secrets::{DataKeyError, DataKeys};

/// Random bytes in a secret (the spec allows 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// The prefix of a Standard Webhooks secret.
pub const PREFIX: &str = "whsec_";

/// A fresh secret: its raw key and its `whsec_…` form (shown once).
pub fn generate() -> (Zeroizing<Vec<u8>>, Zeroizing<String>) {
    let mut raw = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let text = Zeroizing::new(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(&*raw)
    ));
    (raw, text)
}

fn aad(webhook: &WebhookId) -> Vec<u8> {
    format!("tessera/webhook-secret/v1\n{webhook}").into_bytes()
}

/// Seals a raw secret of `webhook` of the scope's agency (its data key is made on first use).
pub async fn seal(
    keys: &DataKeys,
    scope: &TenantScope,
    webhook: &WebhookId,
    raw: &[u8],
    now: i64,
) -> Result<Vec<u8>, DataKeyError> {
    keys.seal(scope, &aad(webhook), raw, now).await
}

/// Opens a sealed secret of `webhook` of the scope's agency: `Shredded` once the agency's data
/// key is destroyed.
pub async fn open(
    keys: &DataKeys,
    scope: &TenantScope,
    webhook: &WebhookId,
    sealed: &[u8],
    now: i64,
) -> Result<Zeroizing<Vec<u8>>, DataKeyError> {
    keys.open(scope, &aad(webhook), sealed, now).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_generated_secret_is_its_raw_key_in_base64() {
        let (raw, text) = generate();
        assert!(text.starts_with(PREFIX));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&text[PREFIX.len()..])
            .unwrap();
        assert_eq!(decoded, *raw);
        assert_eq!(raw.len(), SECRET_BYTES);
        assert_ne!(*generate().0, *raw);
    }

    #[test]
    fn the_aad_names_the_webhook() {
        let (a, b) = (WebhookId::generate(), WebhookId::generate());
        assert_ne!(aad(&a), aad(&b));
    }
}
