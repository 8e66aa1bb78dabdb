//! Hash maps for the hot paths, keyed by server-minted or keyed-hash values (ULID bits, HMAC
//! outputs): foldhash instead of SipHash. Measured in docs/BENCHMARKS.md ("Hot paths").
//!
//! INVARIANT: only for keys an outside caller cannot choose freely (ids minted by the server,
//! keyed hashes of presented secrets), so collisions cannot be forced; each map is seeded per
//! process all the same.

use std::collections::HashMap;

/// The hasher: foldhash's fast variant, seeded at random per map.
pub type FastState = foldhash::fast::RandomState;

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = HashMap<K, V, FastState>;

/// An empty [`FastMap`] with room for `n` entries.
pub fn with_capacity<K, V>(n: usize) -> FastMap<K, V> {
    HashMap::with_capacity_and_hasher(n, FastState::default())
}
