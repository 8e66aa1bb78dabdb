//! The Cedar request of one check: the principal, the resource with its attributes and
//! tenancy parents, and the context, built from an [`AbacRequest`] by JSON shape.
//! INVARIANT: a value of an unexpected shape fails the request closed (which denies); what no
//! policy observes is left out unconverted; `id`, `agency` and `account` come from the fields.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
    Schema,
};
use serde_json::{Map, Value};

use super::coverage::Observed;
use super::schema::{NAMESPACE, RESERVED_RESOURCE_ATTRS};

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

/// The entity type names of the schema, resolved once so evaluation parses nothing.
#[derive(Clone, Debug)]
pub(super) struct Types {
    user: EntityTypeName,
    api_key: EntityTypeName,
    agency: EntityTypeName,
    account: EntityTypeName,
    action: EntityTypeName,
    resources: HashMap<String, EntityTypeName>,
}

impl Types {
    pub(super) fn from_schema(schema: &Schema) -> Result<Self, String> {
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
    pub(super) fn request(
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
