//! HTML for the `/oauth/authorize` flow: sign-in, consent and error pages, rendered on the
//! server with no script and no external asset (the only CSS is inline).
//! INVARIANT: every interpolated value goes through [`escape`] and every attribute value is
//! double-quoted, so no input can open a tag or leave an attribute. The pages are meant to be
//! served with [`CSP`] (see [`html_response`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of these pages: nothing may load or run (`default-src 'none'`)
/// except the inline `<style>`; no page may frame them (clickjacking a consent button); no
/// `<base>` may redirect relative URLs.
///
/// There is deliberately no `form-action` directive. The consent form posts to our own origin,
/// but the answer to that POST is a 303 to the client's `redirect_uri` (another origin), and
/// Chromium-based browsers check `form-action` against every URL of the redirect chain, so
/// `form-action 'self'` would break every successful authorization (the same holds for a sign-in
/// that redirects straight to the client). Listing each client's origin per response would work
/// but turns the header into a per-request value for little gain: `form-action` only matters
/// once markup can be injected, and [`escape`] is the guard against that; with no script
/// allowed, injected markup could not read the page anyway.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// Escapes `s` for HTML text and double- or single-quoted attribute values: `& < > " '`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// What the sign-in page shows.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    /// The form's action URL (ours: the caller builds it, it is escaped, never trusted as markup).
    pub action: &'a str,
    /// The CSRF token, posted back as `csrf_token`.
    pub csrf: &'a str,
    /// The name of the app the user signs in to.
    pub client_name: &'a str,
    /// The email to prefill (empty for none).
    pub email: &'a str,
    /// A message for the user, shown in a `role="alert"` element.
    pub error: Option<&'a str>,
    /// Extra hidden inputs `(name, value)`, e.g. the authorization request's parameters.
    pub hidden: &'a [(&'a str, &'a str)],
}

/// What the consent page shows.
#[derive(Debug, Clone, Copy)]
pub struct Consent<'a> {
    /// The form's action URL.
    pub action: &'a str,
    /// The CSRF token, posted back as `csrf_token`.
    pub csrf: &'a str,
    /// The app's name.
    pub client_name: &'a str,
    /// What kind of app it is, e.g. "Marketplace app".
    pub client_kind: &'a str,
    /// Who is signed in.
    pub user_email: &'a str,
    /// The name of the account the app will be installed on, when known. With `accounts`, the
    /// choice whose name equals it is preselected.
    pub account: Option<&'a str>,
    /// `(id, name)` choices, rendered as `<select name="account">` when non-empty.
    pub accounts: &'a [(&'a str, &'a str)],
    /// `(scope name, plain-words description)` of every scope asked for.
    pub scopes: &'a [(&'a str, &'a str)],
    /// Extra hidden inputs `(name, value)`.
    pub hidden: &'a [(&'a str, &'a str)],
}

/// The sign-in page: email and password posted to `p.action` with the CSRF token.
pub fn sign_in_page(p: &SignIn<'_>) -> String {
    let mut body = String::new();
    body.push_str("<h1>Sign in</h1>\n");
    body.push_str(&format!(
        "<p>to continue to <strong>{}</strong></p>\n",
        escape(p.client_name)
    ));
    if let Some(error) = p.error {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n",
            escape(error)
        ));
    }
    open_form(&mut body, p.action, p.csrf, p.hidden);
    // Focus goes to the first empty field; `autofocus` needs no script.
    let (focus_email, focus_password) = if p.email.is_empty() {
        (" autofocus", "")
    } else {
        ("", " autofocus")
    };
    body.push_str(&format!(
        "<label for=\"email\">Email</label>\n\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" \
         required value=\"{}\"{focus_email}>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required{focus_password}>\n\
         <button type=\"submit\">Sign in</button>\n\
         </form>\n",
        escape(p.email)
    ));
    layout(&format!("Sign in to {}", p.client_name), &body)
}

/// The consent page: the scopes in plain words, the account, and Allow / Deny buttons posting
/// `decision=allow|deny` with the CSRF token.
pub fn consent_page(p: &Consent<'_>) -> String {
    let client = escape(p.client_name);
    let mut body = String::new();
    body.push_str(&format!("<h1>Allow {client} access?</h1>\n"));
    body.push_str(&format!(
        "<p><strong>{client}</strong> <span class=\"muted\">({})</span> asks for access on \
         behalf of <strong>{}</strong>.</p>\n",
        escape(p.client_kind),
        escape(p.user_email)
    ));
    if p.accounts.is_empty() {
        if let Some(account) = p.account {
            body.push_str(&format!(
                "<p>Account: <strong>{}</strong></p>\n",
                escape(account)
            ));
        }
    }
    if p.scopes.is_empty() {
        body.push_str("<p>It asks for no access to your data.</p>\n");
    } else {
        body.push_str("<p>It will be able to:</p>\n<ul class=\"scopes\">\n");
        for (name, description) in p.scopes {
            body.push_str(&format!(
                "<li>{} <code>{}</code></li>\n",
                escape(description),
                escape(name)
            ));
        }
        body.push_str("</ul>\n");
    }
    open_form(&mut body, p.action, p.csrf, p.hidden);
    if !p.accounts.is_empty() {
        body.push_str(
            "<label for=\"account\">Account</label>\n<select id=\"account\" name=\"account\" required>\n",
        );
        for (id, name) in p.accounts {
            let selected = if p.account == Some(*name) {
                " selected"
            } else {
                ""
            };
            body.push_str(&format!(
                "<option value=\"{}\"{selected}>{}</option>\n",
                escape(id),
                escape(name)
            ));
        }
        body.push_str("</select>\n");
    }
    // Deny comes first in the markup: pressing Enter submits the first button, and an
    // accidental keystroke must not grant access.
    body.push_str(
        "<div class=\"buttons\">\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
         </div>\n</form>\n",
    );
    layout(&format!("Allow {} access?", p.client_name), &body)
}

/// A page that only explains what went wrong (no form, no link back to a client whose
/// `redirect_uri` could not be trusted).
pub fn error_page(title: &str, message: &str) -> String {
    let body = format!(
        "<h1>{}</h1>\n<p role=\"alert\">{}</p>\n",
        escape(title),
        escape(message)
    );
    layout(title, &body)
}

/// An HTML response with the headers these pages need: [`CSP`], `X-Frame-Options: DENY` for
/// browsers without `frame-ancestors`, `Cache-Control: no-store` (the pages carry a CSRF token),
/// `Referrer-Policy: no-referrer` (the authorization request's URL must not leak to the client or
/// anyone else) and `X-Content-Type-Options: nosniff`.
pub fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Opens a POST form to `action` with the CSRF token and the extra hidden inputs.
fn open_form(out: &mut String, action: &str, csrf: &str, hidden: &[(&str, &str)]) {
    out.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\n<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n",
        escape(action),
        escape(csrf)
    ));
    for (name, value) in hidden {
        out.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape(name),
            escape(value)
        ));
    }
}

const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;\
color:#1a1a1a;background:#f4f5f7;margin:0;padding:2rem 1rem}\
main{max-width:26rem;margin:0 auto;background:#fff;border:1px solid #dde;border-radius:8px;padding:1.5rem 2rem}\
h1{font-size:1.4rem;margin:0 0 .5rem}\
label{display:block;margin:1rem 0 .25rem;font-weight:600}\
input,select{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;border:1px solid #99a;border-radius:4px}\
button{margin-top:1.25rem;padding:.55rem 1.2rem;font:inherit;border:1px solid #1d4ed8;border-radius:4px;\
background:#1d4ed8;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#1d4ed8}\
.buttons{display:flex;gap:.75rem;justify-content:flex-end}\
.error{color:#9b1c1c;background:#fdecec;border:1px solid #f5c2c2;border-radius:4px;padding:.5rem .75rem}\
.muted{color:#556}\
.scopes li{margin:.25rem 0}\
code{font-size:.85em;background:#f0f1f4;padding:0 .25em;border-radius:3px}";

/// The document around `body`; `title` is escaped here, `body` is already markup.
fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n\
         </body>\n</html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = "<script>alert('x')</script>\"&";

    /// No raw `<`, `"` or `'` of `NASTY` survives anywhere in `html`.
    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert('x')"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&amp;"));
    }

    fn assert_document(html: &str) {
        assert!(
            html.starts_with("<!doctype html>\n<html lang=\"en\">"),
            "{html}"
        );
        assert!(html.contains("<meta name=\"viewport\""));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<title>"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("src="));
        assert!(!html.contains("href="));
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(escape("<>&\"'"), "&lt;&gt;&amp;&quot;&#x27;");
        assert_eq!(escape("plain é text"), "plain é text");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape(""), "");
    }

    fn sign_in(error: Option<&'static str>, email: &'static str) -> String {
        sign_in_page(&SignIn {
            action: "/oauth/authorize/sign-in",
            csrf: "csrf-123",
            client_name: "Acme CRM",
            email,
            error,
            hidden: &[("client_id", "app_1"), ("state", "s t")],
        })
    }

    #[test]
    fn sign_in_page_has_the_form() {
        let html = sign_in(None, "");
        assert_document(&html);
        assert!(html.contains("<title>Sign in to Acme CRM</title>"));
        assert!(html.contains("<form method=\"post\" action=\"/oauth/authorize/sign-in\">"));
        assert!(html.contains(
            "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"\" autofocus>"
        ));
        assert!(html.contains(
            "name=\"password\" type=\"password\" autocomplete=\"current-password\" required>"
        ));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf_token\" value=\"csrf-123\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"client_id\" value=\"app_1\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"state\" value=\"s t\">"));
        assert!(html.contains("<button type=\"submit\">Sign in</button>"));
        assert!(!html.contains("role=\"alert\""));
    }

    #[test]
    fn sign_in_page_shows_the_error_and_prefill() {
        let html = sign_in(Some("Wrong email or password."), "a@example.com");
        assert!(html.contains("role=\"alert\">Wrong email or password.</p>"));
        assert!(html.contains("value=\"a@example.com\">"));
        assert!(html.contains("autocomplete=\"current-password\" required autofocus>"));
    }

    #[test]
    fn sign_in_page_escapes_everything() {
        let html = sign_in_page(&SignIn {
            action: NASTY,
            csrf: NASTY,
            client_name: NASTY,
            email: NASTY,
            error: Some(NASTY),
            hidden: &[(NASTY, NASTY)],
        });
        assert_escaped(&html);
        // action, csrf, name+value of the hidden pair, client (title + body), email, error.
        let escaped = escape(NASTY);
        assert_eq!(html.matches(&escaped).count(), 8, "{html}");
    }

    fn consent(accounts: &'static [(&'static str, &'static str)]) -> String {
        consent_page(&Consent {
            action: "/oauth/authorize/consent",
            csrf: "csrf-9",
            client_name: "Acme CRM",
            client_kind: "Marketplace app",
            user_email: "ann@example.com",
            account: Some("Main Street Bakery"),
            accounts,
            scopes: &[
                ("contacts.readonly", "See your contacts"),
                ("calendars.write", "Change your calendars"),
            ],
            hidden: &[("request", "req_1")],
        })
    }

    #[test]
    fn consent_page_lists_scopes_and_account() {
        let html = consent(&[]);
        assert_document(&html);
        assert!(html.contains("<title>Allow Acme CRM access?</title>"));
        assert!(html.contains("(Marketplace app)"));
        assert!(html.contains("<strong>ann@example.com</strong>"));
        assert!(html.contains("Account: <strong>Main Street Bakery</strong>"));
        assert!(html.contains("<li>See your contacts <code>contacts.readonly</code></li>"));
        assert!(html.contains("<li>Change your calendars <code>calendars.write</code></li>"));
        assert!(html.contains("<form method=\"post\" action=\"/oauth/authorize/consent\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf_token\" value=\"csrf-9\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"request\" value=\"req_1\">"));
        let deny = html
            .find("<button type=\"submit\" name=\"decision\" value=\"deny\"")
            .unwrap();
        let allow = html
            .find("<button type=\"submit\" name=\"decision\" value=\"allow\"")
            .unwrap();
        assert!(deny < allow, "deny must be the implicit (Enter) submission");
        assert!(!html.contains("<select"));
    }

    #[test]
    fn consent_page_offers_a_choice_of_accounts() {
        let html = consent(&[("acc_1", "Downtown Gym"), ("acc_2", "Main Street Bakery")]);
        assert!(html.contains("<select id=\"account\" name=\"account\" required>"));
        assert!(html.contains("<option value=\"acc_1\">Downtown Gym</option>"));
        assert!(html.contains("<option value=\"acc_2\" selected>Main Street Bakery</option>"));
        let select = html.find("<select").unwrap();
        let form = html.find("<form").unwrap();
        let end = html.find("</form>").unwrap();
        assert!(
            form < select && select < end,
            "the select posts with the form"
        );
    }

    #[test]
    fn consent_page_without_scopes_says_so() {
        let html = consent_page(&Consent {
            action: "/c",
            csrf: "t",
            client_name: "A",
            client_kind: "App",
            user_email: "u@example.com",
            account: None,
            accounts: &[],
            scopes: &[],
            hidden: &[],
        });
        assert!(html.contains("no access to your data"));
        assert!(!html.contains("<ul"));
        assert!(!html.contains("Account:"));
    }

    #[test]
    fn consent_page_escapes_everything() {
        let html = consent_page(&Consent {
            action: NASTY,
            csrf: NASTY,
            client_name: NASTY,
            client_kind: NASTY,
            user_email: NASTY,
            account: Some(NASTY),
            accounts: &[(NASTY, NASTY)],
            scopes: &[(NASTY, NASTY)],
            hidden: &[(NASTY, NASTY)],
        });
        assert_escaped(&html);
        // title, h1, strong, kind, email, 2 scope, action, csrf, 2 hidden, 2 option.
        assert_eq!(html.matches(&escape(NASTY)).count(), 13, "{html}");
    }

    #[test]
    fn error_page_escapes() {
        let html = error_page("Bad request", NASTY);
        assert_document(&html);
        assert!(html.contains("<title>Bad request</title>"));
        assert!(html.contains("<h1>Bad request</h1>"));
        assert_escaped(&html);
        assert!(!html.contains("<form"));
    }

    #[test]
    fn csp_is_strict() {
        assert!(CSP.contains("default-src 'none'"));
        assert!(CSP.contains("style-src 'unsafe-inline'"));
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(CSP.contains("base-uri 'none'"));
        assert!(!CSP.contains("script-src"));
        assert!(!CSP.contains("form-action"), "see the doc comment of CSP");
    }

    #[test]
    fn html_response_sets_the_headers() {
        let r = html_response(StatusCode::OK, error_page("t", "m"));
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
