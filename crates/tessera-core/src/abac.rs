//! ABAC (DESIGN §6 step 4): Cedar `forbid` and conditional `permit` policies of the platform and
//! the agency, checked against a schema generated from the catalog, evaluated only where they apply.
//!
//! INVARIANT (I2): ABAC only narrows what RBAC allows, it never grants. For a check of action `A`
//! that RBAC allowed: if no policy's action scope (`action`, `action == A`, `action in [.., A]`)
//! covers `A`, Cedar is not run (allowed, zero cost). Otherwise, if no `permit` covers `A`, a
//! baseline `permit(principal, action, resource);` joins the evaluation so only forbids bite; if
//! permits cover `A`, they are conditions and one must hold. `forbid` beats `permit`.
//! INVARIANT (I3): a policy whose evaluation errors, or a request that cannot be built, denies.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, AuthorizationError, Authorizer, Context, Decision, Effect, Entities, Entity,
    EntityId, EntityTypeName, EntityUid, Policy, PolicyId, Request, RestrictedExpression, Schema,
    ValidationMode, ValidationWarning, Validator,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::Catalog;

/// The Cedar namespace of every generated type and action.
pub const NAMESPACE: &str = "Tessera";

/// The id of the baseline `permit` added for actions that no `permit` covers.
/// It holds no `#`, so it can never equal a `<record>#<n>` id.
const BASELINE_ID: &str = "tessera:baseline";
const BASELINE_TEXT: &str = "permit(principal, action, resource);";

/// Resource attributes the request fields set; the catalog and the caller cannot override them.
const RESERVED_RESOURCE_ATTRS: [&str; 3] = ["id", "agency", "account"];

/// The Cedar schema type of a catalog attribute type (the catalog admits these five only).
fn cedar_type(catalog_type: &str) -> Option<&'static str> {
    match catalog_type {
        "String" => Some("String"),
        "Long" => Some("Long"),
        "Bool" => Some("Bool"),
        "Set<String>" => Some("Set<String>"),
        "Set<Long>" => Some("Set<Long>"),
        _ => None,
    }
}

/// The Cedar schema (human-readable syntax, namespace `Tessera`) generated from the catalog.
///
/// Principals `User` and `ApiKey` carry `id`, `agency` and `roles`; every catalog resource is an
/// entity type `in [Account, Agency]` whose catalog attributes are optional, beside `agency` and
/// the optional `id` and `account` (a catalog attribute named like one of these three is left
/// out: the request fields own them). Every permission is an action on its resource.
/// `Context`: `time` (epoch seconds), `mfa` and `impersonating` are always set by the server, so
/// policies read them without `has`; `ip` and `account` are optional.
pub fn cedar_schema_text(catalog: &Catalog) -> String {
    let file = catalog.file();
    let principal_attrs =
        "{\n    \"id\": String,\n    \"agency\": String,\n    \"roles\": Set<String>,\n  };\n";
    let mut s = String::with_capacity(256 * (file.resources.len() + file.permissions.len()));
    s.push_str("// Generated from the catalog by tessera-core (abac.rs): do not edit.\n");
    let _ = writeln!(s, "namespace {NAMESPACE} {{");
    s.push_str(
        "  type Context = {\n    \"ip\"?: ipaddr,\n    \"time\": Long,\n    \"mfa\": Bool,\n    \
         \"impersonating\": Bool,\n    \"account\"?: String,\n  };\n",
    );
    s.push_str("  entity Agency;\n  entity Account in [Agency];\n");
    let _ = write!(s, "  entity User in [Agency, Account] = {principal_attrs}");
    let _ = write!(
        s,
        "  entity ApiKey in [Agency, Account] = {principal_attrs}"
    );
    for r in &file.resources {
        let _ = writeln!(s, "  entity {} in [Account, Agency] = {{", r.name);
        s.push_str("    \"id\"?: String,\n    \"agency\": String,\n    \"account\"?: String,\n");
        for (attr, ty) in &r.attributes {
            if RESERVED_RESOURCE_ATTRS.contains(&attr.as_str()) {
                continue;
            }
            // The catalog rejects other types; an unknown one is left out rather than guessed.
            if let Some(ty) = cedar_type(ty) {
                let _ = writeln!(s, "    \"{attr}\"?: {ty},");
            }
        }
        s.push_str("  };\n");
    }
    for p in &file.permissions {
        let _ = writeln!(
            s,
            "  action \"{}\" appliesTo {{ principal: [User, ApiKey], resource: [{}], context: Context }};",
            p.name, p.resource
        );
    }
    s.push_str("}\n");
    s
}

/// The parsed Cedar schema of the catalog (see [`cedar_schema_text`]).
pub fn cedar_schema(catalog: &Catalog) -> Result<Schema, String> {
    let text = cedar_schema_text(catalog);
    match Schema::from_cedarschema_str(&text) {
        Ok((schema, _warnings)) => Ok(schema),
        Err(e) => Err(format!(
            "the catalog does not make a valid cedar schema: {}",
            with_position(&e, &text)
        )),
    }
}

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
    fn plain(message: String) -> Self {
        Self {
            message,
            line: None,
            column: None,
            policy_index: None,
        }
    }

    /// A Cedar error positioned in `text`. `policy` is the parser's id of the policy concerned,
    /// which means nothing to the author: it is taken out of the message.
    fn from_cedar(err: &dyn miette::Diagnostic, text: &str, policy: Option<&PolicyId>) -> Self {
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
    fn in_record(mut self, record: &str) -> Self {
        self.message = format!("policy record `{record}`: {}", self.message);
        self
    }
}

fn first_offset(err: &dyn miette::Diagnostic) -> Option<usize> {
    err.labels()?.next().map(|l| l.offset())
}

/// 1-based line and column (in chars) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn with_position(err: &dyn miette::Diagnostic, text: &str) -> String {
    match first_offset(err) {
        Some(o) => {
            let (line, column) = line_column(text, o);
            format!("{err} (at {line}:{column})")
        }
        None => err.to_string(),
    }
}

/// The position of a policy in its text, from the id the parser gives it (`policy<N>`).
fn default_index(id: &PolicyId) -> Option<usize> {
    let id: &str = id.as_ref();
    id.strip_prefix("policy")?.parse().ok()
}

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
fn on_parser_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, PolicyDiagnostic> {
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
fn parse_bounded(text: &str) -> Result<cedar_policy::PolicySet, Vec<PolicyDiagnostic>> {
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

/// Which principal a check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person (`Tessera::User`).
    User,
    /// A machine credential (`Tessera::ApiKey`).
    ApiKey,
}

/// Everything a Cedar evaluation reads, borrowed from the check.
///
/// Attribute values are converted by their JSON shape, which covers exactly the catalog's types:
/// string → `String`, integer → `Long`, bool → `Bool`, array of strings or of integers → `Set`;
/// `null` is an absent attribute. Any other shape fails the request closed, as does a wrong
/// type that a policy then reads (an evaluation error). `id`, `agency` and `account` come from
/// the fields, never from `resource_attributes`. Context keys other than `ip` (an IP address
/// string), `time`, `mfa`, `impersonating` and `account` are dropped; a known key of the wrong
/// shape or a malformed `ip` fails closed. Attributes, context keys and tenancy parents that no
/// policy of the set names are left out unconverted (unchecked): they cannot change a decision.
#[derive(Clone, Copy, Debug)]
pub struct AbacRequest<'a> {
    /// User or API key.
    pub principal_type: PrincipalKind,
    /// The principal's id (`usr_…`, `key_…`).
    pub principal_id: &'a str,
    /// The principal's agency.
    pub principal_agency: &'a str,
    /// The names of the principal's roles that cover the resource.
    pub principal_roles: &'a [String],
    /// The catalog permission checked (`contacts.read`).
    pub action: &'a str,
    /// The catalog resource type (`contact`).
    pub resource_type: &'a str,
    /// The resource's id; `None` for a collection (the entity id is then `*`).
    pub resource_id: Option<&'a str>,
    /// The agency that owns the resource.
    pub resource_agency: &'a str,
    /// The account that owns the resource, for account-level resources.
    pub resource_account: Option<&'a str>,
    /// The resource's catalog attributes.
    pub resource_attributes: &'a Map<String, Value>,
    /// The request context. The server always sets `time` (epoch seconds), `mfa` and
    /// `impersonating` (the schema declares them required); `ip` and `account` when known.
    /// A policy reading a missing key errors, which denies.
    pub context: &'a Map<String, Value>,
}

/// The ABAC answer for one check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AbacDecision {
    /// `false` only narrows an RBAC allow into a deny.
    pub allowed: bool,
    /// The Cedar policy ids (`<record>#<n>`) that decided: on allow, the satisfied conditional
    /// permits (empty when no policy applied or only forbids were considered); on deny, the
    /// satisfied forbids, else the policies that errored, else the conditional permits of the
    /// action, none of which held.
    pub determining: Vec<String>,
    /// Evaluation errors and request-building errors (each one denies).
    pub errors: Vec<String>,
}

impl AbacDecision {
    fn allow(determining: Vec<String>) -> Self {
        Self {
            allowed: true,
            determining,
            errors: Vec::new(),
        }
    }

    fn deny(determining: Vec<String>, errors: Vec<String>) -> Self {
        Self {
            allowed: false,
            determining,
            errors,
        }
    }
}

/// Which actions the policies of a set cover, by action scope.
#[derive(Clone, Debug, Default)]
struct Coverage {
    /// Actions named by some policy (`action == A`, `action in [A, …]`).
    actions: HashSet<String>,
    /// Some policy has an unconstrained action scope: it covers every action.
    any_action: bool,
    /// Permit ids per named action.
    permits: HashMap<String, Vec<String>>,
    /// Permits with an unconstrained action scope.
    any_permits: Vec<String>,
    forbid_count: usize,
    permit_count: usize,
}

impl Coverage {
    fn add(&mut self, policy: &Policy) {
        let permit = policy.effect() == Effect::Permit;
        if permit {
            self.permit_count += 1;
        } else {
            self.forbid_count += 1;
        }
        let id = policy.id().to_string();
        let named = match policy.action_constraint() {
            ActionConstraint::Any => {
                self.any_action = true;
                if permit {
                    self.any_permits.push(id);
                }
                return;
            }
            ActionConstraint::Eq(uid) => vec![uid],
            ActionConstraint::In(uids) => uids,
        };
        // The uid's type is not checked: a policy naming an action of another type covers the
        // name anyway, which can only make Cedar run (and deny) where it would not match.
        for uid in named {
            let name = uid.id().unescaped().to_owned();
            if permit {
                self.permits
                    .entry(name.clone())
                    .or_default()
                    .push(id.clone());
            }
            self.actions.insert(name);
        }
    }

    fn covers(&self, action: &str) -> bool {
        self.any_action || self.actions.contains(action)
    }

    fn has_permit(&self, action: &str) -> bool {
        !self.any_permits.is_empty() || self.permits.contains_key(action)
    }

    fn permits_for(&self, action: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.any_permits.clone();
        ids.extend(self.permits.get(action).into_iter().flatten().cloned());
        ids.sort();
        ids
    }
}

/// What the policies of a set can observe of a request. The request builder leaves the rest
/// out: no policy can read it, so it cannot change a decision, and converting it costs.
///
/// Entity attributes are reachable only by name (`e.a`, `e has a`, `e["a"]`), and the tenancy
/// parents only through an `Agency`/`Account` entity literal, so the names in the policies'
/// JSON form bound what is observable. The context is a record and can be used whole
/// (`context == {…}`): then every context key is kept.
#[derive(Clone, Debug, Default)]
struct Observed {
    /// Every string and key of the policies' JSON form (a superset of the names they use).
    names: HashSet<String>,
    /// Some policy uses `context` other than as `context.x` or `context has x`.
    whole_context: bool,
    /// Some policy names the `Agency` or `Account` type: entities need their parents.
    tenancy: bool,
    /// Observe everything (a policy had no JSON form; and in tests, the reference).
    everything: bool,
}

impl Observed {
    fn add(&mut self, policy: &Policy) {
        match policy.to_json() {
            Ok(est) => self.walk(&est, false),
            Err(_) => self.everything = true,
        }
    }

    /// Collects the strings of an EST; `attr_base`: `v` is the `left` of `.` or `has`.
    fn walk(&mut self, v: &Value, attr_base: bool) {
        match v {
            Value::String(s) => {
                self.names.insert(s.clone());
            }
            Value::Array(items) => items.iter().for_each(|x| self.walk(x, false)),
            Value::Object(m) => {
                if !attr_base && m.get("Var").and_then(Value::as_str) == Some("context") {
                    self.whole_context = true;
                }
                for (k, x) in m {
                    self.names.insert(k.clone());
                    match (k.as_str(), x) {
                        ("." | "has", Value::Object(access)) => {
                            for (ak, ax) in access {
                                self.names.insert(ak.clone());
                                self.walk(ax, ak == "left");
                            }
                        }
                        _ => self.walk(x, false),
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn finish(mut self) -> Self {
        self.tenancy = self.everything
            || self.names.contains(&format!("{NAMESPACE}::Agency"))
            || self.names.contains(&format!("{NAMESPACE}::Account"));
        self
    }

    fn attribute(&self, name: &str) -> bool {
        self.everything || self.names.contains(name)
    }

    fn context_key(&self, key: &str) -> bool {
        self.whole_context || self.attribute(key)
    }
}

/// The entity type names of the schema, resolved once so evaluation parses nothing.
#[derive(Clone, Debug)]
struct Types {
    user: EntityTypeName,
    api_key: EntityTypeName,
    agency: EntityTypeName,
    account: EntityTypeName,
    action: EntityTypeName,
    resources: HashMap<String, EntityTypeName>,
}

impl Types {
    fn from_schema(schema: &Schema) -> Result<Self, String> {
        let name = |basename: &str| {
            EntityTypeName::from_str(&format!("{NAMESPACE}::{basename}"))
                .map_err(|e| format!("invalid entity type `{basename}`: {e}"))
        };
        let resources = schema
            .entity_types()
            .filter(|t| t.namespace() == NAMESPACE)
            .map(|t| (t.basename().to_owned(), t.clone()))
            .collect();
        Ok(Self {
            user: name("User")?,
            api_key: name("ApiKey")?,
            agency: name("Agency")?,
            account: name("Account")?,
            action: name("Action")?,
            resources,
        })
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    /// Builds the Cedar request and its entities (principal and resource), leaving out what
    /// no policy observes.
    fn request(
        &self,
        req: &AbacRequest<'_>,
        seen: &Observed,
    ) -> Result<(Request, Entities), String> {
        let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let mut entities = Vec::with_capacity(2);

        let principal_type = match req.principal_type {
            PrincipalKind::User => &self.user,
            PrincipalKind::ApiKey => &self.api_key,
        };
        let principal_uid = Self::uid(principal_type, req.principal_id);
        let mut attrs = Vec::with_capacity(3);
        if seen.attribute("id") {
            attrs.push(("id".to_owned(), string(req.principal_id)));
        }
        if seen.attribute("agency") {
            attrs.push(("agency".to_owned(), string(req.principal_agency)));
        }
        if seen.attribute("roles") {
            let roles = req.principal_roles.iter().map(|r| string(r));
            attrs.push(("roles".to_owned(), RestrictedExpression::new_set(roles)));
        }
        let mut parents = Vec::with_capacity(2);
        if seen.tenancy {
            parents.push(Self::uid(&self.agency, req.principal_agency));
        }
        if !attrs.is_empty() || !parents.is_empty() {
            entities.push(
                Entity::new_with_tags(principal_uid.clone(), attrs, parents, [])
                    .map_err(|e| format!("cannot build the principal: {e}"))?,
            );
        }

        let resource_type = self
            .resources
            .get(req.resource_type)
            .ok_or_else(|| format!("unknown resource type `{}`", req.resource_type))?;
        let resource_uid = Self::uid(resource_type, req.resource_id.unwrap_or("*"));
        let mut attrs = Vec::with_capacity(req.resource_attributes.len() + 3);
        if seen.attribute("agency") {
            attrs.push(("agency".to_owned(), string(req.resource_agency)));
        }
        if let Some(id) = req.resource_id.filter(|_| seen.attribute("id")) {
            attrs.push(("id".to_owned(), string(id)));
        }
        if let Some(account) = req.resource_account.filter(|_| seen.attribute("account")) {
            attrs.push(("account".to_owned(), string(account)));
        }
        for (name, value) in req.resource_attributes {
            if RESERVED_RESOURCE_ATTRS.contains(&name.as_str()) || !seen.attribute(name) {
                continue;
            }
            if let Some(expr) = attribute_value(name, value)? {
                attrs.push((name.clone(), expr));
            }
        }
        let mut parents = Vec::with_capacity(2);
        if seen.tenancy {
            parents.push(Self::uid(&self.agency, req.resource_agency));
            if let Some(account) = req.resource_account {
                parents.push(Self::uid(&self.account, account));
            }
        }
        if !attrs.is_empty() || !parents.is_empty() {
            entities.push(
                Entity::new_with_tags(resource_uid.clone(), attrs, parents, [])
                    .map_err(|e| format!("cannot build the resource: {e}"))?,
            );
        }

        let context = Context::from_pairs(context_pairs(req.context, seen)?)
            .map_err(|e| format!("invalid context: {e}"))?;
        let request = Request::new(
            principal_uid,
            Self::uid(&self.action, req.action),
            resource_uid,
            context,
            None,
        )
        .map_err(|e| format!("cannot build the request: {e}"))?;
        // No schema here: the values were shaped above, and conformance checking costs.
        let entities = Entities::from_entities(entities, None)
            .map_err(|e| format!("cannot build the entities: {e}"))?;
        Ok((request, entities))
    }
}

/// Converts one resource attribute by its JSON shape (`None`: absent).
fn attribute_value(name: &str, value: &Value) -> Result<Option<RestrictedExpression>, String> {
    let long = |n: &serde_json::Number| {
        n.as_i64().ok_or_else(|| {
            format!("resource attribute `{name}`: `{n}` is not a 64-bit integer (Long)")
        })
    };
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(long(n)?),
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Array(items) => {
            let strings = items.iter().all(Value::is_string);
            let mut set = Vec::with_capacity(items.len());
            for item in items {
                set.push(match item {
                    Value::String(s) if strings => RestrictedExpression::new_string(s.clone()),
                    Value::Number(n) if !strings => RestrictedExpression::new_long(long(n)?),
                    _ => {
                        return Err(format!(
                            "resource attribute `{name}`: a set must hold only strings or only integers"
                        ))
                    }
                });
            }
            RestrictedExpression::new_set(set)
        }
        Value::Object(_) => {
            return Err(format!(
                "resource attribute `{name}`: records are not supported"
            ))
        }
    }))
}

/// Converts the context keys the schema declares and some policy observes; others are dropped.
fn context_pairs(
    context: &Map<String, Value>,
    seen: &Observed,
) -> Result<Vec<(String, RestrictedExpression)>, String> {
    let mut pairs = Vec::with_capacity(context.len().min(5));
    for (key, value) in context {
        if !seen.context_key(key) {
            continue;
        }
        let expr = match (key.as_str(), value) {
            (_, Value::Null) => continue,
            ("ip", Value::String(s)) => RestrictedExpression::new_ip(s),
            ("time", Value::Number(n)) => match n.as_i64() {
                Some(t) => RestrictedExpression::new_long(t),
                None => return Err(format!("context `time`: `{n}` is not epoch seconds")),
            },
            ("mfa" | "impersonating", Value::Bool(b)) => RestrictedExpression::new_bool(*b),
            ("account", Value::String(s)) => RestrictedExpression::new_string(s.clone()),
            ("ip" | "time" | "mfa" | "impersonating" | "account", other) => {
                let expected = match key.as_str() {
                    "ip" => "an IP address string",
                    "time" => "an integer",
                    "account" => "a string",
                    _ => "a boolean",
                };
                return Err(format!(
                    "context `{key}`: expected {expected}, got `{other}`"
                ));
            }
            _ => continue,
        };
        pairs.push((key.clone(), expr));
    }
    Ok(pairs)
}

#[derive(Debug)]
struct Compiled {
    /// The policies as written, each with id `<record>#<n>`.
    policies: cedar_policy::PolicySet,
    /// The same plus the baseline permit, for actions that no permit covers.
    with_baseline: cedar_policy::PolicySet,
    coverage: Coverage,
    observed: Observed,
    types: Types,
}

/// A compiled set of ABAC policies: the platform's and one agency's, ready to evaluate.
///
/// Cheap to clone (shared). Each Cedar policy is named `<record>#<n>`: the policy record's id
/// (`pol_…`, or `platform:<n>` for platform-wide ones) and the policy's position in its text.
#[derive(Clone)]
pub struct PolicySet {
    inner: Arc<Compiled>,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.inner.coverage;
        f.debug_struct("PolicySet")
            .field("forbids", &c.forbid_count)
            .field("permits", &c.permit_count)
            .field("named_actions", &c.actions.len())
            .field("any_action", &c.any_action)
            .finish()
    }
}

impl PolicySet {
    /// Compiles policy records `(record id, Cedar text)`; a text may hold several policies.
    ///
    /// To combine platform-wide and agency policies, pass both lists chained (platform first),
    /// or compile them apart and [`PolicySet::merge`] them. Texts are parsed, not validated:
    /// [`validate_policies`] is the gate at write time, and a stored policy that no longer
    /// type-checks (the catalog changed) errors at evaluation, which denies.
    pub fn compile(
        schema: &Schema,
        sources: &[(String, String)],
    ) -> Result<Self, Vec<PolicyDiagnostic>> {
        for (record, text) in sources {
            check_text_bounds(text).map_err(|d| vec![d.in_record(record)])?;
        }
        // One parser thread for the whole set (an agency's first check pays for it once).
        let parsed: Vec<_> = on_parser_stack(|| {
            sources
                .iter()
                .map(|(_, text)| parse_bounded(text))
                .collect::<Vec<_>>()
        })
        .map_err(|d| vec![d])?;
        let mut diagnostics = Vec::new();
        let mut policies = cedar_policy::PolicySet::new();
        let mut records = HashSet::new();
        for ((record, _), parsed) in sources.iter().zip(parsed) {
            if !records.insert(record.as_str()) {
                diagnostics.push(PolicyDiagnostic::plain(format!(
                    "policy record `{record}` is given twice"
                )));
                continue;
            }
            let parsed = match parsed {
                Ok(parsed) => parsed,
                Err(ds) => {
                    diagnostics.extend(ds.into_iter().map(|d| d.in_record(record)));
                    continue;
                }
            };
            for (i, policy) in parsed.policies().enumerate() {
                let n = default_index(policy.id()).unwrap_or(i);
                let renamed = policy.new_id(PolicyId::new(format!("{record}#{n}")));
                if let Err(e) = policies.add(renamed) {
                    diagnostics.push(PolicyDiagnostic {
                        policy_index: Some(n),
                        ..PolicyDiagnostic::plain(e.to_string()).in_record(record)
                    });
                }
            }
        }
        if !diagnostics.is_empty() {
            return Err(diagnostics);
        }
        let types = Types::from_schema(schema).map_err(|e| vec![PolicyDiagnostic::plain(e)])?;
        Self::assemble(policies, types).map_err(|e| vec![PolicyDiagnostic::plain(e)])
    }

    /// An empty set: nothing applies, nothing is evaluated.
    pub fn empty(schema: &Schema) -> Result<Self, String> {
        Self::assemble(cedar_policy::PolicySet::new(), Types::from_schema(schema)?)
    }

    /// The platform-wide policies on top of one agency's: both apply to every check of the
    /// agency. Both sets must come from the same schema; a policy id in both is an error.
    pub fn merge(platform: &PolicySet, agency: &PolicySet) -> Result<PolicySet, String> {
        if agency.is_empty() {
            return Ok(platform.clone());
        }
        if platform.is_empty() {
            return Ok(agency.clone());
        }
        let mut policies = platform.inner.policies.clone();
        for policy in agency.inner.policies.policies() {
            policies
                .add(policy.clone())
                .map_err(|e| format!("cannot merge policy `{}`: {e}", policy.id()))?;
        }
        Self::assemble(policies, agency.inner.types.clone())
    }

    fn assemble(policies: cedar_policy::PolicySet, types: Types) -> Result<Self, String> {
        let mut coverage = Coverage::default();
        let mut observed = Observed::default();
        for policy in policies.policies() {
            coverage.add(policy);
            observed.add(policy);
        }
        let observed = observed.finish();
        let baseline = Policy::parse(Some(PolicyId::new(BASELINE_ID)), BASELINE_TEXT)
            .map_err(|e| format!("baseline policy: {e}"))?;
        let mut with_baseline = policies.clone();
        with_baseline
            .add(baseline)
            .map_err(|e| format!("baseline policy: {e}"))?;
        Ok(Self {
            inner: Arc::new(Compiled {
                policies,
                with_baseline,
                coverage,
                observed,
                types,
            }),
        })
    }

    /// Whether some policy covers `action` (O(1)); when not, [`evaluate`](Self::evaluate) is free.
    pub fn applies(&self, action: &str) -> bool {
        self.inner.coverage.covers(action)
    }

    /// Whether the set holds no policy.
    pub fn is_empty(&self) -> bool {
        self.inner.policies.is_empty()
    }

    /// The number of Cedar policies.
    pub fn len(&self) -> usize {
        self.inner.policies.num_of_policies()
    }

    /// Evaluates the policies for a check RBAC already allowed (see the module header).
    pub fn evaluate(&self, req: &AbacRequest<'_>) -> AbacDecision {
        self.evaluate_observing(req, &self.inner.observed)
    }

    fn evaluate_observing(&self, req: &AbacRequest<'_>, observed: &Observed) -> AbacDecision {
        let inner = &*self.inner;
        if !inner.coverage.covers(req.action) {
            return AbacDecision::allow(Vec::new());
        }
        let policies = if inner.coverage.has_permit(req.action) {
            &inner.policies
        } else {
            &inner.with_baseline
        };
        let (request, entities) = match inner.types.request(req, observed) {
            Ok(built) => built,
            Err(e) => return AbacDecision::deny(Vec::new(), vec![e]),
        };
        let response = Authorizer::new().is_authorized(&request, policies, &entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        let mut erroring: Vec<String> = diagnostics
            .errors()
            .map(|e| match e {
                AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
            })
            .collect();
        erroring.sort();
        erroring.dedup();
        let mut reason: Vec<String> = diagnostics
            .reason()
            .map(ToString::to_string)
            .filter(|id| id != BASELINE_ID)
            .collect();
        reason.sort();
        match response.decision() {
            Decision::Allow if errors.is_empty() => AbacDecision::allow(reason),
            Decision::Allow => AbacDecision::deny(erroring, errors),
            Decision::Deny if !reason.is_empty() => AbacDecision::deny(reason, errors),
            Decision::Deny if !erroring.is_empty() => AbacDecision::deny(erroring, errors),
            Decision::Deny => AbacDecision::deny(inner.coverage.permits_for(req.action), errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::OnceLock;

    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            let catalog = Catalog::default_catalog().unwrap();
            cedar_schema(&catalog).unwrap()
        })
    }

    fn compile(texts: &[&str]) -> PolicySet {
        let sources: Vec<(String, String)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("pol_{i}"), (*t).to_owned()))
            .collect();
        PolicySet::compile(schema(), &sources).unwrap()
    }

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

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    struct Check {
        action: &'static str,
        resource_type: &'static str,
        attrs: Map<String, Value>,
        context: Map<String, Value>,
        roles: Vec<String>,
    }

    impl Check {
        fn new(action: &'static str, resource_type: &'static str) -> Self {
            Self {
                action,
                resource_type,
                attrs: Map::new(),
                context: obj(json!({"time": 1_700_000_000, "mfa": false, "impersonating": false})),
                roles: vec!["account_user".into()],
            }
        }
        fn attrs(mut self, v: Value) -> Self {
            self.attrs = obj(v);
            self
        }
        fn ctx(mut self, key: &str, v: Value) -> Self {
            self.context.insert(key.into(), v);
            self
        }
        fn eval(&self, set: &PolicySet) -> AbacDecision {
            set.evaluate(&AbacRequest {
                principal_type: PrincipalKind::User,
                principal_id: "usr_1",
                principal_agency: "agy_1",
                principal_roles: &self.roles,
                action: self.action,
                resource_type: self.resource_type,
                resource_id: Some("con_1"),
                resource_agency: "agy_1",
                resource_account: Some("acc_1"),
                resource_attributes: &self.attrs,
                context: &self.context,
            })
        }
    }

    const MFA_DELETE: &str = r#"forbid(principal, action == Tessera::Action::"contacts.delete", resource) unless { context.mfa == true };"#;
    const CHEAP_DEALS: &str = r#"permit(principal, action == Tessera::Action::"opportunities.write", resource) when { resource.value < 10000 };"#;

    #[test]
    fn the_default_catalog_makes_a_valid_schema() {
        let catalog = Catalog::default_catalog().unwrap();
        let text = cedar_schema_text(&catalog);
        assert!(text.contains("namespace Tessera {"), "{text}");
        assert!(text.contains(r#"action "contacts.read" appliesTo { principal: [User, ApiKey], resource: [contact], context: Context };"#), "{text}");
        let schema = cedar_schema(&catalog).unwrap();
        let actions = schema.actions().count();
        assert_eq!(actions, catalog.file().permissions.len());
        assert!(schema
            .entity_types()
            .any(|t| t.to_string() == "Tessera::opportunity"));
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

    #[test]
    fn a_satisfied_forbid_denies_and_names_the_policy() {
        let set = compile(&[MFA_DELETE]);
        assert_eq!(set.len(), 1);
        assert!(set.applies("contacts.delete"));
        let d = Check::new("contacts.delete", "contact").eval(&set);
        assert!(!d.allowed);
        assert_eq!(d.determining, vec!["pol_0#0".to_owned()]);
        assert!(d.errors.is_empty());

        let d = Check::new("contacts.delete", "contact")
            .ctx("mfa", json!(true))
            .eval(&set);
        assert_eq!(d, AbacDecision::allow(vec![]));
    }

    #[test]
    fn an_action_no_policy_mentions_is_not_evaluated() {
        let set = compile(&[MFA_DELETE]);
        assert!(!set.applies("contacts.read"));
        // Even a request that could not be built passes: Cedar is not run at all.
        let d = Check::new("contacts.read", "no_such_type").eval(&set);
        assert_eq!(d, AbacDecision::allow(vec![]));
        assert!(compile(&["forbid(principal, action, resource) when { false };"]).applies("x.y"));
    }

    #[test]
    fn a_conditional_permit_is_a_condition() {
        let set = compile(&[CHEAP_DEALS]);
        let check = |attrs: Value| {
            Check::new("opportunities.write", "opportunity")
                .attrs(attrs)
                .eval(&set)
        };
        let d = check(json!({"value": 500, "stage": "won"}));
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.determining, vec!["pol_0#0".to_owned()]);
        let d = check(json!({"value": 20000}));
        assert!(!d.allowed);
        assert_eq!(d.determining, vec!["pol_0#0".to_owned()]);
        assert!(d.errors.is_empty());
        let d = check(json!({}));
        assert!(!d.allowed);
        assert_eq!(d.errors.len(), 1, "{d:?}");
        assert!(d.errors[0].contains("pol_0#0"), "{d:?}");
        // A value of the wrong type errors, which denies.
        assert!(!check(json!({"value": "500"})).allowed);
        // Other actions of the resource are untouched.
        assert!(!set.applies("opportunities.read"));
    }

    #[test]
    fn an_ip_condition_works() {
        let set = compile(&[
            r#"forbid(principal, action == Tessera::Action::"contacts.export", resource) unless { context.ip.isInRange(ip("10.0.0.0/8")) };"#,
        ]);
        let check = |ip: Value| {
            Check::new("contacts.export", "contact")
                .ctx("ip", ip)
                .eval(&set)
        };
        assert!(check(json!("10.1.2.3")).allowed);
        let d = check(json!("192.168.0.1"));
        assert!(!d.allowed && d.determining == ["pol_0#0"], "{d:?}");
        // A malformed address fails closed with the reason.
        let d = check(json!("not-an-ip"));
        assert!(!d.allowed && d.errors[0].contains("context"), "{d:?}");
        // No address: reading it errors, which denies.
        let d = Check::new("contacts.export", "contact").eval(&set);
        assert!(!d.allowed && !d.errors.is_empty(), "{d:?}");
    }

    #[test]
    fn an_evaluation_error_denies_and_is_reported() {
        let set = compile(&[
            r#"forbid(principal, action == Tessera::Action::"contacts.read", resource) when { resource.lead_score > 90 };"#,
        ]);
        let d = Check::new("contacts.read", "contact").eval(&set);
        assert!(!d.allowed);
        assert_eq!(d.determining, vec!["pol_0#0".to_owned()]);
        assert!(d.errors[0].contains("lead_score"), "{d:?}");
        assert!(
            Check::new("contacts.read", "contact")
                .attrs(json!({"lead_score": 10}))
                .eval(&set)
                .allowed
        );
        // Bad attribute shapes fail closed before Cedar runs.
        for bad in [
            json!({"lead_score": 1.5}),
            json!({"lead_score": ["a", 1]}),
            json!({"lead_score": {}}),
        ] {
            let d = Check::new("contacts.read", "contact").attrs(bad).eval(&set);
            assert!(!d.allowed && d.errors.len() == 1, "{d:?}");
        }
    }

    #[test]
    fn tenancy_roles_and_sets_are_visible_to_policies() {
        let set = compile(&[
            r#"forbid(principal, action, resource in Tessera::Account::"acc_1")
               when { resource.agency == "agy_1" && principal in Tessera::Agency::"agy_1"
                      && principal.roles.contains("account_user") && resource has tags
                      && resource.tags.contains("vip") && context.account == "acc_1" };"#,
        ]);
        let d = Check::new("contacts.read", "contact")
            .attrs(json!({"tags": ["vip", "x"], "agency": "agy_2"}))
            .ctx("account", json!("acc_1"))
            .ctx("unknown", json!({"ignored": true}))
            .eval(&set);
        assert!(!d.allowed && d.errors.is_empty(), "{d:?}");
        let d = Check::new("contacts.read", "contact")
            .attrs(json!({"tags": ["x"]}))
            .ctx("account", json!("acc_1"))
            .eval(&set);
        assert!(d.allowed, "{d:?}");
    }

    #[test]
    fn platform_and_agency_policies_merge() {
        let platform =
            PolicySet::compile(schema(), &[("platform:0".into(), MFA_DELETE.into())]).unwrap();
        let agency = compile(&[CHEAP_DEALS]);
        let merged = PolicySet::merge(&platform, &agency).unwrap();
        assert_eq!(merged.len(), 2);
        assert!(merged.applies("contacts.delete") && merged.applies("opportunities.write"));
        assert_eq!(
            Check::new("contacts.delete", "contact")
                .eval(&merged)
                .determining,
            vec!["platform:0#0".to_owned()]
        );
        assert!(PolicySet::merge(&agency, &agency).is_err());
        let empty = PolicySet::empty(schema()).unwrap();
        assert!(empty.is_empty() && !empty.applies("contacts.delete"));
        assert_eq!(PolicySet::merge(&platform, &empty).unwrap().len(), 1);
        assert!(format!("{merged:?}").contains("forbids: 1"));
        // Chained sources compile alike; a record given twice or a bad text is named.
        let err = PolicySet::compile(
            schema(),
            &[
                ("pol_a".into(), MFA_DELETE.into()),
                ("pol_a".into(), MFA_DELETE.into()),
            ],
        )
        .unwrap_err();
        assert!(err[0].message.contains("`pol_a`"), "{err:?}");
        let err = PolicySet::compile(schema(), &[("pol_b".into(), "forbid(".into())]).unwrap_err();
        assert!(
            err[0].message.starts_with("policy record `pol_b`"),
            "{err:?}"
        );
        assert_eq!(err[0].line, Some(1));
    }

    #[test]
    fn an_any_action_permit_conditions_every_action() {
        let set = compile(&["permit(principal, action, resource) when { context.mfa };"]);
        assert!(set.applies("contacts.read"));
        assert!(!Check::new("contacts.read", "contact").eval(&set).allowed);
        assert!(
            Check::new("contacts.read", "contact")
                .ctx("mfa", json!(true))
                .eval(&set)
                .allowed
        );
    }

    #[test]
    fn evaluation_time() {
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let measure = |name: &str, set: &PolicySet, check: &Check| {
            let mut samples = Vec::with_capacity(10_000);
            for _ in 0..10_000 {
                let start = std::time::Instant::now();
                let d = check.eval(set);
                samples.push(start.elapsed());
                assert!(d.allowed, "{d:?}");
            }
            samples.sort();
            eprintln!(
                "abac evaluate, {name} ({build}): median {:?}, p99 {:?}, max {:?}",
                samples[samples.len() / 2],
                samples[samples.len() * 99 / 100],
                samples[samples.len() - 1]
            );
        };
        let check = Check::new("opportunities.write", "opportunity")
            .attrs(json!({"value": 500, "stage": "won", "owner_id": "usr_1"}))
            .ctx("ip", json!("10.0.0.1"))
            .ctx("mfa", json!(true));
        let two = compile(&[MFA_DELETE, CHEAP_DEALS]);
        measure("two small policies", &two, &check);
        // Reads everything: ip (an extension value), roles, an attribute and the tenancy.
        let heavy = compile(&[
            CHEAP_DEALS,
            r#"forbid(principal, action, resource in Tessera::Account::"acc_9")
               when { context has ip && !context.ip.isInRange(ip("10.0.0.0/8"))
                      && !principal.roles.contains("agency_admin") };"#,
        ]);
        measure("ip + roles + tenancy", &heavy, &check);
    }

    const ACTIONS: [&str; 4] = [
        "contacts.read",
        "contacts.write",
        "contacts.delete",
        "contacts.export",
    ];

    /// A forbid over some actions (`None`: every action) whose condition is `context.mfa`,
    /// `!context.mfa`, `true` or `false`.
    fn arb_forbid() -> impl Strategy<Value = (Option<Vec<usize>>, usize)> {
        (
            proptest::option::of(proptest::collection::vec(0..ACTIONS.len(), 1..3)),
            0usize..4,
        )
    }

    const CONDITIONS: [&str; 4] = ["context.mfa", "!context.mfa", "true", "false"];

    fn forbid_text(actions: &Option<Vec<usize>>, cond: usize) -> String {
        let scope = match actions {
            None => "action".to_owned(),
            Some(a) if a.len() == 1 => format!("action == Tessera::Action::\"{}\"", ACTIONS[a[0]]),
            Some(a) => format!(
                "action in [{}]",
                a.iter()
                    .map(|i| format!("Tessera::Action::\"{}\"", ACTIONS[*i]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "forbid(principal, {scope}, resource) when {{ {} }};",
            CONDITIONS[cond]
        )
    }

    const POOL: [&str; 7] = [
        MFA_DELETE,
        r#"permit(principal, action == Tessera::Action::"contacts.write", resource) when { resource has lead_score && resource.lead_score < 50 };"#,
        r#"forbid(principal, action, resource in Tessera::Account::"acc_2");"#,
        r#"forbid(principal, action == Tessera::Action::"contacts.export", resource) when { context == {"time": 1, "mfa": false, "impersonating": false} };"#,
        r#"forbid(principal, action == Tessera::Action::"contacts.read", resource) unless { principal.roles.contains("agency_admin") };"#,
        r#"forbid(principal, action == Tessera::Action::"contacts.export", resource) when { context has ip && !context.ip.isInRange(ip("10.0.0.0/8")) };"#,
        r#"forbid(principal, action, resource) when { resource has tags && resource.tags.contains("vip") };"#,
    ];

    #[test]
    fn what_no_policy_names_is_left_out() {
        let set = compile(&[POOL[4]]);
        let seen = &set.inner.observed;
        assert!(seen.attribute("roles") && !seen.attribute("lead_score"));
        assert!(!seen.tenancy && !seen.whole_context && !seen.context_key("ip"));
        // An unobservable attribute of a bad shape is not even converted.
        let d = Check::new("contacts.read", "contact")
            .attrs(json!({"lead_score": {}}))
            .ctx("ip", json!("not-an-ip"))
            .eval(&set);
        assert!(!d.allowed && d.errors.is_empty(), "{d:?}");
        let set = compile(&[POOL[2], POOL[3]]);
        assert!(set.inner.observed.tenancy && set.inner.observed.whole_context);
    }

    proptest! {
        /// Leaving out what no policy names never changes a decision.
        #[test]
        fn leaving_out_the_unobserved_changes_nothing(
            policies in proptest::collection::btree_set(0..POOL.len(), 1..4),
            action in 0..ACTIONS.len(),
            lead_score in proptest::option::of(prop_oneof![Just(json!(10)), Just(json!(90)), Just(json!("10"))]),
            tags in proptest::option::of(prop_oneof![Just(json!(["vip"])), Just(json!(["x", "y"]))]),
            ip in proptest::option::of(prop_oneof![Just(json!("10.1.1.1")), Just(json!("8.8.8.8"))]),
            mfa: bool,
            admin: bool,
            account in prop_oneof![Just("acc_1"), Just("acc_2")],
        ) {
            let texts: Vec<&str> = policies.iter().map(|i| POOL[*i]).collect();
            let set = compile(&texts);
            let mut attrs = Map::new();
            if let Some(v) = lead_score { attrs.insert("lead_score".into(), v); }
            if let Some(v) = tags { attrs.insert("tags".into(), v); }
            attrs.insert("dnd".into(), json!(true));
            let mut context = obj(json!({"time": 1, "mfa": mfa, "impersonating": false}));
            if let Some(v) = ip { context.insert("ip".into(), v); }
            let roles = vec![if admin { "agency_admin" } else { "account_user" }.to_owned()];
            let req = AbacRequest {
                principal_type: PrincipalKind::ApiKey,
                principal_id: "key_1",
                principal_agency: "agy_1",
                principal_roles: &roles,
                action: ACTIONS[action],
                resource_type: "contact",
                resource_id: None,
                resource_agency: "agy_1",
                resource_account: Some(account),
                resource_attributes: &attrs,
                context: &context,
            };
            let everything = Observed { everything: true, ..Observed::default() }.finish();
            let full = set.evaluate_observing(&req, &everything);
            let pruned = set.evaluate(&req);
            prop_assert_eq!(&pruned.allowed, &full.allowed);
            prop_assert_eq!(&pruned.determining, &full.determining);
            prop_assert_eq!(pruned.errors.len(), full.errors.len());
        }

        /// I2/I3: a policy set that does not cover an action never denies it, and a satisfied
        /// forbid covering the action always denies it.
        #[test]
        fn forbids_deny_exactly_where_they_apply_and_hold(
            forbids in proptest::collection::vec(arb_forbid(), 0..4),
            action in 0..ACTIONS.len(),
            mfa: bool,
        ) {
            let texts: Vec<String> = forbids.iter().map(|(a, c)| forbid_text(a, *c)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let set = compile(&refs);
            let d = Check::new(ACTIONS[action], "contact").ctx("mfa", json!(mfa)).eval(&set);
            prop_assert!(d.errors.is_empty());
            if !set.applies(ACTIONS[action]) {
                prop_assert!(d.allowed);
            }
            let satisfied: Vec<String> = forbids.iter().enumerate().filter(|(_, (a, c))| {
                a.as_ref().is_none_or(|a| a.contains(&action))
                    && match *c { 0 => mfa, 1 => !mfa, 2 => true, _ => false }
            }).map(|(i, _)| format!("pol_{i}#0")).collect();
            prop_assert_eq!(d.allowed, satisfied.is_empty());
            prop_assert_eq!(d.determining, satisfied);
        }
    }
}
