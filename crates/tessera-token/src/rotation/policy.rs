//! A rotation policy: the algorithm of new keys, how often they rotate, how long a new key is
//! published before it signs, and how long tokens live.
//! INVARIANT: a validated policy has positive durations and `publish_ahead < period`, so a
//! successor is published after its predecessor started signing and before it takes over.

use crate::jwk::Algorithm;

/// How often keys rotate and how long they overlap. All durations in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// The algorithm of new keys.
    pub alg: Algorithm,
    /// How long a key signs before its successor takes over.
    pub period_secs: i64,
    /// How long a new key is published before it signs: longer than any verifier caches the
    /// JWKS.
    pub publish_ahead_secs: i64,
    /// The longest lifetime of a token signed by these keys, plus the verifiers' clock leeway:
    /// a retiring key stays published this long after it stopped signing.
    pub token_lifetime_secs: i64,
}

impl Default for RotationPolicy {
    /// Ed25519, rotated every 30 days, published 2 days ahead, tokens of at most an hour.
    fn default() -> Self {
        Self {
            alg: Algorithm::EdDsa,
            period_secs: 30 * 86_400,
            publish_ahead_secs: 2 * 86_400,
            token_lifetime_secs: 3_600,
        }
    }
}

/// A rotation policy that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RotationPolicyError {
    /// Some duration is zero or negative.
    #[error("rotation period, publish-ahead and token lifetime must all be positive")]
    NotPositive,
    /// Keys would have to be published before their predecessor started signing.
    #[error("publish-ahead must be shorter than the rotation period")]
    PublishAheadTooLong,
}

impl RotationPolicy {
    /// Checks that the durations are positive and `publish_ahead < period`.
    pub fn validate(&self) -> Result<(), RotationPolicyError> {
        if self.period_secs <= 0 || self.publish_ahead_secs <= 0 || self.token_lifetime_secs <= 0 {
            return Err(RotationPolicyError::NotPositive);
        }
        if self.publish_ahead_secs >= self.period_secs {
            return Err(RotationPolicyError::PublishAheadTooLong);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotation::planner::tests::POLICY;

    #[test]
    fn policy_validation() {
        assert_eq!(POLICY.validate(), Ok(()));
        assert_eq!(RotationPolicy::default().validate(), Ok(()));
        let bad = RotationPolicy {
            period_secs: 0,
            ..POLICY
        };
        assert_eq!(bad.validate(), Err(RotationPolicyError::NotPositive));
        let bad = RotationPolicy {
            publish_ahead_secs: 1000,
            ..POLICY
        };
        assert_eq!(
            bad.validate(),
            Err(RotationPolicyError::PublishAheadTooLong)
        );
        assert!(RotationPolicyError::NotPositive
            .to_string()
            .starts_with("rotation"));
    }
}
