//! Paging for list calls: what a caller asks for (`PageRequest`) and what it gets back
//! (`Page`), with the cursor to the next page.

/// One page of a list: `limit` items after `cursor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (1..=200).
    pub limit: u32,
    /// The last id (or sequence number) of the previous page.
    pub cursor: Option<String>,
}

/// A page of results; `next_cursor` is `None` on the last page.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
}
