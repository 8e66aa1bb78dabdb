//! HTTP tests through the app: the quick start, tenant isolation (I1), no escalation (I2),
//! deny by default (I3), bad input (I7), API key life cycle, audit, operations, and a real
//! server on port 0 (also against slow and greedy clients).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

/// Runs a flow (`async fn name(app: &TestApp)`) on SQLite, and on PostgreSQL when a test
/// database is configured; the calling module has `TestApp` in scope.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(&super::TestApp::sqlite().await).await;
                }
                #[tokio::test]
                async fn postgres() {
                    if let Some(app) = super::TestApp::postgres().await {
                        super::$name(&app).await;
                    }
                }
            }
        )*
    };
}

mod audit;
mod audit_tamper;
mod authz;
mod bad_input;
mod erase;
mod escalation;
mod forward_auth;
mod grants;
mod interop_rust;
mod isolation;
mod keys;
mod limits;
mod lockout;
mod oauth;
mod ops;
mod props;
mod proxies;
mod quickstart;
mod reports;
mod resource_servers;
mod review;
mod revocations;
mod secrets;
mod seed;
mod signing_keys;
mod slow_clients;
mod suspension;
mod takeover;
mod webhooks;
