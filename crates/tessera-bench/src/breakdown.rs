//! Where the time of one check goes: the id decoding the index does on every call
//! (`AgencyId::bits()` and friends), the cache lookup alone, and allowed versus denied checks.
//!
//! The table-driven decoder here is a bench-local copy of what `ids::ulid_bits` could be (one
//! pass over a 256-byte table), to show what the engine would gain; the engine does not use it.

use std::fmt::Write as _;
use std::hint::black_box;

use serde_json::{json, Value};

use crate::data::{Sample, World};
use crate::stats::{self, human_ns, Percentiles};
use crate::tessera::{self, Indexes};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DECODE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 32 {
        t[CROCKFORD[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// One pass: validate and decode a 26-character ULID with a lookup table.
pub fn table_bits(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    if bytes.len() != 26 || bytes[0] > b'7' {
        return None;
    }
    let mut v: u128 = 0;
    for &c in bytes {
        let d = DECODE[usize::from(c)];
        if d == 0xFF {
            return None;
        }
        v = (v << 5) | u128::from(d);
    }
    Some(v)
}

/// The breakdown, as JSON and Markdown rows.
pub fn run(map: &Indexes, world: &World, pool: &[Sample]) -> (Value, String) {
    let take = pool.len().min(100_000);
    let pool = &pool[..take];
    let ok = |_: &Sample| true;
    let (bits, _) = stats::time_each(pool, 1, take, None, |s| black_box(s.home.bits()) != 0, ok);
    let (table, _) = stats::time_each(
        pool,
        1,
        take,
        None,
        |s| black_box(table_bits(&s.home.as_str()[4..])).is_some(),
        ok,
    );
    let (lookup, _) = stats::time_each(
        pool,
        1,
        take,
        None,
        {
            let keyed: Vec<u128> = pool.iter().map(|s| s.home.bits()).collect();
            let mut i = 0usize;
            move |_| {
                let hit = map.contains_key(&keyed[i % keyed.len()]);
                i += 1;
                hit
            }
        },
        ok,
    );
    let split = |want: bool| -> Percentiles {
        let part: Vec<Sample> = pool.iter().filter(|s| s.expect == want).cloned().collect();
        stats::time_each(
            &part,
            1,
            part.len(),
            None,
            |s| tessera::check(map, world, s),
            |s| s.expect,
        )
        .0
    };
    let (allowed, denied) = (split(true), split(false));
    let json = json!({
        "agency_bits": bits.json(), "table_bits": table.json(), "cache_lookup": lookup.json(),
        "allowed": allowed.json(), "denied": denied.json(),
    });
    let mut md = String::new();
    let mut row = |k: &str, p: &Percentiles| {
        let _ = writeln!(
            md,
            "| {k} p50 / p99 | {} / {} |",
            human_ns(p.p50),
            human_ns(p.p99)
        );
    };
    row("breakdown: `AgencyId::bits()` alone", &bits);
    row(
        "breakdown: table-driven ULID decode (not in the engine)",
        &table,
    );
    row(
        "breakdown: cache `FastMap::get` alone (key precomputed)",
        &lookup,
    );
    row("breakdown: allowed checks", &allowed);
    row("breakdown: denied checks", &denied);
    (json, md)
}
