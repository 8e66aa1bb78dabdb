//! Redirect-URI validation at app registration (`tessera_server::usecase::apps::redirect_uri`):
//! absolute, https or loopback http, no fragment, credentials or wildcards.
//! INVARIANT: every input is accepted or refused with a message, never a panic; an accepted
//! URI has a scheme and a host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::usecase::apps::redirect_uri;

fuzz_target!(init: tessera_fuzz::catch_stack_overflow(), |data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    if redirect_uri(uri).is_ok() {
        assert!(
            uri.starts_with("https://") || uri.starts_with("http://"),
            "accepted without an http(s) scheme: {uri:?}"
        );
        assert!(!uri.contains('#'), "accepted with a fragment: {uri:?}");
    }
});
