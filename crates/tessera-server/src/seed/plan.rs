//! The dataset `tessera dev seed` writes, as pure functions of (the seed key, an index): any
//! agency's ids, rows and secrets can be computed again without reading the database, so
//! each table is streamed on its own and the credentials file is written at the end.
//!
//! Per agency `i` (counts spread evenly, so the totals are exact):
//! * accounts `acc_…` and users `usr_…` (no password; `user{u}@agency{i}.seed.invalid`);
//! * one custom role `seed_support` (`rol_…`, [`CUSTOM_ROLE_PERMISSIONS`]);
//! * bindings: user 0 holds `agency_admin` agency-wide; then user `u`'s binding `c` grants
//!   [`ACCOUNT_ROLES`]`[(c mod A + c div A) mod 4]` (the fourth is the custom role) on account
//!   `(u + c) mod A`, so no (user, role, account) repeats;
//! * API keys: key 0 agency-wide with [`ADMIN_KEY_SCOPES`], the others on one account with
//!   `contacts.readonly`; their secrets hashed under the current pepper;
//! * apps, owned by agencies spread evenly: even `j` marketplace, odd `j` private, all
//!   confidential with a `tcs_` secret, scopes [`APP_SCOPES`], review approved;
//! * installations: the agency's own private app agency-wide first (if it owns one), then
//!   marketplace apps on accounts, consenting [`APP_SCOPES`].
//!
//! INVARIANT: ids are ULIDs (the seed time, 80 bits from SHA-256 of the key and the index);
//! secrets come from a ChaCha RNG keyed the same way. With `--seed` they are reproducible,
//! so predictable: a throw-away dataset only. Without it the key is random.

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use sha2::{Digest, Sha256};
use tessera_core::{AccountId, AgencyId, AppId, BindingId, InstallationId, KeyId, RoleId, UserId};
use tessera_store::bulk::{BulkTable, BulkValue as V};
use tessera_token::{Pepper, SecretString};

/// The account-level roles bindings cycle through; the fourth is the agency's custom role.
pub const ACCOUNT_ROLES: [&str; 3] = ["account_admin", "account_user", "account_viewer"];
/// The custom role's name.
pub const CUSTOM_ROLE_NAME: &str = "seed_support";
/// The custom role's permissions.
pub const CUSTOM_ROLE_PERMISSIONS: [&str; 3] =
    ["calendars.read", "contacts.read", "conversations.read"];
/// The agency-wide key's scopes: `/v1/check` on the agency's principals (`bindings.read`),
/// admin reads, and one cheap write (renaming an account: `accounts.update`).
pub const ADMIN_KEY_SCOPES: [&str; 7] = [
    "accounts.readonly",
    "accounts.write",
    "api_keys.readonly",
    "apps.readonly",
    "audit.readonly",
    "roles.readonly",
    "users.readonly",
];
/// The account keys' scopes.
pub const ACCOUNT_KEY_SCOPES: [&str; 1] = ["contacts.readonly"];
/// Every app's scopes, and what its installations consent.
pub const APP_SCOPES: [&str; 2] = ["contacts.readonly", "users.readonly"];
/// The `created_by` of what user 0 did not create through a caller (its own binding).
pub const SEED_ACTOR: &str = "tessera dev seed";

/// How many rows of each kind, in total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Agencies.
    pub agencies: u64,
    /// Accounts.
    pub accounts: u64,
    /// Users.
    pub users: u64,
    /// Bindings.
    pub bindings: u64,
    /// API keys.
    pub api_keys: u64,
    /// Apps.
    pub apps: u64,
    /// Installations.
    pub installations: u64,
}

/// `total` spread over `n` parts: part `i`'s share (the shares add up to `total`).
pub fn share(total: u64, n: u64, i: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let (t, n, i) = (u128::from(total), u128::from(n), u128::from(i));
    u64::try_from((i + 1) * t / n - i * t / n).unwrap_or(0)
}

/// `⌈a / b⌉` of `a * c`, in 128 bits.
fn ceil_mul_div(a: u64, c: u64, b: u64) -> u64 {
    if b == 0 {
        return 0;
    }
    let p = u128::from(a) * u128::from(c);
    u64::try_from(p.div_ceil(u128::from(b))).unwrap_or(u64::MAX)
}

/// What a binding grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// `agency_admin`, agency-wide.
    AgencyAdmin,
    /// A built-in account role on account `x`.
    Account(&'static str, u64),
    /// The custom role on account `x`.
    Custom(u64),
}

/// The dataset.
#[derive(Debug)]
pub struct Plan {
    /// The counts.
    pub counts: Counts,
    key: [u8; 32],
    /// The seed time, epoch milliseconds.
    pub now: i64,
    pepper: Pepper,
}

impl Plan {
    /// Checks the counts fit the layout above; the message says what to change.
    pub fn new(counts: Counts, key: [u8; 32], now: i64, pepper: Pepper) -> Result<Self, String> {
        let c = counts;
        if c.agencies == 0 {
            return Err("`--agencies` must be at least 1".into());
        }
        for (name, v) in [
            ("--accounts", c.accounts),
            ("--users", c.users),
            ("--bindings", c.bindings),
            ("--api-keys", c.api_keys),
        ] {
            if v < c.agencies {
                return Err(format!(
                    "`{name}` ({v}) must be at least `--agencies` ({}): every agency gets one",
                    c.agencies
                ));
            }
        }
        if c.installations > 0 && c.apps == 0 {
            return Err("`--installations` needs at least one app (`--apps`)".into());
        }
        let plan = Self {
            counts,
            key,
            now,
            pepper,
        };
        // Per agency the extremes are the largest shares: check those.
        let a_min = c.accounts / c.agencies;
        let b_max = c.bindings.div_ceil(c.agencies);
        let u_min = c.users / c.agencies;
        if b_max.div_ceil(u_min) > 4 * a_min {
            return Err(format!(
                "too many bindings: each user holds at most 4 per account (4 roles × {a_min} accounts); raise `--users` or `--accounts`"
            ));
        }
        let i_max = c.installations.div_ceil(c.agencies);
        if i_max > 0 && i_max.div_ceil(a_min) > plan.market_apps() {
            return Err(format!(
                "too many installations per agency ({i_max}) for {} marketplace apps on {a_min} accounts: raise `--apps`",
                plan.market_apps()
            ));
        }
        Ok(plan)
    }

    fn digest(&self, tag: &str, i: u64, j: u64) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(tag.as_bytes());
        h.update(i.to_be_bytes());
        h.update(j.to_be_bytes());
        h.finalize().into()
    }

    fn ulid(&self, tag: &str, i: u64, j: u64) -> u128 {
        let d = self.digest(tag, i, j);
        let mut random = [0u8; 16];
        random[6..].copy_from_slice(&d[..10]);
        let millis = u128::from(u64::try_from(self.now).unwrap_or(0) & 0xFFFF_FFFF_FFFF);
        (millis << 80) | u128::from_be_bytes(random)
    }

    fn rng(&self, tag: &str, i: u64, j: u64) -> StdRng {
        StdRng::from_seed(self.digest(tag, i, j))
    }

    /// Agency `i`'s id.
    pub fn agency_id(&self, i: u64) -> AgencyId {
        AgencyId::from_bits(self.ulid("agency", i, 0))
    }
    /// Account `x` of agency `i`.
    pub fn account_id(&self, i: u64, x: u64) -> AccountId {
        AccountId::from_bits(self.ulid("account", i, x))
    }
    /// User `u` of agency `i`.
    pub fn user_id(&self, i: u64, u: u64) -> UserId {
        UserId::from_bits(self.ulid("user", i, u))
    }
    /// Agency `i`'s custom role.
    pub fn role_id(&self, i: u64) -> RoleId {
        RoleId::from_bits(self.ulid("role", i, 0))
    }
    /// API key `k` of agency `i`.
    pub fn key_id(&self, i: u64, k: u64) -> KeyId {
        KeyId::from_bits(self.ulid("key", i, k))
    }
    /// App `j`.
    pub fn app_id(&self, j: u64) -> AppId {
        AppId::from_bits(self.ulid("app", j, 0))
    }
    /// Installation `t` of agency `i`.
    pub fn installation_id(&self, i: u64, t: u64) -> InstallationId {
        InstallationId::from_bits(self.ulid("installation", i, t))
    }

    /// Agency `i`'s number of accounts.
    pub fn accounts_of(&self, i: u64) -> u64 {
        share(self.counts.accounts, self.counts.agencies, i)
    }
    /// Agency `i`'s number of users.
    pub fn users_of(&self, i: u64) -> u64 {
        share(self.counts.users, self.counts.agencies, i)
    }
    /// Agency `i`'s number of API keys.
    pub fn keys_of(&self, i: u64) -> u64 {
        share(self.counts.api_keys, self.counts.agencies, i)
    }
    /// Agency `i`'s number of installations.
    pub fn installations_of(&self, i: u64) -> u64 {
        share(self.counts.installations, self.counts.agencies, i)
    }

    /// The apps agency `i` owns: `j` from the range.
    pub fn apps_of(&self, i: u64) -> std::ops::Range<u64> {
        let (p, n) = (self.counts.apps, self.counts.agencies);
        ceil_mul_div(i, p, n)..ceil_mul_div(i + 1, p, n)
    }
    /// The agency owning app `j`.
    pub fn app_owner(&self, j: u64) -> u64 {
        u64::try_from(
            u128::from(j) * u128::from(self.counts.agencies) / u128::from(self.counts.apps.max(1)),
        )
        .unwrap_or(0)
    }
    /// Whether app `j` is a marketplace app (else private).
    pub fn is_marketplace(j: u64) -> bool {
        j.is_multiple_of(2)
    }
    /// How many marketplace apps there are (`j` = 0, 2, 4, …).
    pub fn market_apps(&self) -> u64 {
        self.counts.apps.div_ceil(2)
    }
    /// The first private app agency `i` owns.
    pub fn own_private(&self, i: u64) -> Option<u64> {
        self.apps_of(i).find(|j| !Self::is_marketplace(*j))
    }

    /// Installation `t` of agency `i`: the app and the account (`None`: agency-wide).
    pub fn installation(&self, i: u64, t: u64) -> (u64, Option<u64>) {
        let own = self.own_private(i);
        if let (Some(j), 0) = (own, t) {
            return (j, None);
        }
        let t = t - u64::from(own.is_some());
        let a = self.accounts_of(i).max(1);
        let (x, round) = (t % a, t / a);
        let m = (i.wrapping_mul(31).wrapping_add(round)) % self.market_apps().max(1);
        (2 * m, Some(x))
    }

    /// The bindings of user `u` of agency `i`, in order.
    pub fn grants(&self, i: u64, u: u64) -> Vec<Grant> {
        let b = share(
            share(self.counts.bindings, self.counts.agencies, i),
            self.users_of(i),
            u,
        );
        let a = self.accounts_of(i).max(1);
        let mut out = Vec::new();
        let mut c = 0;
        if u == 0 && b > 0 {
            out.push(Grant::AgencyAdmin);
        }
        while (out.len() as u64) < b {
            let x = (u + c) % a;
            out.push(match (c % a + c / a) % 4 {
                3 => Grant::Custom(x),
                r => Grant::Account(ACCOUNT_ROLES[usize::try_from(r).unwrap_or(0)], x),
            });
            c += 1;
        }
        out
    }

    /// API key `k` of agency `i`'s secret.
    pub fn key_secret(&self, i: u64, k: u64) -> SecretString {
        tessera_token::generate_api_key(&mut self.rng("key-secret", i, k))
    }
    /// App `j`'s client secret.
    pub fn app_secret(&self, j: u64) -> SecretString {
        tessera_token::generate_opaque_token(
            crate::oauth::issue::CLIENT_SECRET_PREFIX,
            &mut self.rng("app-secret", j, 0),
        )
    }

    fn hash(&self, secret: &SecretString) -> V {
        V::Bytes(
            self.pepper
                .hash(secret.expose().as_bytes())
                .as_bytes()
                .to_vec(),
        )
    }

    /// Appends agency `i`'s rows of `table` (for apps: the apps it owns) to `out`.
    pub fn rows(&self, table: BulkTable, i: u64, out: &mut Vec<Vec<V>>) {
        let agy = || V::Text(self.agency_id(i).to_string());
        let t = |s: String| V::Text(s);
        let now = V::Int(self.now);
        let admin = || t(self.user_id(i, 0).to_string());
        match table {
            BulkTable::Agencies => out.push(vec![
                agy(),
                t(format!("Seed agency {i}")),
                t("active".into()),
                V::Bool(false),
                now.clone(),
                now,
            ]),
            BulkTable::Accounts => {
                for x in 0..self.accounts_of(i) {
                    out.push(vec![
                        agy(),
                        t(self.account_id(i, x).to_string()),
                        t(format!("Seed account {x}")),
                        now.clone(),
                        now.clone(),
                        t("active".into()),
                    ]);
                }
            }
            BulkTable::Users => {
                for u in 0..self.users_of(i) {
                    let email = format!("user{u}@agency{i}.seed.invalid");
                    out.push(vec![
                        agy(),
                        t(self.user_id(i, u).to_string()),
                        t(email.clone()),
                        t(email),
                        t(format!("Seed user {u}")),
                        t("active".into()),
                        V::Null,
                        now.clone(),
                        now.clone(),
                    ]);
                }
            }
            BulkTable::Roles => out.push(vec![
                agy(),
                t(self.role_id(i).to_string()),
                t(CUSTOM_ROLE_NAME.into()),
                t("Support staff (seeded)".into()),
                t(json!(CUSTOM_ROLE_PERMISSIONS).to_string()),
                admin(),
                now.clone(),
                now,
            ]),
            BulkTable::Bindings => {
                let mut k = 0;
                for u in 0..self.users_of(i) {
                    for g in self.grants(i, u) {
                        let (role, account) = match g {
                            Grant::AgencyAdmin => ("agency_admin".to_owned(), None),
                            Grant::Account(r, x) => (r.to_owned(), Some(self.account_id(i, x))),
                            Grant::Custom(x) => {
                                (self.role_id(i).to_string(), Some(self.account_id(i, x)))
                            }
                        };
                        let by = if u == 0 && account.is_none() {
                            t(SEED_ACTOR.into())
                        } else {
                            admin()
                        };
                        let acc = account.as_ref().map(ToString::to_string);
                        out.push(vec![
                            agy(),
                            t(BindingId::from_bits(self.ulid("binding", i, k)).to_string()),
                            t(self.user_id(i, u).to_string()),
                            t(role),
                            acc.clone().map_or(V::Null, V::Text),
                            t(acc.unwrap_or_default()),
                            by,
                            now.clone(),
                        ]);
                        k += 1;
                    }
                }
            }
            BulkTable::ApiKeys => {
                for k in 0..self.keys_of(i) {
                    let (account, scopes) = if k == 0 {
                        (V::Null, json!(ADMIN_KEY_SCOPES))
                    } else {
                        let x = (k - 1) % self.accounts_of(i).max(1);
                        (
                            t(self.account_id(i, x).to_string()),
                            json!(ACCOUNT_KEY_SCOPES),
                        )
                    };
                    out.push(vec![
                        agy(),
                        t(self.key_id(i, k).to_string()),
                        t(format!("Seed key {k}")),
                        account,
                        t(scopes.to_string()),
                        admin(),
                        now.clone(),
                    ]);
                }
            }
            BulkTable::ApiKeySecrets => {
                for k in 0..self.keys_of(i) {
                    out.push(vec![
                        agy(),
                        t(self.key_id(i, k).to_string()),
                        self.hash(&self.key_secret(i, k)),
                        V::Int(i64::from(self.pepper.version())),
                        now.clone(),
                    ]);
                }
            }
            BulkTable::Apps => {
                for j in self.apps_of(i) {
                    let kind = if Self::is_marketplace(j) {
                        "marketplace"
                    } else {
                        "private"
                    };
                    let scopes = json!(APP_SCOPES).to_string();
                    out.push(vec![
                        agy(),
                        t(self.app_id(j).to_string()),
                        t(format!("Seed app {j}")),
                        t(kind.into()),
                        V::Bool(true),
                        t(json!([format!("https://app{j}.seed.invalid/callback")]).to_string()),
                        t(scopes.clone()),
                        admin(),
                        now.clone(),
                        now.clone(),
                        t("EdDSA".into()),
                        t("approved".into()),
                        t(scopes),
                    ]);
                }
            }
            BulkTable::AppSecrets => {
                for j in self.apps_of(i) {
                    out.push(vec![
                        agy(),
                        t(self.app_id(j).to_string()),
                        self.hash(&self.app_secret(j)),
                        V::Int(i64::from(self.pepper.version())),
                        now.clone(),
                    ]);
                }
            }
            BulkTable::Installations => {
                for n in 0..self.installations_of(i) {
                    let (j, x) = self.installation(i, n);
                    let acc = x.map(|x| self.account_id(i, x).to_string());
                    out.push(vec![
                        agy(),
                        t(self.installation_id(i, n).to_string()),
                        t(self.app_id(j).to_string()),
                        t(self.agency_id(self.app_owner(j)).to_string()),
                        acc.clone().map_or(V::Null, V::Text),
                        t(acc.unwrap_or_default()),
                        t(json!(APP_SCOPES).to_string()),
                        admin(),
                        now.clone(),
                    ]);
                }
            }
        }
    }

    /// How many rows `table` gets in all.
    pub fn total(&self, table: BulkTable) -> u64 {
        let c = &self.counts;
        match table {
            BulkTable::Agencies | BulkTable::Roles => c.agencies,
            BulkTable::Accounts => c.accounts,
            BulkTable::Users => c.users,
            BulkTable::Bindings => c.bindings,
            BulkTable::ApiKeys | BulkTable::ApiKeySecrets => c.api_keys,
            BulkTable::Apps | BulkTable::AppSecrets => c.apps,
            BulkTable::Installations => c.installations,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    fn plan(c: Counts) -> Result<Plan, String> {
        Plan::new(c, [7; 32], 1_700_000_000_000, Pepper::new(1, [9; 32]))
    }

    const SMALL: Counts = Counts {
        agencies: 7,
        accounts: 70,
        users: 70,
        bindings: 700,
        api_keys: 14,
        apps: 4,
        installations: 35,
    };

    #[test]
    fn shares_add_up_and_rows_match_the_totals() {
        let p = plan(SMALL).unwrap_or_else(|e| panic!("{e}"));
        for table in BulkTable::ALL {
            let mut rows = Vec::new();
            for i in 0..SMALL.agencies {
                p.rows(table, i, &mut rows);
            }
            assert_eq!(rows.len() as u64, p.total(table), "{table:?}");
            assert!(
                rows.iter().all(|r| r.len() == table.columns().len()),
                "{table:?}"
            );
        }
        assert_eq!((0..10).map(|i| share(7, 10, i)).sum::<u64>(), 7);
    }

    #[test]
    fn bindings_and_installations_never_repeat() {
        let p = plan(SMALL).unwrap_or_else(|e| panic!("{e}"));
        for table in [BulkTable::Bindings, BulkTable::Installations] {
            let mut rows = Vec::new();
            for i in 0..SMALL.agencies {
                p.rows(table, i, &mut rows);
            }
            // (agency, principal or app, role or account key): the unique constraints.
            let keys: std::collections::HashSet<_> = rows
                .iter()
                .map(|r| (r[0].clone(), r[2].clone(), r[3].clone(), r[5].clone()))
                .collect();
            assert_eq!(keys.len(), rows.len(), "{table:?}");
        }
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = plan(SMALL).unwrap_or_else(|e| panic!("{e}"));
        let b = plan(SMALL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.key_secret(3, 0).expose(), b.key_secret(3, 0).expose());
        assert_eq!(a.agency_id(3), b.agency_id(3));
        let c = Plan::new(SMALL, [8; 32], a.now, Pepper::new(1, [9; 32]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.key_secret(3, 0).expose(), c.key_secret(3, 0).expose());
        assert_ne!(a.agency_id(3), c.agency_id(3));
    }

    #[test]
    fn impossible_counts_are_refused_with_the_flag_to_change() {
        let e = plan(Counts { users: 3, ..SMALL }).err().unwrap_or_default();
        assert!(e.contains("--users"), "{e}");
        let e = plan(Counts {
            bindings: 7000,
            ..SMALL
        })
        .err()
        .unwrap_or_default();
        assert!(e.contains("too many bindings"), "{e}");
        let e = plan(Counts { apps: 0, ..SMALL }).err().unwrap_or_default();
        assert!(e.contains("--apps"), "{e}");
    }
}
