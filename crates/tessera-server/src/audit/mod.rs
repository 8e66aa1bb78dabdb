//! The audit trail's server side: building records of acts, and the writer that group-commits
//! hot-path events to each agency's hash chain before the answer (I5: durable first).

pub mod action;
pub mod checkpoint;
pub mod keys;
pub mod offline;
pub mod record;
pub mod reference;
pub mod sealed;
pub mod verify;
pub mod writer;
