//! The field patterns of the OpenAPI document; the rules themselves are `usecase::validate`.

pub use crate::usecase::validate::{EMAIL_PATTERN, NAME_PATTERN, NO_NUL_PATTERN};
