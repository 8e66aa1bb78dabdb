//! Field validation shared by the use cases: every rule answers 400 with the field's name. The
//! patterns describe the same rules to the OpenAPI document.

use crate::error::ApiError;

/// What `name` accepts, for the OpenAPI document: no control characters, not blank.
pub const NAME_PATTERN: &str =
    r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";
/// Free text that is stored: anything but NUL (which PostgreSQL text cannot hold).
pub const NO_NUL_PATTERN: &str = r"^[^\u0000]*$";
/// What `email` accepts, for the OpenAPI document.
pub const EMAIL_PATTERN: &str = r"^[^\s@\x00-\x1F\x7F-\x9F]{1,64}@([^\s@.\-\x00-\x1F\x7F-\x9F]([^\s@.\x00-\x1F\x7F-\x9F]*[^\s@.\-\x00-\x1F\x7F-\x9F])?\.)+[^\s@.\-\x00-\x1F\x7F-\x9F]([^\s@.\x00-\x1F\x7F-\x9F]*[^\s@.\-\x00-\x1F\x7F-\x9F])?$";

/// A display name: trimmed, 1 to 200 characters, no control characters.
pub fn name(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > 200 {
        return Err(ApiError::invalid(format!(
            "`{field}` must be 1 to 200 characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "`{field}` must not contain control characters"
        )));
    }
    Ok(v.to_owned())
}

/// An email address, checked for shape (the mailbox itself is not probed).
pub fn email(value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    let bad = || ApiError::invalid("`email` is not a valid email address");
    if v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = v.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || domain.contains('@') || !domain.contains('.') {
        return Err(bad());
    }
    if domain
        .split('.')
        .any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-'))
    {
        return Err(bad());
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.org", "ü@bücher.de"] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@@b.co",
            "a b@c.co",
            "a@b..co",
            "a@-b.co",
            "a@b.co\u{7}",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(name("name", "  Acme  ").ok().as_deref(), Some("Acme"));
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(201)).is_err());
        assert!(name("name", "a\u{0}b").is_err());
    }
}
