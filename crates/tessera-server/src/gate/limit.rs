//! Which buckets a request is charged to, once its credential is known: one limiter decision
//! per request. `/v1` and the introspection/revocation endpoints charge the caller's IP, API
//! key (its own `rate_limit`, shared across classes, or the class's `key` quota), OAuth
//! client, user and agency (its override, plan, or the class's `agency` quota); the token
//! endpoint its IP, client and the client's agency (its IP alone for a request without a
//! client or grant type); sign-in its IP and the email (hashed).
//! A request whose authentication failed is charged to its IP only.
//! INVARIANT: the overrides come from the limiter's cache, reloaded only when the agency's
//! generation moved (a store read per agency change, never per request).

use std::net::IpAddr;
use std::sync::Arc;

use tessera_core::AgencyId;

use crate::caller::{Caller, Credential};
use crate::ratelimit::plans::{effective, AgencyLimits};
use crate::ratelimit::{Bucket, Class, Dim, Quota, Verdict};
use crate::services::Services;

fn bucket(class: Class, dim: Dim, id: &str, quota: Quota) -> Bucket {
    Bucket {
        dim,
        name: format!("{}:{}:{id}", class.name(), dim.name()).into_bytes(),
        quota,
    }
}

fn ip_bucket(s: &Services, class: Class, addr: Option<IpAddr>) -> Option<Bucket> {
    let q = s.limiter.settings.class(class).quotas.get(&Dim::Ip)?;
    // One client: an IPv4 address, or an IPv6 /64 (the connection caps' grouping).
    let client = crate::net::client_key(addr?);
    Some(bucket(class, Dim::Ip, &client.to_string(), *q))
}

/// The overrides of `agency`, from the cache or (once per generation) the store.
pub async fn agency_limits(s: &Services, agency: &AgencyId) -> Option<Arc<AgencyLimits>> {
    let generation = s.engine.generation_of(agency);
    if let Some(l) = s.limiter.overrides.get(agency, generation) {
        return Some(l);
    }
    let scope = s.admission.admit(agency.clone());
    let rec = match s.store.get_agency_limits(&scope).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "agency limits unavailable: the defaults apply");
            return None;
        }
    };
    let limits = Arc::new(crate::ratelimit::plans::from_record(rec.as_ref()));
    s.limiter.overrides.put(agency, generation, limits.clone());
    Some(limits)
}

async fn agency_bucket(s: &Services, class: Class, agency: &AgencyId) -> Option<Bucket> {
    let limits = agency_limits(s, agency).await;
    let q = effective(&s.limiter.settings, limits.as_deref(), class)?;
    Some(bucket(class, Dim::Agency, agency.as_str(), q))
}

/// Decides a request of an authenticated caller (or, `None`, one whose authentication
/// failed: its IP only).
pub async fn for_caller(
    s: &Services,
    class: Class,
    addr: Option<IpAddr>,
    caller: Option<&Caller>,
) -> Verdict {
    if !s.limiter.enabled() {
        return Verdict::Allowed(None);
    }
    let quotas = &s.limiter.settings.class(class).quotas;
    let mut b: Vec<Bucket> = ip_bucket(s, class, addr).into_iter().collect();
    if let Some(c) = caller {
        match &c.credential {
            Credential::ApiKey(k) => match k.rate_limit {
                // The key's own limit holds across every class it calls.
                Some(rl) => b.push(Bucket {
                    dim: Dim::Key,
                    name: format!("key:{}", k.id.as_str()).into_bytes(),
                    quota: Quota {
                        limit: rl.limit,
                        period_seconds: rl.period_seconds,
                    },
                }),
                None => {
                    if let Some(q) = quotas.get(&Dim::Key) {
                        b.push(bucket(class, Dim::Key, k.id.as_str(), *q));
                    }
                }
            },
            Credential::AccessToken(t) => {
                if let Some(q) = quotas.get(&Dim::Client) {
                    b.push(bucket(class, Dim::Client, &t.client_id, *q));
                }
                if t.sub != t.client_id {
                    if let Some(q) = quotas.get(&Dim::User) {
                        b.push(bucket(class, Dim::User, &t.sub, *q));
                    }
                }
            }
            Credential::None => {}
        }
        b.extend(agency_bucket(s, class, &c.agency).await);
    }
    s.limiter.decide(class, &b).await
}

/// Decides a request of an OAuth client at the token, introspection or revocation endpoint
/// (`None`: no client authenticated: its IP only).
pub async fn for_client(
    s: &Services,
    class: Class,
    addr: Option<IpAddr>,
    client: Option<(&str, &AgencyId)>,
) -> Verdict {
    if !s.limiter.enabled() {
        return Verdict::Allowed(None);
    }
    let mut b: Vec<Bucket> = ip_bucket(s, class, addr).into_iter().collect();
    if let Some((id, agency)) = client {
        if let Some(q) = s.limiter.settings.class(class).quotas.get(&Dim::Client) {
            b.push(bucket(class, Dim::Client, id, *q));
        }
        b.extend(agency_bucket(s, class, agency).await);
    }
    s.limiter.decide(class, &b).await
}

/// Decides a sign-in attempt: its IP and the email (normalised; hashed before any store).
pub async fn for_sign_in(s: &Services, addr: Option<IpAddr>, email: &str) -> Verdict {
    if !s.limiter.enabled() {
        return Verdict::Allowed(None);
    }
    let mut b: Vec<Bucket> = ip_bucket(s, Class::Signin, addr).into_iter().collect();
    let email = email.trim().to_lowercase();
    if !email.is_empty() {
        if let Some(q) = s
            .limiter
            .settings
            .class(Class::Signin)
            .quotas
            .get(&Dim::User)
        {
            b.push(bucket(Class::Signin, Dim::User, &email, *q));
        }
    }
    s.limiter.decide(Class::Signin, &b).await
}

/// The class of a `/v1` request.
pub fn v1_class(method: &axum::http::Method, path: &str) -> Class {
    if path == "/v1/check" || path == "/v1/check/batch" || path == "/v1/forward-auth" {
        Class::Check
    } else if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        Class::Read
    } else {
        Class::Write
    }
}
