//! Response helpers shared by the SCIM handlers: media type, locations and the
//! `attributes` / `excludedAttributes` projection (RFC 7644 §3.4.2.5).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim::{AttrPath, ScimError, ScimType};
use serde_json::{Map, Value};

use super::SCIM_CONTENT_TYPE;

pub fn scim_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, SCIM_CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

/// The scheme and host clients used, for `meta.location` and `Location`.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|scheme| *scheme == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// Reads `If-Match` as a row version: `W/"3"`, `"3"`, or `*` (any version).
pub fn if_match_version(headers: &HeaderMap) -> Result<Option<i64>, ScimError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    raw.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            ScimError::new(
                412,
                None,
                format!("If-Match {raw:?} is not a version this service issued"),
            )
        })
}

/// Which attributes a response carries.
#[derive(Debug, Clone, Default)]
pub enum Projection {
    #[default]
    Default,
    Only(Vec<AttrPath>),
    Excluding(Vec<AttrPath>),
}

impl Projection {
    /// Parses the comma-separated `attributes` and `excludedAttributes` parameters. Both at once
    /// is ambiguous, so it is rejected.
    pub fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        let parse_list = |raw: &str| -> Result<Vec<AttrPath>, ScimError> {
            raw.split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(AttrPath::parse)
                .collect()
        };
        match (attributes, excluded) {
            (Some(_), Some(_)) => Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                "send either attributes or excludedAttributes, not both",
            )),
            (Some(raw), None) => Ok(Projection::Only(parse_list(raw)?)),
            (None, Some(raw)) => Ok(Projection::Excluding(parse_list(raw)?)),
            (None, None) => Ok(Projection::Default),
        }
    }

    /// Applies the projection to a full representation. `id` and `schemas` are always returned
    /// (RFC 7643 §7, `returned: always`).
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(object) = resource else {
            return resource;
        };
        match self {
            Projection::Default => Value::Object(object),
            Projection::Only(paths) => Value::Object(keep_only(object, paths)),
            Projection::Excluding(paths) => Value::Object(exclude(object, paths)),
        }
    }
}

fn is_always_returned(key: &str) -> bool {
    key.eq_ignore_ascii_case("id") || key.eq_ignore_ascii_case("schemas")
}

/// Splits a path into the top-level key it names (the extension URN for extension attributes)
/// and the remaining names inside it.
fn path_parts(path: &AttrPath) -> (String, Vec<String>) {
    let mut inner = Vec::new();
    match &path.schema {
        Some(schema)
            if !schema.eq_ignore_ascii_case(scim::USER_SCHEMA)
                && !schema.eq_ignore_ascii_case(scim::GROUP_SCHEMA) =>
        {
            inner.push(path.attribute.clone());
            inner.extend(path.sub_attribute.clone());
            (schema.clone(), inner)
        }
        _ => {
            inner.extend(path.sub_attribute.clone());
            (path.attribute.clone(), inner)
        }
    }
}

fn find_key<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    object.keys().find(|key| key.eq_ignore_ascii_case(name))
}

fn keep_only(object: Map<String, Value>, paths: &[AttrPath]) -> Map<String, Value> {
    let mut kept = Map::new();
    for (key, value) in &object {
        if is_always_returned(key) {
            kept.insert(key.clone(), value.clone());
        }
    }
    for path in paths {
        let (top, inner) = path_parts(path);
        let Some(key) = find_key(&object, &top) else {
            continue;
        };
        let value = &object[key];
        let projected = match inner.as_slice() {
            [] => value.clone(),
            names => project_inner(value, names),
        };
        merge(&mut kept, key, projected);
    }
    kept
}

/// Keeps only `names` (a sub-attribute, or an attribute and its sub-attribute inside an
/// extension) of a complex or multi-valued attribute.
fn project_inner(value: &Value, names: &[String]) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| project_inner(item, names))
                .collect(),
        ),
        Value::Object(object) => {
            let mut kept = Map::new();
            if let Some((first, rest)) = names.split_first()
                && let Some(key) = find_key(object, first)
            {
                let inner = if rest.is_empty() {
                    object[key].clone()
                } else {
                    project_inner(&object[key], rest)
                };
                kept.insert(key.clone(), inner);
            }
            Value::Object(kept)
        }
        other => other.clone(),
    }
}

/// Merges a projected value into the result, so `name.givenName,name.familyName` keeps both.
fn merge(target: &mut Map<String, Value>, key: &str, value: Value) {
    match (target.get_mut(key), value) {
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (inner_key, inner_value) in new {
                merge(existing, &inner_key, inner_value);
            }
        }
        (Some(Value::Array(existing)), Value::Array(new)) if existing.len() == new.len() => {
            for (old, new) in existing.iter_mut().zip(new) {
                if let (Value::Object(old), Value::Object(new)) = (old, new) {
                    for (inner_key, inner_value) in new {
                        merge(old, &inner_key, inner_value);
                    }
                }
            }
        }
        (_, value) => {
            target.insert(key.to_owned(), value);
        }
    }
}

fn exclude(mut object: Map<String, Value>, paths: &[AttrPath]) -> Map<String, Value> {
    for path in paths {
        let (top, inner) = path_parts(path);
        let Some(key) = find_key(&object, &top).cloned() else {
            continue;
        };
        if is_always_returned(&key) {
            continue;
        }
        if inner.is_empty() {
            object.remove(&key);
        } else if let Some(value) = object.get_mut(&key) {
            remove_inner(value, &inner);
        }
    }
    object
}

fn remove_inner(value: &mut Value, names: &[String]) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| remove_inner(item, names)),
        Value::Object(object) => {
            let Some((first, rest)) = names.split_first() else {
                return;
            };
            let Some(key) = find_key(object, first).cloned() else {
                return;
            };
            if rest.is_empty() {
                object.remove(&key);
            } else if let Some(inner) = object.get_mut(&key) {
                remove_inner(inner, rest);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": [scim::USER_SCHEMA, scim::ENTERPRISE_USER_SCHEMA],
            "id": "1",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@example.test", "type": "work"}],
            scim::ENTERPRISE_USER_SCHEMA: {"department": "Sales", "employeeNumber": "7"},
            "meta": {"resourceType": "User"}
        })
    }

    #[test]
    fn attributes_keep_named_and_always_returned() {
        let projection =
            Projection::parse(Some("userName,name.givenName,emails.value"), None).unwrap();
        let projected = projection.apply(user());
        assert_eq!(projected["id"], "1");
        assert_eq!(projected["userName"], "bjensen");
        assert_eq!(projected["name"], json!({"givenName": "Barbara"}));
        assert_eq!(projected["emails"], json!([{"value": "b@example.test"}]));
        assert!(projected.get("meta").is_none());
        assert!(projected.get(scim::ENTERPRISE_USER_SCHEMA).is_none());
    }

    #[test]
    fn excluded_attributes_remove_extension_fields() {
        let excluded = format!("{}:department,emails", scim::ENTERPRISE_USER_SCHEMA);
        let projection = Projection::parse(None, Some(&excluded)).unwrap();
        let projected = projection.apply(user());
        assert!(projected.get("emails").is_none());
        assert_eq!(
            projected[scim::ENTERPRISE_USER_SCHEMA],
            json!({"employeeNumber": "7"})
        );
        assert_eq!(projected["userName"], "bjensen");
    }

    #[test]
    fn id_cannot_be_excluded() {
        let projection = Projection::parse(None, Some("id,userName")).unwrap();
        let projected = projection.apply(user());
        assert_eq!(projected["id"], "1");
        assert!(projected.get("userName").is_none());
    }
}
