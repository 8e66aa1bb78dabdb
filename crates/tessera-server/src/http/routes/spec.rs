//! What one `/v1` route declares: method, path, required access, summary, body schemas, success
//! status, whether it answers a secret, and its handler. The table itself is `super::table`.

use axum::http::Method;
use axum::routing::MethodRouter;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::gate::TargetFrom;
use crate::http::state::AppState;

/// What a route requires of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// This catalog permission, at the route's target.
    Permission(&'static str, TargetFrom),
    /// This catalog permission, held by a platform principal in the platform tenant.
    Platform(&'static str),
    /// Any valid credential (public metadata such as the catalog).
    Authenticated,
}

/// A schema generator for a request or response body.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One `/v1` route.
#[derive(Debug)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// axum path, with `{param}` segments.
    pub path: &'static str,
    /// What it requires.
    pub access: Access,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// The request body's schema.
    pub request: Option<SchemaFn>,
    /// The success body's schema.
    pub response: Option<SchemaFn>,
    /// The success status.
    pub status: u16,
    /// Whether its success body carries a secret (an API key, a client secret): the app
    /// answers it with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1,
    /// RFC 9111 §5.2.2.5), so no cache keeps it.
    pub secret: bool,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

impl RouteSpec {
    pub(super) fn new(
        method: Method,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            access,
            summary,
            request: None,
            response: None,
            status: 200,
            secret: false,
            handler,
        }
    }
    pub(super) fn carries_secret(mut self) -> Self {
        self.secret = true;
        self
    }
    pub(super) fn body<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema_of::<T>);
        self
    }
    pub(super) fn returns<T: JsonSchema>(mut self, status: u16) -> Self {
        self.response = Some(schema_of::<T>);
        self.status = status;
        self
    }
    pub(super) fn empty(mut self) -> Self {
        self.status = 204;
        self
    }
}
