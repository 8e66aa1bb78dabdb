//! Signed webhooks (Standard Webhooks): each agency's endpoints receive its audit events
//! (every action, life-cycle events included) matching their filter, as a SIEM feed.
//!
//! The audit append path is untouched: the dispatcher (`dispatch`) tails each agency's chain
//! past a per-webhook cursor, enqueues matching deliveries in the database with deterministic
//! ids (the cursor moves in the same transaction), then claims due deliveries under a lease and
//! POSTs them (`client`), signed (`sign`) with the webhook's secrets (`secret`).
//!
//! INVARIANT: at least once. A message stays `pending` until an endpoint answers 2xx (then
//! `delivered`) or the retry schedule is spent (then `dead`, until redelivered); an attempt
//! lost with its node is retried when its lease lapses, under the same `webhook-id`.

pub mod client;
pub mod dispatch;
pub mod filter;
pub mod ranges;
pub mod secret;
pub mod sign;
pub mod target;

use std::time::Duration;

/// The retry schedule after a failed attempt, in seconds of the schedule's unit (1 s by
/// default): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. Eight attempts in all, then `dead`.
pub const SCHEDULE: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];

/// The most webhooks one agency may have.
pub const MAX_PER_AGENCY: i64 = 20;

/// How long a rotated-out secret keeps signing by default (24 h).
pub const DEFAULT_OVERLAP_SECONDS: u64 = 86_400;
/// The longest overlap accepted (7 days).
pub const MAX_OVERLAP_SECONDS: u64 = 7 * 86_400;

/// Webhook settings (`--webhook-*`).
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Whether endpoints may be loopback, private, link-local… addresses (tests, on-prem
    /// SIEMs). Off by default (SSRF).
    pub allow_private_targets: bool,
    /// The unit of `SCHEDULE` (1 s by default; tests shrink it).
    pub retry_unit: Duration,
    /// Bound on resolving and connecting.
    pub connect_timeout: Duration,
    /// Bound on a whole attempt.
    pub total_timeout: Duration,
    /// How often the dispatcher looks for new events and due deliveries when idle.
    pub poll_interval: Duration,
    /// Deliveries claimed (and sent concurrently) per agency per pass.
    pub batch: u32,
    /// Whether this node runs the dispatcher.
    pub dispatch: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            retry_unit: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            poll_interval: Duration::from_secs(1),
            batch: 64,
            dispatch: true,
        }
    }
}

/// The webhook service: settings and the TLS client configuration.
pub struct Webhooks {
    /// The settings.
    pub settings: WebhookSettings,
    /// How attempts reach endpoints.
    pub transport: client::Transport,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The service: settings and the delivery transport (secrets are sealed under the agencies'
    /// data keys, see `secret`).
    pub fn new(settings: WebhookSettings) -> Result<Self, String> {
        let transport = client::Transport {
            tls: client::tls_config()?,
            allow_private: settings.allow_private_targets,
            connect_timeout: settings.connect_timeout,
            total_timeout: settings.total_timeout,
        };
        Ok(Self {
            settings,
            transport,
        })
    }

    /// The delay before the attempt after `attempts` failed ones (`None`: the schedule is
    /// spent), with ±10 % jitter.
    pub fn backoff(&self, attempts: i64, rng: &mut impl rand::Rng) -> Option<Duration> {
        let step = usize::try_from(attempts.checked_sub(1)?).ok()?;
        let units = *SCHEDULE.get(step)?;
        let base = self
            .settings
            .retry_unit
            .saturating_mul(u32::try_from(units).unwrap_or(u32::MAX));
        let jitter = rng.gen_range(0.9..=1.1);
        Some(base.mul_f64(jitter))
    }

    /// How long a claim holds a delivery: the attempt's bound and a margin.
    pub fn lease(&self) -> Duration {
        self.settings.total_timeout + Duration::from_secs(5)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_schedule_backs_off_with_jitter_then_ends() {
        let w = Webhooks::new(WebhookSettings::default()).unwrap();
        let mut rng = rand::thread_rng();
        for (i, units) in SCHEDULE.iter().enumerate() {
            let d = w.backoff(i as i64 + 1, &mut rng).unwrap().as_secs_f64();
            let base = *units as f64;
            assert!(d >= base * 0.9 - 1e-6 && d <= base * 1.1 + 1e-6, "{i}: {d}");
        }
        assert!(w.backoff(SCHEDULE.len() as i64 + 1, &mut rng).is_none());
        assert!(w.backoff(0, &mut rng).is_none());
    }
}
