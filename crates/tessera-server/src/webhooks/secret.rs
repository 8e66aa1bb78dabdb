//! Webhook signing secrets: generated as Standard Webhooks `whsec_…` strings, and sealed at
//! rest.
//!
//! INVARIANT: this pair (`seal`, `open`) is the ONLY place webhook secrets are sealed or
//! opened; the AAD binds each sealed secret to its agency and webhook, so a sealed value copied
//! to another row does not open. (At merge with per-agency data keys, only this pair changes.)

use base64::Engine as _;
use rand::RngCore;
use tessera_core::{AgencyId, WebhookId};
use tessera_token::SecretBytes;
use zeroize::Zeroizing;

/// Random bytes in a secret (the spec allows 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// The prefix of a Standard Webhooks secret.
pub const PREFIX: &str = "whsec_";
/// The master-key purpose of the sealing key.
pub const PURPOSE: &str = "webhooks/v1";

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

fn aad(agency: &AgencyId, webhook: &WebhookId) -> Vec<u8> {
    format!("tessera/webhook-secret/v1\n{agency}\n{webhook}").into_bytes()
}

/// Seals a raw secret of `webhook` of `agency`.
pub fn seal(key: &SecretBytes<32>, agency: &AgencyId, webhook: &WebhookId, raw: &[u8]) -> Vec<u8> {
    tessera_token::envelope::seal(key, raw, &aad(agency, webhook), &mut rand::rngs::OsRng)
}

/// Opens a sealed secret of `webhook` of `agency`.
pub fn open(
    key: &SecretBytes<32>,
    agency: &AgencyId,
    webhook: &WebhookId,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, tessera_token::EnvelopeError> {
    tessera_token::envelope::open(key, sealed, &aad(agency, webhook))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_webhook() {
        let key = tessera_token::MasterKey::from_bytes([3; 32]).derive_key(PURPOSE);
        let (agy, whk, other) = (
            AgencyId::generate(),
            WebhookId::generate(),
            WebhookId::generate(),
        );
        let (raw, text) = generate();
        assert!(text.starts_with(PREFIX));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&text[PREFIX.len()..])
            .unwrap();
        assert_eq!(decoded, *raw);
        let sealed = seal(&key, &agy, &whk, &raw);
        assert!(!sealed.windows(raw.len()).any(|w| w == &raw[..]));
        assert_eq!(*open(&key, &agy, &whk, &sealed).unwrap(), *raw);
        assert!(open(&key, &agy, &other, &sealed).is_err());
        assert!(open(&key, &AgencyId::generate(), &whk, &sealed).is_err());
    }
}
