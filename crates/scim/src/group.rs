//! The Group resource (RFC 7643 §4.2).

use serde_json::{Map, Value};

use crate::json::{get_ignore_case, type_name};
use crate::user::{Meta, require_schema};
use crate::{GROUP_SCHEMA, ScimError, ScimType};

/// The validated, normalized input of a Group create (POST) or replace (PUT).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupResource {
    /// Required, trimmed and non-empty.
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: Vec<GroupMember>,
}

/// One value of `members`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMember {
    /// The member's SCIM `id`.
    pub value: String,
    /// The member's display name as the client sent it. Okta sends the user's userName.
    pub display: Option<String>,
    /// The `type` sub-attribute: "User" or "Group".
    pub kind: Option<String>,
}

impl GroupResource {
    /// Validates and normalizes a Group body sent to POST or PUT.
    ///
    /// Attribute names are case-insensitive. Unknown attributes, extra schema URIs and `meta`
    /// are ignored, as Entra ID sends all three. `members` may be `null`, and `$ref` in a
    /// member is ignored. Duplicate members are merged, keeping the first.
    pub fn from_json(value: &Value) -> Result<GroupResource, ScimError> {
        let Value::Object(body) = value else {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!(
                    "the request body must be a JSON object, got {}",
                    type_name(value)
                ),
            ));
        };
        require_schema(body, GROUP_SCHEMA)?;

        let display_name = match get_ignore_case(body, "displayName") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.trim()),
            Some(other) => return Err(wrong_type("displayName", "a string", other)),
        };
        let Some(display_name) = display_name.filter(|name| !name.is_empty()) else {
            return Err(ScimError::invalid_value(
                "attribute 'displayName' is required",
            ));
        };

        Ok(GroupResource {
            display_name: display_name.to_owned(),
            external_id: optional_string(body, "externalId", "externalId")?,
            members: parse_members(body)?,
        })
    }

    /// Renders the full SCIM representation with `id` and `meta`. `members` is always present,
    /// empty when the group has none.
    pub fn to_json(&self, id: &str, meta: &Meta) -> Value {
        let mut object = Map::new();
        object.insert(
            "schemas".to_owned(),
            Value::Array(vec![Value::from(GROUP_SCHEMA)]),
        );
        object.insert("id".to_owned(), Value::from(id));
        if let Some(external_id) = &self.external_id {
            object.insert("externalId".to_owned(), Value::from(external_id.as_str()));
        }
        object.insert(
            "displayName".to_owned(),
            Value::from(self.display_name.as_str()),
        );
        let members = self
            .members
            .iter()
            .map(|member| {
                let mut element = Map::new();
                element.insert("value".to_owned(), Value::from(member.value.as_str()));
                if let Some(display) = &member.display {
                    element.insert("display".to_owned(), Value::from(display.as_str()));
                }
                if let Some(kind) = &member.kind {
                    element.insert("type".to_owned(), Value::from(kind.as_str()));
                }
                Value::Object(element)
            })
            .collect();
        object.insert("members".to_owned(), Value::Array(members));
        object.insert("meta".to_owned(), meta.to_json());
        Value::Object(object)
    }
}

fn wrong_type(name: &str, expected: &str, value: &Value) -> ScimError {
    ScimError::invalid_value(format!(
        "attribute '{name}' must be {expected}, got {}",
        type_name(value)
    ))
}

/// Reads an optional string; `null` and `""` are unassigned (RFC 7643 §2.5).
fn optional_string(
    object: &Map<String, Value>,
    name: &str,
    error_name: &str,
) -> Result<Option<String>, ScimError> {
    match get_ignore_case(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(wrong_type(error_name, "a string", other)),
    }
}

fn parse_members(body: &Map<String, Value>) -> Result<Vec<GroupMember>, ScimError> {
    let elements = match get_ignore_case(body, "members") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(elements)) => elements,
        Some(other) => return Err(wrong_type("members", "an array", other)),
    };

    let mut members: Vec<GroupMember> = Vec::with_capacity(elements.len());
    for (index, element) in elements.iter().enumerate() {
        let Value::Object(object) = element else {
            return Err(wrong_type(
                &format!("members[{index}]"),
                "an object",
                element,
            ));
        };
        let Some(value) = optional_string(object, "value", &format!("members[{index}].value"))?
        else {
            return Err(ScimError::invalid_value(format!(
                "attribute 'members[{index}].value' is required"
            )));
        };
        if members.iter().any(|member| member.value == value) {
            continue;
        }
        members.push(GroupMember {
            value,
            display: optional_string(object, "display", &format!("members[{index}].display"))?,
            kind: optional_string(object, "type", &format!("members[{index}].type"))?,
        });
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;

    fn parse(body: &Value) -> GroupResource {
        match GroupResource::from_json(body) {
            Ok(group) => group,
            Err(error) => panic!("body failed to parse: {error}"),
        }
    }

    #[test]
    fn from_json_accepts_entra_create() {
        let body = json!({
            "schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0",
            "displayName": "Sales",
            "meta": {"resourceType": "Group"}
        });

        let group = parse(&body);

        assert_eq!(group.display_name, "Sales");
        assert_eq!(group.external_id.as_deref(), Some("8aa1a0c0"));
        assert!(group.members.is_empty());
    }

    #[test]
    fn from_json_reads_members() {
        let body = json!({
            "schemas": [GROUP_SCHEMA],
            "DisplayName": "Sales",
            "Members": [
                {"$ref": null, "value": "u1", "display": "one@example.test"},
                {"value": "u2", "type": "User"},
                {"value": "u1"}
            ]
        });

        let group = parse(&body);

        let expected = vec![
            GroupMember {
                value: "u1".to_owned(),
                display: Some("one@example.test".to_owned()),
                kind: None,
            },
            GroupMember {
                value: "u2".to_owned(),
                display: None,
                kind: Some("User".to_owned()),
            },
        ];
        assert_eq!(group.members, expected);
    }

    #[test]
    fn from_json_accepts_null_members() {
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "Sales", "members": null});

        assert!(parse(&body).members.is_empty());
    }

    #[test]
    fn from_json_rejects_invalid_bodies() {
        let cases = [
            (json!({"displayName": "Sales"}), ScimType::InvalidSyntax),
            (json!({"schemas": [GROUP_SCHEMA]}), ScimType::InvalidValue),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": " "}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": 3}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": "S", "members": {}}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": "S", "members": ["u1"]}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [GROUP_SCHEMA], "displayName": "S", "members": [{"display": "x"}]}),
                ScimType::InvalidValue,
            ),
        ];
        for (body, expected) in cases {
            let error = GroupResource::from_json(&body).err();
            assert_eq!(
                error.and_then(|error| error.scim_type),
                Some(expected),
                "body {body}"
            );
        }
    }

    #[test]
    fn to_json_always_has_members() {
        let group = GroupResource {
            display_name: "Sales".to_owned(),
            ..GroupResource::default()
        };
        let created = Utc
            .with_ymd_and_hms(2024, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default();
        let meta = Meta {
            resource_type: "Group".to_owned(),
            created,
            last_modified: created,
            location: "https://bridge.example.test/scim/v2/t1/Groups/g1".to_owned(),
            version: "W/\"1\"".to_owned(),
        };

        let rendered = group.to_json("g1", &meta);

        assert_eq!(rendered["schemas"], json!([GROUP_SCHEMA]));
        assert_eq!(rendered["id"], json!("g1"));
        assert_eq!(rendered["members"], json!([]));
        assert_eq!(rendered["meta"]["resourceType"], json!("Group"));
    }
}
