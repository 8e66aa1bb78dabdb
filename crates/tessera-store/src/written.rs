//! What a unit of work wrote, as its own task saw it: how many writes it committed through the
//! store's audited write path, and how many of them recorded a change-log entry (a write that
//! can change a decision, I5). The HTTP gate runs each write request under [`observe`] and
//! drops the agency's cached authorization state only when a change was recorded, or when it
//! saw no write at all (a write it could not see is treated as a change: fail safe).
//!
//! INVARIANT: `changes` counts every `record_change` made in the observed task, before its
//! commit; `writes` counts commits of the audited write path (`finish`) after they succeed.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static SEEN: Cell<Written>;
}

/// What an observed unit of work wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Audited writes committed.
    pub writes: u32,
    /// Change-log entries recorded (decision-changing writes).
    pub changes: u32,
}

impl Written {
    /// Whether what was cached about the agency may be stale: a change was recorded, or no
    /// write was seen (the work may have written where this task could not see it).
    pub fn may_change_decisions(self) -> bool {
        self.changes > 0 || self.writes == 0
    }
}

/// Runs `work`, counting the store writes it makes in this task.
pub async fn observe<F: Future>(work: F) -> (F::Output, Written) {
    SEEN.scope(Cell::new(Written::default()), async move {
        let out = work.await;
        (out, SEEN.with(Cell::get))
    })
    .await
}

fn bump(f: impl FnOnce(&mut Written)) {
    // Outside `observe` (background jobs, tests): nothing to count.
    let _ = SEEN.try_with(|c| {
        let mut w = c.get();
        f(&mut w);
        c.set(w);
    });
}

/// A change-log entry was recorded in the current task.
pub(crate) fn changed() {
    bump(|w| w.changes = w.changes.saturating_add(1));
}

/// An audited write committed in the current task.
pub(crate) fn committed() {
    bump(|w| w.writes = w.writes.saturating_add(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_only_inside_observe() {
        committed();
        changed();
        let ((), w) = observe(async {
            committed();
            committed();
            changed();
        })
        .await;
        assert_eq!(
            w,
            Written {
                writes: 2,
                changes: 1
            }
        );
        assert!(w.may_change_decisions());
    }

    #[tokio::test]
    async fn no_write_seen_is_treated_as_a_change() {
        let ((), w) = observe(async {}).await;
        assert!(w.may_change_decisions());
        let ((), w) = observe(async { committed() }).await;
        assert!(!w.may_change_decisions());
    }
}
