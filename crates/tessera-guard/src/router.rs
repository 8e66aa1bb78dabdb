//! The router builder: the only way to add a route is through a method that takes its
//! [`Rule`] (or, for an unauthenticated route, an explicit `public_*` method), and the plain
//! axum `Router` is never handed out, so a route without a declaration does not compile.
//! [`GuardedRouter::build`] also refuses to start on a permission the catalog does not know,
//! a rule naming a path parameter the path lacks, or a method and path declared twice.
//! INVARIANT: every route of a [`GuardedApp`] is wrapped in a [`GuardLayer`] with its rule,
//! or was declared public by name.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::{on, MethodFilter};
use axum::Router;
use tower::Service;

use crate::error::GuardError;
use crate::guard::Guard;
use crate::layer::GuardLayer;
use crate::rule::Rule;

/// One declared route, as [`GuardedApp::routes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// `GET`, `POST`, ….
    pub method: &'static str,
    /// The path template.
    pub path: String,
    /// The permission, or `None` for a public route.
    pub permission: Option<String>,
}

/// Builds an axum application in which every route declares its permission.
#[derive(Debug)]
pub struct GuardedRouter<S = ()> {
    guard: Guard,
    router: Router<S>,
    routes: Vec<RouteInfo>,
    problems: Vec<String>,
}

macro_rules! method {
    ($name:ident, $filter:ident, $text:literal) => {
        #[doc = concat!("A `", $text, "` route that needs `rule`.")]
        pub fn $name<H, T>(self, path: &str, rule: Rule, handler: H) -> Self
        where
            H: Handler<T, S>,
            T: 'static,
        {
            self.add(MethodFilter::$filter, $text, path, Some(rule), handler)
        }
    };
}

impl<S: Clone + Send + Sync + 'static> GuardedRouter<S> {
    /// An empty application guarded by `guard`.
    pub fn new(guard: &Guard) -> Self {
        Self {
            guard: guard.clone(),
            router: Router::new(),
            routes: Vec::new(),
            problems: Vec::new(),
        }
    }

    method!(get, GET, "GET");
    method!(post, POST, "POST");
    method!(put, PUT, "PUT");
    method!(patch, PATCH, "PATCH");
    method!(delete, DELETE, "DELETE");

    /// A `GET` route anyone may call (health checks, public documents), declared as such.
    pub fn public_get<H, T>(self, path: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(MethodFilter::GET, "GET", path, None, handler)
    }

    fn add<H, T>(
        mut self,
        filter: MethodFilter,
        method: &'static str,
        path: &str,
        rule: Option<Rule>,
        handler: H,
    ) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        if self
            .routes
            .iter()
            .any(|r| r.method == method && r.path == path)
        {
            self.problems
                .push(format!("{method} {path} is declared twice"));
            return self;
        }
        if !path.starts_with('/') {
            self.problems
                .push(format!("{method} {path}: a path starts with `/`"));
            return self;
        }
        let route = match &rule {
            Some(rule) => {
                if !self.guard.catalog().has_permission(&rule.permission) {
                    self.problems.push(format!(
                        "{method} {path}: `{}` is not a permission of the catalog",
                        rule.permission
                    ));
                }
                for p in rule.params() {
                    if !path_params(path).contains(p) {
                        self.problems.push(format!(
                            "{method} {path}: the rule reads `{{{p}}}`, which the path lacks"
                        ));
                    }
                }
                on(filter, handler).route_layer(GuardLayer::new(self.guard.clone(), rule.clone()))
            }
            None => on(filter, handler),
        };
        self.routes.push(RouteInfo {
            method,
            path: path.to_owned(),
            permission: rule.map(|r| r.permission),
        });
        self.router = self.router.route(path, route);
        self
    }

    /// Supplies the handlers' state.
    pub fn with_state<S2>(self, state: S) -> GuardedRouter<S2> {
        GuardedRouter {
            guard: self.guard,
            router: self.router.with_state(state),
            routes: self.routes,
            problems: self.problems,
        }
    }
}

impl GuardedRouter<()> {
    /// The application, or every problem with the declarations (the service must not start).
    pub fn build(self) -> Result<GuardedApp, GuardError> {
        if !self.problems.is_empty() {
            return Err(GuardError::Config(self.problems.join("; ")));
        }
        Ok(GuardedApp {
            router: self.router,
            routes: self.routes,
        })
    }
}

/// `{name}` and `{*name}` parameters of a path template.
fn path_params(path: &str) -> BTreeSet<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|p| p.trim_start_matches('*'))
        .collect()
}

/// A built application: a tower service (and `axum::serve`-able through
/// [`GuardedApp::into_make_service`]) to which no unguarded route can be added.
#[derive(Debug, Clone)]
pub struct GuardedApp {
    router: Router,
    routes: Vec<RouteInfo>,
}

impl GuardedApp {
    /// The declared routes.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// For `axum::serve(listener, app.into_make_service())`.
    pub fn into_make_service(self) -> axum::routing::IntoMakeService<Router> {
        self.router.into_make_service()
    }

    /// Serves the application on `listener` until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router).await
    }
}

impl Service<Request> for GuardedApp {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Router as Service<Request>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.router.call(request)
    }
}
