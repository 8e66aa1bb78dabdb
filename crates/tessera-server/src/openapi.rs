//! `/openapi.json`: the OpenAPI 3.1 document of `/v1`, generated from the route table and the
//! request/response types (JSON Schema 2020-12 via schemars), so it cannot drift from the code.

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::routes::{Access, RouteSpec};

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
            "detail": { "type": "string" }, "code": { "type": "string" },
        },
    })
}

/// Builds the document.
pub fn document(routes: &[RouteSpec]) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas/".into())
        .into_generator();
    let mut paths = Map::new();
    for r in routes {
        let mut params = Vec::new();
        for seg in r.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
            }
        }
        if r.method == axum::http::Method::GET
            && r.response
                .is_some_and(|_| r.summary.starts_with("List") || r.path.ends_with("/audit"))
        {
            params.push(json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200 } }));
            params.push(json!({ "name": "cursor", "in": "query", "schema": { "type": "string" } }));
        }
        let (permission, description) = match r.access {
            Access::Permission(p, _) => (json!(p), format!("Requires the `{p}` permission.")),
            Access::Platform(p) => (
                json!(p),
                format!("Requires the `{p}` permission in the platform tenant."),
            ),
            Access::Authenticated => (Value::Null, "Requires any valid credential.".to_owned()),
        };
        let problem = json!({ "description": "error", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
        let mut responses = Map::new();
        let ok = match r.response {
            Some(f) => {
                json!({ "description": "success", "content": { "application/json": { "schema": f(&mut generator) } } })
            }
            None => json!({ "description": "success" }),
        };
        responses.insert(r.status.to_string(), ok);
        for code in ["400", "401", "403", "404", "409"] {
            responses.insert(code.to_owned(), problem.clone());
        }
        let mut op = json!({
            "summary": r.summary,
            "description": description,
            "operationId": format!("{}_{}", r.method.as_str().to_lowercase(), r.path.trim_start_matches('/').replace(['/', '{', '}', '-'], "_")),
            "parameters": params,
            "responses": responses,
            "security": [{ "bearer": [] }],
            "x-permission": permission,
        });
        if let (Some(f), Some(obj)) = (r.request, op.as_object_mut()) {
            obj.insert("requestBody".into(), json!({ "required": true, "content": { "application/json": { "schema": f(&mut generator) } } }));
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(r.method.as_str().to_lowercase(), op);
        }
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Tessera", "version": env!("CARGO_PKG_VERSION"), "description": "Identity, token and authorization server for multi-tenant SaaS platforms." },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "An API key (`tsk_…`) or an access token." } },
        },
    })
}
