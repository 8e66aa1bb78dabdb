//! A page of a list, as every list route answers (`items`, `next_cursor`).

use schemars::JsonSchema;
use serde::Serialize;

/// A page of a list, as every list route answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct List<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor of the next page, or null on the last.
    pub next_cursor: Option<String>,
}

impl<T> From<tessera_store::Page<T>> for List<T> {
    fn from(p: tessera_store::Page<T>) -> Self {
        Self {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}
