//! The tower layer that guards one route: authenticate, resolve the tenant, check the
//! permission (scopes, then `/v1/check` when declared), then call the handler with the
//! [`Principal`] and [`Tenancy`] in the request's extensions.
//! INVARIANT: the inner service is called only after every check passed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts as _, RawPathParams, Request};
use axum::http::header::AUTHORIZATION;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::check::CheckTarget;
use crate::guard::Guard;
use crate::principal::{Principal, Tenancy};
use crate::refusal::Refusal;
use crate::rule::Rule;

/// Guards a route with a [`Rule`]. [`crate::GuardedRouter`] applies it to every route it
/// builds; with a plain axum router, apply it per route (`route_layer`).
#[derive(Debug, Clone)]
pub struct GuardLayer {
    guard: Guard,
    rule: Arc<Rule>,
}

impl GuardLayer {
    /// A layer enforcing `rule` with `guard`.
    pub fn new(guard: Guard, rule: Rule) -> Self {
        Self {
            guard,
            rule: Arc::new(rule),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            guard: self.guard.clone(),
            rule: self.rule.clone(),
            inner,
        }
    }
}

/// The service [`GuardLayer`] builds.
#[derive(Debug, Clone)]
pub struct GuardService<S> {
    guard: Guard,
    rule: Arc<Rule>,
    inner: S,
}

impl<S> Service<Request> for GuardService<S>
where
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        let rule = self.rule.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match admit(&guard, &rule, &mut parts).await {
                Ok((principal, tenancy)) => {
                    parts.extensions.insert(principal);
                    parts.extensions.insert(tenancy);
                    let request = Request::from_parts(parts, body);
                    Ok(inner.call(request).await.into_response())
                }
                Err(refusal) => Ok(refusal.into_response_with_realm(&guard.config().realm)),
            }
        })
    }
}

/// Every check of one request, in order.
async fn admit(
    guard: &Guard,
    rule: &Rule,
    parts: &mut axum::http::request::Parts,
) -> Result<(Principal, Tenancy), Refusal> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| Refusal::invalid("malformed authorization header"))
        })
        .transpose()?;
    let principal = guard.authenticate_header(header).await?;
    let params: Vec<(String, String)> = if rule.params().next().is_some() {
        RawPathParams::from_request_parts(parts, &())
            .await
            .map_err(|_| Refusal::NotFound)?
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    } else {
        Vec::new()
    };
    let param = |name: &Option<String>| {
        name.as_deref()
            .and_then(|n| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
    };
    let agency = param(&rule.agency_param).unwrap_or_else(|| principal.agency().to_owned());
    let account = param(&rule.account_param).or_else(|| principal.account().map(str::to_owned));
    // Another tenant's object: 404, so its existence is not disclosed.
    if agency != principal.agency() {
        return Err(Refusal::NotFound);
    }
    if let (Some(mine), Some(asked)) = (principal.account(), account.as_deref()) {
        if mine != asked {
            return Err(Refusal::NotFound);
        }
    }
    if !principal.has_permission(&rule.permission) {
        return Err(Refusal::InsufficientScope {
            permission: rule.permission.clone(),
            scopes: guard.catalog().scopes_granting(&rule.permission),
        });
    }
    if rule.check {
        let id = param(&rule.id_param);
        let resource_type = guard
            .catalog()
            .resource_type(&rule.permission)
            .unwrap_or_default();
        let target = CheckTarget {
            resource_type,
            id: id.as_deref(),
            agency: &agency,
            account: account.as_deref(),
        };
        if !guard.check(&principal, &rule.permission, &target).await? {
            return Err(Refusal::Forbidden(format!(
                "`{}` is not granted on this resource",
                rule.permission
            )));
        }
    }
    Ok((principal, Tenancy { agency, account }))
}
