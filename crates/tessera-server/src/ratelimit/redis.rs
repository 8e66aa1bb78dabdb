//! The cluster-wide backend: one EVALSHA per request decision, over every bucket of the
//! request at once, with the arithmetic of `gcra::decide` on Redis's own clock (`TIME`), so
//! the nodes need no synchronised clocks.
//! INVARIANTS: all-or-nothing (a refusal writes no key); every key carries a TTL (a bucket
//! vanishes once full again); keys hold hashes of ids (`tessera:rl:<sha-256 prefix>`), never an
//! email or a credential.

use std::sync::LazyLock;

use ::redis::Script;
use sha2::{Digest, Sha256};

use super::gcra::{interval_us, period_us, Level, Outcome};
use super::settings::Quota;
use crate::cluster::redis::{Redis, Unreachable};

/// KEYS: the buckets. ARGV: per bucket, the interval then the period (µs).
/// Returns `{1, r1, t1, r2, t2, ...}` when admitted, `{0, index (0-based), retry_us}` when not.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local news = {}
local worst, worst_i = 0, -1
for i = 1, #KEYS do
  local iv = tonumber(ARGV[2 * i - 1])
  local p = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new = tat + iv
  local over = new - now - p
  if over > 0 then
    if over > worst then worst = over; worst_i = i - 1 end
  end
  news[i] = new
end
if worst_i >= 0 then return {0, worst_i, worst} end
local out = {1}
for i = 1, #KEYS do
  local iv = tonumber(ARGV[2 * i - 1])
  local p = tonumber(ARGV[2 * i])
  local ttl = math.floor((news[i] - now) / 1000) + 1
  redis.call('SET', KEYS[i], string.format('%d', news[i]), 'PX', ttl)
  out[#out + 1] = math.floor((p - (news[i] - now)) / iv)
  out[#out + 1] = news[i] - now
end
return out
";

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GCRA));

/// The Redis key of a bucket: a prefix and the first 16 bytes of the SHA-256 of its name.
pub fn key(name: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(name);
    let mut k = b"tessera:rl:".to_vec();
    for b in digest.iter().take(16) {
        k.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    k
}

/// Decides over the buckets named `names` with `quotas`, on Redis's clock.
pub async fn check(
    redis: &Redis,
    names: &[Vec<u8>],
    quotas: &[Quota],
) -> Result<Outcome, Unreachable> {
    let keys: Vec<Vec<u8>> = names.iter().map(|n| key(n)).collect();
    let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let args: Vec<i64> = quotas
        .iter()
        .flat_map(|q| [interval_us(*q), period_us(*q)])
        .collect();
    let v: Vec<i64> = redis.script(&SCRIPT, &key_refs, &args).await?;
    Ok(parse(&v))
}

fn parse(v: &[i64]) -> Outcome {
    match v.first() {
        Some(0) => Outcome::Limited {
            index: v.get(1).and_then(|i| usize::try_from(*i).ok()).unwrap_or(0),
            retry_us: v.get(2).copied().unwrap_or(1_000_000),
        },
        _ => Outcome::Allowed(
            v.get(1..)
                .unwrap_or(&[])
                .chunks_exact(2)
                .map(|c| Level {
                    remaining: u64::try_from(c[0]).unwrap_or(0),
                    reset_us: c[1],
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_no_plain_id() {
        let k = key(b"signin:user:alice@example.com");
        let text = String::from_utf8_lossy(&k);
        assert!(text.starts_with("tessera:rl:"));
        assert!(!text.contains("alice"));
        assert_eq!(k.len(), "tessera:rl:".len() + 32);
    }

    #[test]
    fn answers_parse() {
        assert_eq!(
            parse(&[0, 1, 2500]),
            Outcome::Limited {
                index: 1,
                retry_us: 2500
            }
        );
        assert_eq!(
            parse(&[1, 4, 10, 0, 20]),
            Outcome::Allowed(vec![
                Level {
                    remaining: 4,
                    reset_us: 10
                },
                Level {
                    remaining: 0,
                    reset_us: 20
                }
            ])
        );
    }
}
