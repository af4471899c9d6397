//! The User resource (RFC 7643 §4.1) with the Enterprise User extension (RFC 7643 §4.3).

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::json::{get_ignore_case, parse_bool_lenient, type_name};
use crate::{ENTERPRISE_USER_SCHEMA, ScimError, ScimType, USER_SCHEMA};

/// The validated, normalized input of a User create (POST) or replace (PUT).
///
/// Optional strings that arrive empty or `null` are `None`, because RFC 7643 §2.5 treats both
/// as unassigned. Read-only attributes the client sends (`id`, `meta`, `groups`) and unknown
/// attributes are ignored.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct UserResource {
    /// Required, trimmed and non-empty.
    pub user_name: String,
    pub external_id: Option<String>,
    /// `None` when the client left it unassigned (absent, `null`, or removed by PATCH). An
    /// unassigned `active` counts as active: see [`UserResource::is_active`].
    pub active: Option<bool>,
    pub display_name: Option<String>,
    pub name: Option<Name>,
    pub emails: Vec<MultiValue>,
    pub phone_numbers: Vec<MultiValue>,
    pub title: Option<String>,
    pub nick_name: Option<String>,
    /// A URL of the user's online profile.
    pub profile_url: Option<String>,
    pub user_type: Option<String>,
    pub preferred_language: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub roles: Vec<MultiValue>,
    pub enterprise: Option<EnterpriseUser>,
    /// Accepted on input and never serialized (RFC 7643 §4.1.1: `returned: never`).
    pub password: Option<String>,
}

/// The `name` complex attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name {
    pub formatted: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub honorific_prefix: Option<String>,
    pub honorific_suffix: Option<String>,
}

/// One value of a multi-valued complex attribute such as `emails`, `phoneNumbers` or `roles`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiValue {
    pub value: String,
    /// The `type` sub-attribute, such as "work".
    pub kind: Option<String>,
    pub primary: bool,
    pub display: Option<String>,
}

/// The Enterprise User extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnterpriseUser {
    pub employee_number: Option<String>,
    pub cost_center: Option<String>,
    pub organization: Option<String>,
    pub division: Option<String>,
    pub department: Option<String>,
    pub manager: Option<Manager>,
}

/// The `manager` attribute of the Enterprise User extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manager {
    /// The manager's SCIM `id`.
    pub value: Option<String>,
    pub display_name: Option<String>,
}

/// Resource metadata (RFC 7643 §3.1), maintained by the service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub resource_type: String,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    /// Absolute URL of the resource.
    pub location: String,
    /// Entity tag, such as `W/"3"`.
    pub version: String,
}

impl Meta {
    /// Renders the `meta` attribute with RFC 3339 timestamps in UTC.
    pub fn to_json(&self) -> Value {
        json!({
            "resourceType": self.resource_type,
            "created": self.created.to_rfc3339_opts(SecondsFormat::Millis, true),
            "lastModified": self.last_modified.to_rfc3339_opts(SecondsFormat::Millis, true),
            "location": self.location,
            "version": self.version,
        })
    }
}

impl fmt::Debug for UserResource {
    /// Redacts the password so that logging a resource cannot leak it.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("UserResource")
            .field("user_name", &self.user_name)
            .field("external_id", &self.external_id)
            .field("active", &self.active)
            .field("display_name", &self.display_name)
            .field("name", &self.name)
            .field("emails", &self.emails)
            .field("phone_numbers", &self.phone_numbers)
            .field("title", &self.title)
            .field("nick_name", &self.nick_name)
            .field("profile_url", &self.profile_url)
            .field("user_type", &self.user_type)
            .field("preferred_language", &self.preferred_language)
            .field("locale", &self.locale)
            .field("timezone", &self.timezone)
            .field("roles", &self.roles)
            .field("enterprise", &self.enterprise)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Reads attributes of one JSON object by case-insensitive name, also accepting keys prefixed
/// with a schema URN (`urn:…:User:userName`, RFC 7644 §3.10) and, for the enterprise
/// extension, keys in the extension object.
struct Attributes<'a> {
    object: &'a Map<String, Value>,
    /// Schema whose URN may prefix attribute names in `object`.
    schema: &'a str,
    /// Name used in error details for attributes of this object, such as "name." or "".
    error_prefix: &'a str,
}

impl<'a> Attributes<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        if let Some(value) = get_ignore_case(self.object, name) {
            return Some(value);
        }
        self.object.iter().find_map(|(key, value)| {
            let (schema, attribute) = key.rsplit_once(':')?;
            let matches =
                schema.eq_ignore_ascii_case(self.schema) && attribute.eq_ignore_ascii_case(name);
            matches.then_some(value)
        })
    }

    fn wrong_type(&self, name: &str, expected: &str, value: &Value) -> ScimError {
        ScimError::invalid_value(format!(
            "attribute '{}{name}' must be {expected}, got {}",
            self.error_prefix,
            type_name(value)
        ))
    }

    /// Reads an optional string. `null` and empty strings are unassigned (RFC 7643 §2.5).
    fn string(&self, name: &str) -> Result<Option<String>, ScimError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ScimError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match parse_bool_lenient(value) {
                Some(flag) => Ok(Some(flag)),
                None => Err(self.wrong_type(name, "a boolean", value)),
            },
        }
    }

    fn object(&self, name: &str) -> Result<Option<Attributes<'a>>, ScimError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(object)) => Ok(Some(Attributes {
                object,
                schema: self.schema,
                error_prefix: "",
            })),
            Some(other) => Err(self.wrong_type(name, "an object", other)),
        }
    }

    fn multi_valued(&self, name: &str) -> Result<Vec<MultiValue>, ScimError> {
        let elements = match self.get(name) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(elements)) => elements,
            Some(other) => return Err(self.wrong_type(name, "an array", other)),
        };

        let mut values = Vec::with_capacity(elements.len());
        for (index, element) in elements.iter().enumerate() {
            let Value::Object(object) = element else {
                return Err(ScimError::invalid_value(format!(
                    "attribute '{name}[{index}]' must be an object, got {}",
                    type_name(element)
                )));
            };
            let error_prefix = format!("{name}[{index}].");
            let element = Attributes {
                object,
                schema: self.schema,
                error_prefix: &error_prefix,
            };
            // A value without `value` carries nothing to store. Entra ID and Okta send such
            // entries when the source attribute is empty.
            let Some(value) = element.string("value")? else {
                continue;
            };
            values.push(MultiValue {
                value,
                kind: element.string("type")?,
                primary: element.boolean("primary")?.unwrap_or(false),
                display: element.string("display")?,
            });
        }

        keep_first_primary(&mut values);
        Ok(values)
    }
}

/// RFC 7643 §2.4 allows `primary: true` on at most one value. Rather than rejecting a request
/// that marks several, the first one keeps the flag.
fn keep_first_primary(values: &mut [MultiValue]) {
    let mut seen_primary = false;
    for value in values {
        if value.primary && seen_primary {
            value.primary = false;
        }
        seen_primary |= value.primary;
    }
}

/// Checks that `schemas` is an array of strings containing `required` (URNs compare ignoring
/// case). Other schema URIs are allowed, because Entra ID adds its own.
pub(crate) fn require_schema(body: &Map<String, Value>, required: &str) -> Result<(), ScimError> {
    let missing = || {
        ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!("attribute 'schemas' must be an array containing \"{required}\""),
        )
    };
    let Some(Value::Array(schemas)) = get_ignore_case(body, "schemas") else {
        return Err(missing());
    };
    let contains_required = schemas.iter().any(|schema| {
        schema
            .as_str()
            .is_some_and(|schema| schema.eq_ignore_ascii_case(required))
    });
    if contains_required {
        Ok(())
    } else {
        Err(missing())
    }
}

impl UserResource {
    /// Validates and normalizes a User body sent to POST or PUT.
    ///
    /// Attribute names are case-insensitive (RFC 7643 §2.1) and may carry their schema URN as
    /// a prefix. Enterprise attributes are read from the extension object or from URN-prefixed
    /// top-level keys. Unknown attributes are ignored. Booleans may be the strings "true" or
    /// "false" in any case. `manager` may be a bare id string. Errors are 400 `invalidSyntax`
    /// when `schemas` lacks the User schema and 400 `invalidValue` naming the attribute
    /// otherwise.
    pub fn from_json(value: &Value) -> Result<UserResource, ScimError> {
        let Value::Object(body) = value else {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!(
                    "the request body must be a JSON object, got {}",
                    type_name(value)
                ),
            ));
        };
        require_schema(body, USER_SCHEMA)?;
        let core = Attributes {
            object: body,
            schema: USER_SCHEMA,
            error_prefix: "",
        };

        let user_name = match core.get("userName") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.trim()),
            Some(other) => return Err(core.wrong_type("userName", "a string", other)),
        };
        let Some(user_name) = user_name.filter(|name| !name.is_empty()) else {
            return Err(ScimError::invalid_value("attribute 'userName' is required"));
        };

        Ok(UserResource {
            user_name: user_name.to_owned(),
            external_id: core.string("externalId")?,
            active: core.boolean("active")?,
            display_name: core.string("displayName")?,
            name: parse_name(&core)?,
            emails: core.multi_valued("emails")?,
            phone_numbers: core.multi_valued("phoneNumbers")?,
            title: core.string("title")?,
            nick_name: core.string("nickName")?,
            profile_url: core.string("profileUrl")?,
            user_type: core.string("userType")?,
            preferred_language: core.string("preferredLanguage")?,
            locale: core.string("locale")?,
            timezone: core.string("timezone")?,
            roles: core.multi_valued("roles")?,
            enterprise: parse_enterprise(body)?,
            password: core.string("password")?,
        })
    }

    /// Renders the full SCIM representation with `id` and `meta`. The enterprise schema URN
    /// is listed only when enterprise attributes are present. The password is never included.
    pub fn to_json(&self, id: &str, meta: &Meta) -> Value {
        let mut schemas = vec![Value::from(USER_SCHEMA)];
        let mut object = Map::new();
        object.insert("id".to_owned(), Value::from(id));
        insert_optional(&mut object, "externalId", &self.external_id);
        object.insert("userName".to_owned(), Value::from(self.user_name.as_str()));
        if let Some(name) = &self.name {
            object.insert("name".to_owned(), name_to_json(name));
        }
        insert_optional(&mut object, "displayName", &self.display_name);
        insert_optional(&mut object, "title", &self.title);
        insert_optional(&mut object, "nickName", &self.nick_name);
        insert_optional(&mut object, "profileUrl", &self.profile_url);
        insert_optional(&mut object, "userType", &self.user_type);
        insert_optional(&mut object, "preferredLanguage", &self.preferred_language);
        insert_optional(&mut object, "locale", &self.locale);
        insert_optional(&mut object, "timezone", &self.timezone);
        if let Some(active) = self.active {
            object.insert("active".to_owned(), Value::Bool(active));
        }
        insert_multi_valued(&mut object, "emails", &self.emails);
        insert_multi_valued(&mut object, "phoneNumbers", &self.phone_numbers);
        insert_multi_valued(&mut object, "roles", &self.roles);
        if let Some(enterprise) = &self.enterprise {
            schemas.push(Value::from(ENTERPRISE_USER_SCHEMA));
            object.insert(
                ENTERPRISE_USER_SCHEMA.to_owned(),
                enterprise_to_json(enterprise),
            );
        }
        object.insert("schemas".to_owned(), Value::Array(schemas));
        object.insert("meta".to_owned(), meta.to_json());
        Value::Object(object)
    }

    /// Returns the email to treat as the user's address: the primary one, else the first of
    /// type "work", else the first.
    /// Whether the user is active. RFC 7643 gives `active` no default; an account the identity
    /// provider created without it is treated as active, as Okta and Entra ID mean it.
    pub fn is_active(&self) -> bool {
        self.active.unwrap_or(true)
    }

    pub fn primary_email(&self) -> Option<&str> {
        let primary = self.emails.iter().find(|email| email.primary);
        let work = || {
            self.emails.iter().find(|email| {
                email
                    .kind
                    .as_deref()
                    .is_some_and(|kind| kind.eq_ignore_ascii_case("work"))
            })
        };
        primary
            .or_else(work)
            .or_else(|| self.emails.first())
            .map(|email| email.value.as_str())
    }
}

fn parse_name(core: &Attributes<'_>) -> Result<Option<Name>, ScimError> {
    let Some(object) = core.object("name")? else {
        return Ok(None);
    };
    let name = Attributes {
        error_prefix: "name.",
        ..object
    };
    let parsed = Name {
        formatted: name.string("formatted")?,
        family_name: name.string("familyName")?,
        given_name: name.string("givenName")?,
        middle_name: name.string("middleName")?,
        honorific_prefix: name.string("honorificPrefix")?,
        honorific_suffix: name.string("honorificSuffix")?,
    };
    Ok((parsed != Name::default()).then_some(parsed))
}

/// Reads the enterprise extension from its object and from URN-prefixed top-level keys such
/// as `urn:…:enterprise:2.0:User:department`. A key in the object wins over a prefixed one.
fn parse_enterprise(body: &Map<String, Value>) -> Result<Option<EnterpriseUser>, ScimError> {
    let extension_object = match get_ignore_case(body, ENTERPRISE_USER_SCHEMA) {
        None | Some(Value::Null) => None,
        Some(Value::Object(object)) => Some(object),
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "attribute '{ENTERPRISE_USER_SCHEMA}' must be an object, got {}",
                type_name(other)
            )));
        }
    };
    let in_object = extension_object.map(|object| Attributes {
        object,
        schema: ENTERPRISE_USER_SCHEMA,
        error_prefix: "",
    });
    let read_string = |name: &str| match &in_object {
        Some(attributes) if attributes.get(name).is_some() => attributes.string(name),
        _ => prefixed_string(body, name),
    };
    let manager_value = match &in_object {
        Some(attributes) if attributes.get("manager").is_some() => attributes.get("manager"),
        _ => prefixed_get(body, "manager"),
    };

    let enterprise = EnterpriseUser {
        employee_number: read_string("employeeNumber")?,
        cost_center: read_string("costCenter")?,
        organization: read_string("organization")?,
        division: read_string("division")?,
        department: read_string("department")?,
        manager: parse_manager(manager_value)?,
    };
    Ok((enterprise != EnterpriseUser::default()).then_some(enterprise))
}

/// Looks up a top-level key written as `<enterprise URN>:<name>`, ignoring a key without the
/// prefix, which is a core attribute.
fn prefixed_get<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.iter().find_map(|(key, value)| {
        let (schema, attribute) = key.rsplit_once(':')?;
        let matches = schema.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)
            && attribute.eq_ignore_ascii_case(name);
        matches.then_some(value)
    })
}

fn prefixed_string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    match prefixed_get(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ScimError::invalid_value(format!(
            "attribute '{ENTERPRISE_USER_SCHEMA}:{name}' must be a string, got {}",
            type_name(other)
        ))),
    }
}

/// Reads `manager` as `{"value": id, "displayName": …}` or as a bare id string, which Entra ID
/// sends in PATCH values. An empty id means no manager, because Entra ID removes a manager by
/// sending `""`.
fn parse_manager(value: Option<&Value>) -> Result<Option<Manager>, ScimError> {
    let manager = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(id)) => Manager {
            value: Some(id.clone()).filter(|id| !id.is_empty()),
            display_name: None,
        },
        Some(Value::Object(object)) => {
            let attributes = Attributes {
                object,
                schema: ENTERPRISE_USER_SCHEMA,
                error_prefix: "manager.",
            };
            Manager {
                value: attributes.string("value")?,
                display_name: attributes.string("displayName")?,
            }
        }
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "attribute 'manager' must be an object or a string, got {}",
                type_name(other)
            )));
        }
    };
    Ok(manager.value.is_some().then_some(manager))
}

fn insert_optional(object: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), Value::from(value.as_str()));
    }
}

fn insert_multi_valued(object: &mut Map<String, Value>, key: &str, values: &[MultiValue]) {
    if values.is_empty() {
        return;
    }
    let rendered = values
        .iter()
        .map(|value| {
            let mut element = Map::new();
            element.insert("value".to_owned(), Value::from(value.value.as_str()));
            insert_optional(&mut element, "type", &value.kind);
            element.insert("primary".to_owned(), Value::Bool(value.primary));
            insert_optional(&mut element, "display", &value.display);
            Value::Object(element)
        })
        .collect();
    object.insert(key.to_owned(), Value::Array(rendered));
}

fn name_to_json(name: &Name) -> Value {
    let mut object = Map::new();
    insert_optional(&mut object, "formatted", &name.formatted);
    insert_optional(&mut object, "familyName", &name.family_name);
    insert_optional(&mut object, "givenName", &name.given_name);
    insert_optional(&mut object, "middleName", &name.middle_name);
    insert_optional(&mut object, "honorificPrefix", &name.honorific_prefix);
    insert_optional(&mut object, "honorificSuffix", &name.honorific_suffix);
    Value::Object(object)
}

fn enterprise_to_json(enterprise: &EnterpriseUser) -> Value {
    let mut object = Map::new();
    insert_optional(&mut object, "employeeNumber", &enterprise.employee_number);
    insert_optional(&mut object, "costCenter", &enterprise.cost_center);
    insert_optional(&mut object, "organization", &enterprise.organization);
    insert_optional(&mut object, "division", &enterprise.division);
    insert_optional(&mut object, "department", &enterprise.department);
    if let Some(manager) = &enterprise.manager {
        let mut rendered = Map::new();
        insert_optional(&mut rendered, "value", &manager.value);
        insert_optional(&mut rendered, "displayName", &manager.display_name);
        object.insert("manager".to_owned(), Value::Object(rendered));
    }
    Value::Object(object)
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
