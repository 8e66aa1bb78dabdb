//! The server-rendered UI of the OAuth authorization endpoint (`/oauth/authorize`): the sign-in,
//! consent and error pages, tamper-proof cookie values with CSRF tokens, and the sign-in
//! slow-down. Pure building blocks: no routes, no store, time passed in.
//! INVARIANT: every value interpolated into a page goes through [`pages::escape`]; pages carry no
//! script and load nothing; cookie values and CSRF tokens are HMAC-authenticated and checked in
//! constant time; failed sign-ins slow down, they never lock an account out.

pub mod cookie;
pub mod pages;
pub mod throttle;

pub use cookie::{
    is_loopback_issuer, read_cookie, set_cookie_header, CookieKey, CSRF_LIFETIME_SECS,
};
pub use pages::{
    consent_page, error_page, escape, html_response, sign_in_page, Consent, SignIn, CSP,
};
pub use throttle::SignInThrottle;
