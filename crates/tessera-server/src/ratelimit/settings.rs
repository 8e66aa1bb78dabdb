//! Rate-limit settings: the route classes, the dimensions a class limits on, each
//! dimension's quota, each class's fail mode (when Redis is unreachable), and the plans
//! (named per-class agency quotas). Read from `[rate_limits.<class>]` and `[plans.<name>]`
//! in the `--config` file and from `--rate-limit CLASS.DIM=N/S` / `--rate-limits off`.
//! INVARIANT: every quota has `limit ≥ 1` and `1 ≤ period_seconds ≤ 86400`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The longest period a quota may have (a day).
pub const MAX_PERIOD: u32 = 86_400;

/// `limit` requests per `period_seconds`, with bursts of up to `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Requests admitted per period (at least 1).
    pub limit: u32,
    /// The period, in seconds (1 to 86400).
    pub period_seconds: u32,
}

impl Quota {
    /// A quota, if valid.
    pub fn new(limit: u32, period_seconds: u32) -> Option<Self> {
        let q = Self {
            limit,
            period_seconds,
        };
        q.is_valid().then_some(q)
    }

    /// `limit ≥ 1` and `1 ≤ period_seconds ≤ 86400`.
    pub fn is_valid(&self) -> bool {
        self.limit >= 1 && (1..=MAX_PERIOD).contains(&self.period_seconds)
    }

    /// Requests per second, for comparing quotas of different periods.
    pub fn rate(&self) -> f64 {
        f64::from(self.limit) / f64::from(self.period_seconds.max(1))
    }

    /// `N/S`.
    pub fn parse(text: &str) -> Option<Self> {
        let (n, s) = text.split_once('/')?;
        Self::new(n.trim().parse().ok()?, s.trim().parse().ok()?)
    }
}

/// A route class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// The POST of the sign-in form (`/oauth/authorize`).
    Signin,
    /// `POST /oauth/token`.
    Token,
    /// `POST /oauth/introspect` and `/oauth/revoke`.
    Introspect,
    /// `/v1/check` and `/v1/check/batch`.
    Check,
    /// Other `/v1` GETs.
    Read,
    /// Other `/v1` writes.
    Write,
}

impl Class {
    /// Every class.
    pub const ALL: [Class; 6] = [
        Self::Signin,
        Self::Token,
        Self::Introspect,
        Self::Check,
        Self::Read,
        Self::Write,
    ];

    /// The name in files, flags, metrics and headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signin => "signin",
            Self::Token => "token",
            Self::Introspect => "introspect",
            Self::Check => "check",
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// The class named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        // The names people reach for too (the wire name is the one stored and shown).
        let name = match name {
            "sign_in" | "sign-in" | "login" => "signin",
            "introspection" | "revocation" | "revoke" => "introspect",
            "reads" | "v1_read" | "v1_reads" => "read",
            "writes" | "v1_write" | "v1_writes" => "write",
            "v1_check" | "checks" => "check",
            "oauth_token" | "tokens" => "token",
            other => other,
        };
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a bucket counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    /// The client's address (IPv6: its /64).
    Ip,
    /// The user (sign-in: the normalised email; a token: its user subject).
    User,
    /// The OAuth client.
    Client,
    /// The API key.
    Key,
    /// The agency, all its credentials together.
    Agency,
}

impl Dim {
    /// Every dimension.
    pub const ALL: [Dim; 5] = [Self::Ip, Self::User, Self::Client, Self::Key, Self::Agency];

    /// The name in files, flags and headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::User => "user",
            Self::Client => "client",
            Self::Key => "key",
            Self::Agency => "agency",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// What a class does when Redis is unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Let the request through (counted as `fail_open`).
    Open,
    /// Answer 503 `temporarily_unavailable` with `Retry-After`.
    Closed,
}

/// One class's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassSettings {
    /// The quota per dimension (a dimension without one is not limited by default).
    pub quotas: BTreeMap<Dim, Quota>,
    /// The fail mode.
    pub fail: FailMode,
}

/// Every class's settings, and the plans.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitSettings {
    /// `false`: no limit at all (`--rate-limits off`).
    pub enabled: bool,
    classes: [ClassSettings; 6],
    /// Plan name → class → the agency's aggregate quota.
    pub plans: BTreeMap<String, BTreeMap<Class, Quota>>,
}

fn q(limit: u32, period_seconds: u32) -> Quota {
    Quota {
        limit,
        period_seconds,
    }
}

impl Default for RateLimitSettings {
    /// The shipped defaults: sign-in and the token endpoint limited and fail-closed; the other
    /// classes unlimited unless an agency's plan or override says so, and fail-open.
    fn default() -> Self {
        let class = |quotas: &[(Dim, Quota)], fail| ClassSettings {
            quotas: quotas.iter().copied().collect(),
            fail,
        };
        let plan = |n: u32| -> BTreeMap<Class, Quota> {
            [
                (Class::Token, q(n, 1)),
                (Class::Introspect, q(n * 2, 1)),
                (Class::Check, q(n * 5, 1)),
                (Class::Read, q(n, 1)),
                (Class::Write, q(n / 2, 1)),
            ]
            .into_iter()
            .collect()
        };
        Self {
            enabled: true,
            classes: [
                // Per address only: a per-email quota would let anyone who knows an email keep
                // its owner out (a lockout); the account itself is guarded by the sign-in backoff,
                // which delays and never refuses. `signin.user=N/S` turns it on.
                class(&[(Dim::Ip, q(30, 60))], FailMode::Closed),
                class(
                    &[(Dim::Ip, q(300, 1)), (Dim::Client, q(300, 1))],
                    FailMode::Closed,
                ),
                class(&[], FailMode::Open),
                class(&[], FailMode::Open),
                class(&[], FailMode::Open),
                class(&[], FailMode::Open),
            ],
            plans: [
                ("free".to_owned(), plan(20)),
                ("standard".to_owned(), plan(200)),
                ("enterprise".to_owned(), plan(2000)),
            ]
            .into_iter()
            .collect(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid rate limit `{0}`: {1}")]
pub struct SettingError(pub String, pub &'static str);

/// `[rate_limits.<class>]` in the file: `fail` and `<dim> = { limit, period_seconds }`.
#[derive(Debug, Default, Deserialize)]
pub struct FileClass {
    fail: Option<FailMode>,
    #[serde(flatten)]
    quotas: BTreeMap<String, toml::Value>,
}

/// `[rate_limits]`: `enabled` and the classes.
#[derive(Debug, Default, Deserialize)]
pub struct FileRateLimits {
    enabled: Option<bool>,
    #[serde(flatten)]
    classes: BTreeMap<String, FileClass>,
}

impl RateLimitSettings {
    /// One class's settings.
    pub fn class(&self, c: Class) -> &ClassSettings {
        &self.classes[c.index()]
    }

    fn class_mut(&mut self, c: Class) -> &mut ClassSettings {
        &mut self.classes[c.index()]
    }

    /// The defaults, then the file's `[rate_limits]` and `[plans]`, then the flags
    /// (`CLASS.DIM=N/S`, `CLASS.DIM=off`, `CLASS.fail=open|closed`), then `--rate-limits`.
    pub fn resolve(
        file: Option<&FileRateLimits>,
        plans: Option<&BTreeMap<String, BTreeMap<String, Quota>>>,
        flags: &[String],
        enabled: Option<bool>,
    ) -> Result<Self, SettingError> {
        let mut s = Self::default();
        if let Some(f) = file {
            if let Some(e) = f.enabled {
                s.enabled = e;
            }
            for (name, fc) in &f.classes {
                let c = Class::from_name(name)
                    .ok_or_else(|| SettingError(name.clone(), "no such class"))?;
                if let Some(fail) = fc.fail {
                    s.class_mut(c).fail = fail;
                }
                for (dim, v) in &fc.quotas {
                    let what = format!("{name}.{dim}");
                    let d = Dim::from_name(dim)
                        .ok_or(SettingError(what.clone(), "no such dimension"))?;
                    if v.as_str() == Some("off") {
                        s.class_mut(c).quotas.remove(&d);
                        continue;
                    }
                    let quota: Quota = v.clone().try_into().map_err(|_| {
                        SettingError(
                            what.clone(),
                            "expected { limit, period_seconds } or \"off\"",
                        )
                    })?;
                    if !quota.is_valid() {
                        return Err(SettingError(what, "limit ≥ 1, period_seconds 1 to 86400"));
                    }
                    s.class_mut(c).quotas.insert(d, quota);
                }
            }
        }
        if let Some(plans) = plans {
            for (name, classes) in plans {
                let mut p = BTreeMap::new();
                for (class, quota) in classes {
                    let c = Class::from_name(class).ok_or_else(|| {
                        SettingError(format!("plans.{name}.{class}"), "no such class")
                    })?;
                    if !quota.is_valid() {
                        return Err(SettingError(
                            format!("plans.{name}.{class}"),
                            "limit ≥ 1, period_seconds 1 to 86400",
                        ));
                    }
                    p.insert(c, *quota);
                }
                s.plans.insert(name.clone(), p);
            }
        }
        for flag in flags {
            s.apply_flag(flag)?;
        }
        if let Some(e) = enabled {
            s.enabled = e;
        }
        Ok(s)
    }

    fn apply_flag(&mut self, flag: &str) -> Result<(), SettingError> {
        let bad = |m| SettingError(flag.to_owned(), m);
        let (lhs, value) = flag.split_once('=').ok_or(bad("expected CLASS.DIM=N/S"))?;
        let (class, dim) = lhs.split_once('.').ok_or(bad("expected CLASS.DIM=N/S"))?;
        let c = Class::from_name(class.trim()).ok_or(bad("no such class"))?;
        let value = value.trim();
        if dim.trim() == "fail" {
            self.class_mut(c).fail = match value {
                "open" => FailMode::Open,
                "closed" => FailMode::Closed,
                _ => return Err(bad("fail is `open` or `closed`")),
            };
            return Ok(());
        }
        let d = Dim::from_name(dim.trim()).ok_or(bad("no such dimension"))?;
        if value == "off" {
            self.class_mut(c).quotas.remove(&d);
            return Ok(());
        }
        let quota = Quota::parse(value).ok_or(bad("expected N/S with N ≥ 1 and S 1 to 86400"))?;
        self.class_mut(c).quotas.insert(d, quota);
        Ok(())
    }

    /// The settings with no limit at all (tests and benchmarks' "off").
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_flags() {
        let s = RateLimitSettings::default();
        assert!(s.enabled);
        assert_eq!(s.class(Class::Signin).fail, FailMode::Closed);
        assert_eq!(s.class(Class::Check).fail, FailMode::Open);
        assert!(s.class(Class::Check).quotas.is_empty());
        let file: FileRateLimits = toml::from_str(
            "[check]\nfail = \"closed\"\nip = { limit = 5, period_seconds = 1 }\n[signin]\nuser = \"off\"\n",
        )
        .unwrap_or_default();
        let s = RateLimitSettings::resolve(
            Some(&file),
            None,
            &["token.client=600/60".into(), "read.fail=closed".into()],
            None,
        );
        let Ok(s) = s else {
            unreachable!("valid settings: {s:?}")
        };
        assert_eq!(s.class(Class::Check).fail, FailMode::Closed);
        assert_eq!(s.class(Class::Check).quotas.get(&Dim::Ip), Some(&q(5, 1)));
        assert!(!s.class(Class::Signin).quotas.contains_key(&Dim::User));
        assert_eq!(
            s.class(Class::Token).quotas.get(&Dim::Client),
            Some(&q(600, 60))
        );
        assert_eq!(s.class(Class::Read).fail, FailMode::Closed);
        for bad in [
            "token.client=0/60",
            "nope.ip=1/1",
            "token.nope=1/1",
            "token.ip=1/90000",
            "token",
        ] {
            assert!(
                RateLimitSettings::resolve(None, None, &[bad.into()], None).is_err(),
                "{bad}"
            );
        }
        assert!(!RateLimitSettings::resolve(None, None, &[], Some(false))
            .map(|s| s.enabled)
            .unwrap_or(true));
    }
}
