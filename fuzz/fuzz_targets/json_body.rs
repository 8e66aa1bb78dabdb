//! JSON request bodies through the server's own `Json` extractor (`tessera_server::http::extract`):
//! the NUL scan, then serde into the check and batch-check bodies (NUL allowed) and into a
//! plain `serde_json::Value` (NUL refused, as for stored bodies). The first byte picks which.
//! INVARIANT: every input is a value or an `ApiError` (a 400), never a panic.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{header, Request};
use libfuzzer_sys::fuzz_target;
use tessera_server::http::extract::Json;
use tessera_server::usecase::apps::{CreateApp, RotateSecret};
use tessera_server::usecase::check::{BatchRequest, CheckRequest};

/// Runs a future that never waits (the body is already in memory) to completion.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn extract<T: serde::de::DeserializeOwned, const NUL_OK: bool>(body: &[u8]) {
    let request = Request::builder()
        .method("POST")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a static request is valid");
    let _ = ready(Json::<T, NUL_OK>::from_request(request, &()));
}

fuzz_target!(init: tessera_fuzz::catch_stack_overflow(), |data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => extract::<CheckRequest, true>(body),
        1 => extract::<BatchRequest, true>(body),
        2 => extract::<CreateApp, false>(body),
        3 => extract::<RotateSecret, false>(body),
        _ => extract::<serde_json::Value, false>(body),
    }
});
