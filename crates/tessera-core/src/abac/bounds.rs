//! Bounds and parsing of policy texts: size, bracket nesting, expression depth, literal and
//! `like` pattern lengths, checked before or right after Cedar's recursive parser runs, and
//! write-time validation against the schema.
//! INVARIANT: Cedar's parser and validator run only on a text within [`MAX_POLICY_TEXT_BYTES`]
//! and [`MAX_POLICY_NESTING`], on a thread with a large stack, never on a request's thread.

use std::str::FromStr;

use cedar_policy::{Schema, ValidationMode, ValidationWarning, Validator};
use serde_json::Value;

use super::diagnostic::{default_index, line_column, PolicyDiagnostic};

/// The largest policy text Cedar's parser is given, in bytes.
pub const MAX_POLICY_TEXT_BYTES: usize = 32 * 1024;
/// The deepest nesting of `(`, `[` and `{` in a policy text, counted before parsing.
pub const MAX_POLICY_NESTING: usize = 32;
/// The deepest a parsed policy may be (its JSON form, which grows with every nested
/// expression, including long operator chains such as `1 + 1 + … + 1`).
pub const MAX_POLICY_DEPTH: usize = 160;
/// The stack Cedar's parser and validator run on. Their recursion grows with the input, so
/// they never run on a request's worker thread (whose stack is small): a 400-byte policy
/// nested 150 deep used to overflow it and abort the process.
const PARSER_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Checks a policy text's size and bracket nesting without parsing it (strings and `//`
/// comments skipped), so a hostile text is refused before any recursive code reads it.
pub fn check_text_bounds(text: &str) -> Result<(), PolicyDiagnostic> {
    if text.len() > MAX_POLICY_TEXT_BYTES {
        return Err(PolicyDiagnostic::plain(format!(
            "the policy text is {} bytes, more than the {MAX_POLICY_TEXT_BYTES} allowed",
            text.len()
        )));
    }
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                // A string literal: skip to its closing quote, honouring `\` escapes.
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while bytes.get(i).is_some_and(|c| *c != b'\n') {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_POLICY_NESTING {
                    let (line, column) = line_column(text, i);
                    return Err(PolicyDiagnostic {
                        line: Some(line),
                        column: Some(column),
                        ..PolicyDiagnostic::plain(format!(
                            "the policy nests brackets more than {MAX_POLICY_NESTING} deep"
                        ))
                    });
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Runs `f` on a thread with a stack large enough for Cedar's recursion on any text that
/// passed [`check_text_bounds`]; the thread's stack is reserved, and only touched pages count.
pub(super) fn on_parser_stack<T: Send>(
    f: impl FnOnce() -> T + Send,
) -> Result<T, PolicyDiagnostic> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("tessera-cedar".into())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, f)
            .map_err(|e| PolicyDiagnostic::plain(format!("cannot start the policy parser: {e}")))?
            .join()
            .map_err(|_| PolicyDiagnostic::plain("the policy parser failed".into()))
    })
}

/// The longest string literal a policy may hold, in bytes.
pub const MAX_POLICY_STRING: usize = 1024;
/// The most elements of a set literal in a policy.
pub const MAX_POLICY_SET: usize = 1024;
/// The most elements (characters and wildcards) of a `like` pattern: matching costs the
/// pattern's length times the text's, on the request's thread.
pub const MAX_LIKE_PATTERN: usize = 128;

/// The length of a `like` pattern in its JSON form: characters of its literal runs, plus one
/// per wildcard.
fn pattern_length(items: &[Value]) -> usize {
    items
        .iter()
        .map(|e| match e.get("Literal").and_then(Value::as_str) {
            Some(text) => text.chars().count(),
            None => 1,
        })
        .sum()
}

/// Why a parsed policy's shape is refused: too deep, a string or set too long, or a `like`
/// pattern too long. Walks the policy's JSON form without recursion.
fn shape_problem(value: &Value) -> Option<String> {
    let mut stack = vec![(value, 1usize, false)];
    while let Some((v, depth, is_pattern)) = stack.pop() {
        if depth > MAX_POLICY_DEPTH {
            return Some(format!(
                "the policy's expressions are nested too deeply (more than {MAX_POLICY_DEPTH} levels): split long chains of operators"
            ));
        }
        match v {
            Value::String(text) if text.len() > MAX_POLICY_STRING => {
                return Some(format!(
                    "a string in the policy is {} bytes, more than the {MAX_POLICY_STRING} allowed",
                    text.len()
                ));
            }
            // Literal runs (`{"Literal": "abc"}`) count by their characters, wildcards as one.
            Value::Array(items) if is_pattern && pattern_length(items) > MAX_LIKE_PATTERN => {
                return Some(format!(
                    "a `like` pattern is {} characters, more than the {MAX_LIKE_PATTERN} allowed",
                    pattern_length(items)
                ));
            }
            Value::Array(items) if items.len() > MAX_POLICY_SET => {
                return Some(format!(
                    "a set in the policy has {} elements, more than the {MAX_POLICY_SET} allowed",
                    items.len()
                ));
            }
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1, false))),
            Value::Object(map) => {
                stack.extend(map.iter().map(|(k, i)| (i, depth + 1, k == "pattern")));
            }
            _ => {}
        }
    }
    None
}

/// Parses a text of static policies (templates and texts without a policy are errors), with
/// each policy's depth bounded: evaluation recurses as deep as the policy, on the caller's
/// stack. Runs on the parser's stack, after [`check_text_bounds`].
pub(super) fn parse_bounded(text: &str) -> Result<cedar_policy::PolicySet, Vec<PolicyDiagnostic>> {
    let set = cedar_policy::PolicySet::from_str(text).map_err(|errs| {
        errs.iter()
            .map(|e| PolicyDiagnostic::from_cedar(e, text, None))
            .collect::<Vec<_>>()
    })?;
    for (i, policy) in set.policies().enumerate() {
        let problem = match policy.to_json() {
            Ok(json) => shape_problem(&json),
            Err(e) => Some(format!("the policy cannot be read back: {e}")),
        };
        if let Some(message) = problem {
            return Err(vec![PolicyDiagnostic {
                policy_index: Some(default_index(policy.id()).unwrap_or(i)),
                ..PolicyDiagnostic::plain(message)
            }]);
        }
    }
    if set.templates().next().is_some() {
        return Err(vec![PolicyDiagnostic::plain(
            "templates (`?principal`, `?resource`) are not supported: name the entity in the policy"
                .into(),
        )]);
    }
    if set.num_of_policies() == 0 {
        return Err(vec![PolicyDiagnostic::plain(
            "the text holds no policy (expected at least one `permit(…);` or `forbid(…);`)".into(),
        )]);
    }
    Ok(set)
}

/// Warnings that make a policy useless or deceptive, so they are rejected like errors.
fn rejects(w: &ValidationWarning) -> bool {
    matches!(
        w,
        ValidationWarning::ImpossiblePolicy(_)
            | ValidationWarning::InvalidActionApplication(_)
            | ValidationWarning::BidiCharsInString(_)
            | ValidationWarning::BidiCharsInIdentifier(_)
    )
}

/// Checks a policy text at write time: it parses, holds at least one static policy, and every
/// policy validates against `schema` in strict mode. Returns the number of policies.
///
/// Impossible policies, policies whose action scope fits no principal/resource, and
/// bidirectional control characters are rejected too.
pub fn validate_policies(schema: &Schema, text: &str) -> Result<usize, Vec<PolicyDiagnostic>> {
    check_text_bounds(text).map_err(|d| vec![d])?;
    on_parser_stack(|| validate_bounded(schema, text)).map_err(|d| vec![d])?
}

fn validate_bounded(schema: &Schema, text: &str) -> Result<usize, Vec<PolicyDiagnostic>> {
    let set = parse_bounded(text)?;
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let mut diagnostics: Vec<PolicyDiagnostic> = result
        .validation_errors()
        .map(|e| PolicyDiagnostic::from_cedar(e, text, Some(e.policy_id())))
        .collect();
    // Without errors only: an unknown action also makes the policy "impossible", which is noise.
    if diagnostics.is_empty() {
        diagnostics.extend(
            result
                .validation_warnings()
                .filter(|w| rejects(w))
                .map(|w| PolicyDiagnostic::from_cedar(w, text, Some(w.policy_id()))),
        );
    }
    if diagnostics.is_empty() {
        Ok(set.num_of_policies())
    } else {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        Err(diagnostics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abac::policy_set::PolicySet;
    use crate::abac::test_support::{schema, CHEAP_DEALS, MFA_DELETE};

    /// Finding 1 of issue 8: a 400-byte policy nested 150 deep overflowed the worker's stack
    /// and aborted the process. Every shape of deep input is refused with a diagnostic, on a
    /// thread with the small stack a request runs on.
    #[test]
    fn hostile_policies_are_refused_not_crashing() {
        let deep = |open: &str, close: &str, n: usize| {
            format!(
                "forbid(principal, action, resource) when {{ {}true{} }};",
                open.repeat(n),
                close.repeat(n)
            )
        };
        let chain = |op: &str, n: usize| {
            format!(
                "forbid(principal, action, resource) when {{ 1{} == 2 }};",
                format!(" {op} 1").repeat(n)
            )
        };
        let unary = |n: usize| {
            format!(
                "forbid(principal, action, resource) when {{ {}true }};",
                "!".repeat(n)
            )
        };
        let cases = vec![
            deep("(", ")", 150),
            deep("(", ")", 5000),
            deep("[", "]", 150),
            deep("{\"a\": ", "}", 150),
            deep("if true then ", " else false", 2000),
            chain("+", 5000),
            chain("*", 5000),
            unary(10_000),
            format!(
                "forbid(principal, action, resource) when {{ {} }};",
                vec!["context.mfa"; 3000].join(" && ")
            ),
            format!(
                "permit(principal, action, resource);{}",
                " ".repeat(MAX_POLICY_TEXT_BYTES)
            ),
            // Quadratic `like` (text × pattern) and oversized literals, on every check.
            format!(
                "forbid(principal, action, resource) when {{ \"{}\" like \"*{}b\" }};",
                "a".repeat(20_000),
                "a".repeat(8_000)
            ),
            format!(
                "forbid(principal, action, resource) when {{ context has account && context.account like \"{}*\" }};",
                "a".repeat(200)
            ),
            format!(
                "forbid(principal, action, resource) when {{ [{}].contains(0) }};",
                vec!["1"; 2000].join(",")
            ),
        ];
        let worker = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                for text in &cases {
                    let validated = validate_policies(schema(), text);
                    assert!(
                        validated.is_err(),
                        "accepted a hostile policy of {} bytes",
                        text.len()
                    );
                    let compiled = PolicySet::compile(schema(), &[("pol_x".into(), text.clone())]);
                    assert!(
                        compiled.is_err(),
                        "compiled a hostile policy of {} bytes",
                        text.len()
                    );
                }
            })
            .unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        let text = format!(
            "// {}\nforbid(principal, action, resource) when {{ context has account && context.account == \"{}\\\"\" }};",
            "(".repeat(100),
            "(".repeat(100)
        );
        assert!(check_text_bounds(&text).is_ok());
        assert_eq!(validate_policies(schema(), &text), Ok(1));
        let deep = format!(
            "{}{}",
            "(".repeat(MAX_POLICY_NESTING + 1),
            ")".repeat(MAX_POLICY_NESTING + 1)
        );
        let d = check_text_bounds(&deep).unwrap_err();
        assert_eq!((d.line, d.column), (Some(1), Some(MAX_POLICY_NESTING + 1)));
        // A reasonable policy with real nesting still passes.
        let fine = "forbid(principal, action == Tessera::Action::\"contacts.delete\", resource) unless { (context.mfa && (principal.roles.contains(\"agency_owner\") || [1, 2, 3].contains(2))) };";
        assert_eq!(validate_policies(schema(), fine), Ok(1));
    }
    #[test]
    fn a_valid_policy_validates() {
        assert_eq!(validate_policies(schema(), MFA_DELETE), Ok(1));
        let two = format!(
            "{MFA_DELETE}\n@id(\"deals\")\npermit(principal, action == Tessera::Action::\"opportunities.write\", resource)\n  when {{ resource has value && resource.value < 10000 && principal.roles.contains(\"agency_admin\") }};\n\
             forbid(principal, action in [Tessera::Action::\"contacts.export\", Tessera::Action::\"contacts.import\"], resource)\n  unless {{ context has ip && context.ip.isInRange(ip(\"10.0.0.0/8\")) }};"
        );
        assert_eq!(validate_policies(schema(), &two), Ok(3));
    }

    fn invalid(text: &str) -> Vec<PolicyDiagnostic> {
        let diags = validate_policies(schema(), text).unwrap_err();
        assert!(!diags.is_empty());
        diags
    }

    #[test]
    fn invalid_policies_are_positioned() {
        // A typo in an attribute, on the second line of the second policy.
        let text = format!(
            "{MFA_DELETE}\nforbid(principal, action == Tessera::Action::\"contacts.read\", resource)\n  when {{ resource has dnd && resource.dnnd }};"
        );
        let d = invalid(&text);
        assert_eq!(d[0].policy_index, Some(1), "{d:?}");
        assert_eq!(d[0].line, Some(3), "{d:?}");
        assert!(d[0].column.is_some(), "{d:?}");
        assert!(
            d[0].message
                .starts_with("attribute `dnnd` on entity type `Tessera::contact` not found"),
            "{d:?}"
        );
        assert_eq!(d[0].to_string(), format!("3:30: {}", d[0].message));

        // A wrong type.
        let d = invalid(
            r#"forbid(principal, action == Tessera::Action::"contacts.read", resource) when { context.mfa == "yes" };"#,
        );
        assert_eq!((d[0].line, d[0].policy_index), (Some(1), Some(0)), "{d:?}");
        assert!(d[0].column.unwrap() > 1, "{d:?}");

        // An unknown action.
        let d = invalid(
            "\n  forbid(principal, action == Tessera::Action::\"contacts.purge\", resource);",
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].message
                .starts_with("unrecognized action `Tessera::Action::\"contacts.purge\"`"),
            "{d:?}"
        );
        assert_eq!((d[0].line, d[0].column), (Some(2), Some(31)), "{d:?}");

        // A policy that can never apply.
        let d = invalid(
            r#"forbid(principal, action == Tessera::Action::"contacts.read", resource is Tessera::opportunity);"#,
        );
        assert!(
            d[0].message.contains("unable to find an applicable action"),
            "{d:?}"
        );

        // An optional attribute read without `has` (strict mode).
        let d = invalid(CHEAP_DEALS);
        assert!(d[0].message.contains("value"), "{d:?}");

        // A syntax error, on line 2 column 11.
        let d = invalid("forbid(principal, action, resource)\n  when { ) };");
        assert_eq!((d[0].line, d[0].column), (Some(2), Some(10)), "{d:?}");

        // Nothing at all, or only a comment.
        assert!(invalid("").len() == 1);
        assert!(invalid("// nothing\n")[0].message.contains("no policy"));
        // Templates.
        assert!(
            invalid("permit(principal == ?principal, action, resource);")[0]
                .message
                .contains("templates")
        );
    }
}
