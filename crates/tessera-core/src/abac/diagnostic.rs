//! Diagnostics for policy texts: Cedar's errors, positioned (1-based line and column, in
//! characters) and tied to the policy's place in its text.
//! INVARIANT: a message never carries the parser's internal policy id (`policy<N>`), which
//! means nothing to the author; the position in the text is reported instead.

use std::fmt::{self, Write as _};

use cedar_policy::PolicyId;
use serde::Serialize;

/// One problem in a policy text, positioned where Cedar says (1-based line and column, in chars).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyDiagnostic {
    /// What is wrong, in Cedar's words (lowercase), with its help when it has one.
    pub message: String,
    /// The line, when Cedar gives a source location.
    pub line: Option<usize>,
    /// The column, when Cedar gives a source location.
    pub column: Option<usize>,
    /// The policy's position in its text (0-based), when known.
    pub policy_index: Option<usize>,
}

impl fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl PolicyDiagnostic {
    pub(super) fn plain(message: String) -> Self {
        Self {
            message,
            line: None,
            column: None,
            policy_index: None,
        }
    }

    /// A Cedar error positioned in `text`. `policy` is the parser's id of the policy concerned,
    /// which means nothing to the author: it is taken out of the message.
    pub(super) fn from_cedar(
        err: &dyn miette::Diagnostic,
        text: &str,
        policy: Option<&PolicyId>,
    ) -> Self {
        let mut message = err.to_string();
        if let Some(help) = err.help() {
            let _ = write!(message, " (help: {help})");
        }
        if let Some(id) = policy {
            message = message.replace(&format!("for policy `{id}`, "), "");
        }
        let position = first_offset(err).map(|o| line_column(text, o));
        Self {
            message,
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            policy_index: policy.and_then(default_index),
        }
    }

    /// Names the policy record in the message (for [`PolicySet::compile`]).
    pub(super) fn in_record(mut self, record: &str) -> Self {
        self.message = format!("policy record `{record}`: {}", self.message);
        self
    }
}

fn first_offset(err: &dyn miette::Diagnostic) -> Option<usize> {
    err.labels()?.next().map(|l| l.offset())
}

/// 1-based line and column (in chars) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub(super) fn with_position(err: &dyn miette::Diagnostic, text: &str) -> String {
    match first_offset(err) {
        Some(o) => {
            let (line, column) = line_column(text, o);
            format!("{err} (at {line}:{column})")
        }
        None => err.to_string(),
    }
}

/// The position of a policy in its text, from the id the parser gives it (`policy<N>`).
pub(super) fn default_index(id: &PolicyId) -> Option<usize> {
    let id: &str = id.as_ref();
    id.strip_prefix("policy")?.parse().ok()
}
