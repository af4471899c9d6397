//! The PATCH engine (RFC 7644 §3.5.2).
//!
//! Operations apply in order to a copy of the resource's SCIM JSON, so a failing operation
//! leaves the stored resource untouched. The engine uses little schema knowledge. It works on
//! JSON, treating a JSON array as a multi-valued attribute and a JSON object as a complex one.
//! The caller validates the result, for a User with [`crate::UserResource::from_json`].

mod targets;

use serde_json::{Map, Value};

use crate::filter::{AttrPath, Filter, parse_patch_path, shorten};
use crate::json::{find_key, get_ignore_case, type_name};
use crate::user::require_schema;
use crate::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP_SCHEMA, ScimError, ScimType, USER_SCHEMA,
};
use targets::{apply_attribute, apply_filtered, apply_sub_attribute, normalize_value};

/// Maximum number of operations in one request. Identity providers send a handful, and Entra
/// ID puts many members into one operation's value rather than into many operations.
pub const MAX_PATCH_OPERATIONS: usize = 1000;

/// The `op` of a PATCH operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

impl PatchOpKind {
    /// Parses an op name in any case. Entra ID sends "Add", "Replace" and "Remove".
    pub fn parse(text: &str) -> Option<PatchOpKind> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("add") {
            Some(PatchOpKind::Add)
        } else if text.eq_ignore_ascii_case("remove") {
            Some(PatchOpKind::Remove)
        } else if text.eq_ignore_ascii_case("replace") {
            Some(PatchOpKind::Replace)
        } else {
            None
        }
    }

    /// Returns the op name in lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Remove => "remove",
            PatchOpKind::Replace => "replace",
        }
    }
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    /// The `value` member, `Some(Value::Null)` when the client sent `null`.
    pub value: Option<Value>,
}

/// A PATCH path: `attrPath` or `attrPath[filter]`, optionally followed by `.subAttribute`.
///
/// Examples: `name.givenName`, `emails[type eq "work"].value`, `members[value eq "…"]`,
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`. For
/// `name.givenName` the sub-attribute is in `attr`, and `sub_attribute` is used only after a
/// filter.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub_attribute: Option<String>,
}

impl PatchPath {
    /// Parses a path. Errors are 400 `invalidPath`.
    pub fn parse(text: &str) -> Result<PatchPath, ScimError> {
        let (attr, filter, sub_attribute) = parse_patch_path(text.trim())?;
        Ok(PatchPath {
            attr,
            filter,
            sub_attribute,
        })
    }
}

/// A parsed PATCH request body.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Parses and checks a PATCH body (RFC 7644 §3.5.2).
    ///
    /// `schemas` must contain the PatchOp schema. Member names (`Operations`, `op`, `path`,
    /// `value`) and op names are case-insensitive. A `remove` without a path is rejected with
    /// 400 `noTarget`, and an `add` or `replace` needs a value, which must be an object when
    /// there is no path.
    pub fn from_json(value: &Value) -> Result<PatchRequest, ScimError> {
        let Value::Object(body) = value else {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!(
                    "the request body must be a JSON object, got {}",
                    type_name(value)
                ),
            ));
        };
        require_schema(body, PATCH_OP_SCHEMA)?;

        let operations = match get_ignore_case(body, "Operations") {
            Some(Value::Array(operations)) => operations,
            Some(other) => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidSyntax,
                    format!(
                        "attribute 'Operations' must be an array, got {}",
                        type_name(other)
                    ),
                ));
            }
            None => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidSyntax,
                    "attribute 'Operations' is required",
                ));
            }
        };
        if operations.len() > MAX_PATCH_OPERATIONS {
            return Err(ScimError::invalid_value(format!(
                "the request has {} operations, more than the maximum of {MAX_PATCH_OPERATIONS}",
                operations.len()
            )));
        }

        let operations = operations
            .iter()
            .enumerate()
            .map(|(index, operation)| {
                parse_operation(operation).map_err(|error| in_operation(index, error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatchRequest { operations })
    }
}

/// Prefixes an error detail with the index of the operation that caused it.
fn in_operation(index: usize, error: ScimError) -> ScimError {
    ScimError {
        detail: format!("Operations[{index}]: {}", error.detail),
        ..error
    }
}

fn parse_operation(operation: &Value) -> Result<PatchOperation, ScimError> {
    let Value::Object(operation) = operation else {
        return Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!(
                "an operation must be an object, got {}",
                type_name(operation)
            ),
        ));
    };

    let op = match get_ignore_case(operation, "op") {
        Some(Value::String(name)) => PatchOpKind::parse(name).ok_or_else(|| {
            ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!(
                    "'op' must be \"add\", \"remove\" or \"replace\", got \"{}\"",
                    shorten(name)
                ),
            )
        })?,
        Some(other) => {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                format!("'op' must be a string, got {}", type_name(other)),
            ));
        }
        None => {
            return Err(ScimError::bad_request(
                ScimType::InvalidSyntax,
                "'op' is required",
            ));
        }
    };

    let path = match get_ignore_case(operation, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(PatchPath::parse(text)?),
        Some(other) => {
            return Err(ScimError::bad_request(
                ScimType::InvalidPath,
                format!("'path' must be a string, got {}", type_name(other)),
            ));
        }
    };
    let value = get_ignore_case(operation, "value").cloned();

    let operation = PatchOperation { op, path, value };
    validate_operation(&operation)?;
    Ok(operation)
}

/// Checks the shape rules of RFC 7644 §3.5.2.1 to §3.5.2.3 that do not depend on the resource.
/// A `replace` with a path and no value is allowed and clears the target, the same as a
/// `null` value.
fn validate_operation(operation: &PatchOperation) -> Result<(), ScimError> {
    match (operation.op, &operation.path, &operation.value) {
        (PatchOpKind::Remove, None, _) => Err(ScimError::bad_request(
            ScimType::NoTarget,
            "a remove operation requires a path",
        )),
        (PatchOpKind::Add, _, None) => Err(ScimError::invalid_value(
            "an add operation requires a value",
        )),
        (PatchOpKind::Add | PatchOpKind::Replace, None, Some(Value::Object(_))) => Ok(()),
        (PatchOpKind::Add | PatchOpKind::Replace, None, other) => {
            Err(ScimError::invalid_value(format!(
                "an {} operation without a path requires an object value, got {}",
                operation.op.as_str(),
                other.as_ref().map_or("nothing", type_name)
            )))
        }
        _ => Ok(()),
    }
}

/// Applies the operations in order to a copy of `resource` and returns the new JSON.
///
/// Either every operation applies or the error of the first failing one is returned.
/// Attribute names match ignoring case, and writes keep the spelling of an existing key.
/// Beyond RFC 7644 §3.5.2, the engine accepts what identity providers send:
///
/// - In an `add` or `replace` without a path, each key of the value is itself a path, such as
///   `name.givenName` or a URN-prefixed enterprise attribute (Entra ID).
/// - `null`, `""` or a missing value on `add` or `replace` clears the target (RFC 7643 §2.5),
///   which is how Entra ID removes a manager.
/// - "True"/"False" strings written to `active` or `primary` become booleans, and a bare
///   string written to the enterprise `manager` becomes `{"value": …}`.
/// - A `remove` of a multi-valued attribute with a value removes only the listed values, as
///   Entra ID does for group members, instead of the whole attribute.
/// - `replace` or `add` of `attr[filter].sub` where no value matches appends a new value built
///   from the filter when the filter is only `eq` comparisons joined by `and`, such as
///   `emails[type eq "work"].value`. Entra ID sends this for a user without a work email, and
///   the 400 `noTarget` of RFC 7644 §3.5.2.3 would fail its sync. Other filters that match
///   nothing on `replace` are 400 `noTarget`.
/// - Removing a value that is absent is a no-op, so a repeated member removal succeeds.
/// - A value's `id` equal to the resource's own is ignored, as Okta sends it with every group
///   rename. `meta` and `schemas` keys in a value are ignored because they are read-only.
pub fn apply_patch(resource: &Value, request: &PatchRequest) -> Result<Value, ScimError> {
    let mut patched = resource.clone();
    let Value::Object(root) = &mut patched else {
        return Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!(
                "the resource to patch must be a JSON object, got {}",
                type_name(resource)
            ),
        ));
    };
    for (index, operation) in request.operations.iter().enumerate() {
        apply_operation(root, operation).map_err(|error| in_operation(index, error))?;
    }
    Ok(patched)
}

fn apply_operation(
    root: &mut Map<String, Value>,
    operation: &PatchOperation,
) -> Result<(), ScimError> {
    validate_operation(operation)?;
    let Some(path) = &operation.path else {
        let Some(Value::Object(attributes)) = &operation.value else {
            // validate_operation has rejected a pathless operation without an object value.
            return Ok(());
        };
        return apply_without_path(root, operation.op, attributes);
    };

    reject_read_only(&path.attr)?;
    apply_at_path(root, operation.op, path, operation.value.as_ref())
}

/// Applies each key of a pathless `add` or `replace` value as a path.
fn apply_without_path(
    root: &mut Map<String, Value>,
    op: PatchOpKind,
    attributes: &Map<String, Value>,
) -> Result<(), ScimError> {
    for (key, value) in attributes {
        if key.eq_ignore_ascii_case("schemas") || key.eq_ignore_ascii_case("meta") {
            continue;
        }
        if key.eq_ignore_ascii_case("id") {
            let current_id = get_ignore_case(root, "id");
            if current_id == Some(value) {
                continue;
            }
            return Err(ScimError::bad_request(
                ScimType::Mutability,
                "attribute 'id' is read-only and cannot be changed",
            ));
        }
        let path = PatchPath::parse(key)?;
        reject_read_only(&path.attr)?;
        apply_at_path(root, op, &path, Some(value))?;
    }
    Ok(())
}

/// Rejects a path to `id`, `meta` or `schemas`, which the service provider maintains
/// (RFC 7643 §3.1).
fn reject_read_only(attr: &AttrPath) -> Result<(), ScimError> {
    let read_only = ["id", "meta", "schemas"]
        .iter()
        .any(|name| attr.attribute.eq_ignore_ascii_case(name));
    if attr.is_core() && read_only {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!(
                "attribute '{}' is read-only and cannot be changed",
                attr.attribute
            ),
        ));
    }
    Ok(())
}

/// Checks whether a written value means "unassign" (RFC 7643 §2.5).
fn is_clearing(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(_) => false,
    }
}

fn apply_at_path(
    root: &mut Map<String, Value>,
    op: PatchOpKind,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let writes = op != PatchOpKind::Remove && !is_clearing(value);
    let is_extension_object = is_extension_urn(&path.attr.attribute) && path.attr.schema.is_none();

    if is_extension_object {
        if writes {
            list_schema(root, &path.attr.attribute);
        } else if path.filter.is_none() && path.attr.sub_attribute.is_none() {
            unlist_schema(root, &path.attr.attribute);
        }
    }

    let Some(container) = container_for(root, &path.attr, writes)? else {
        // A remove or clear inside an extension the resource does not have changes nothing.
        return Ok(());
    };
    let value =
        value.map(|value| normalize_value(&path.attr, path.sub_attribute.as_deref(), value));

    match (&path.filter, &path.attr.sub_attribute) {
        (Some(filter), _) => apply_filtered(container, op, path, filter, value.as_ref()),
        (None, Some(sub_attribute)) => apply_sub_attribute(
            container,
            op,
            &path.attr.attribute,
            sub_attribute,
            value.as_ref(),
        ),
        (None, None) => apply_attribute(container, op, &path.attr.attribute, value.as_ref()),
    }
}

/// Checks whether `name` is the URN of a schema extension rather than an attribute name.
fn is_extension_urn(name: &str) -> bool {
    name.contains(':')
        && !USER_SCHEMA.eq_ignore_ascii_case(name)
        && !GROUP_SCHEMA.eq_ignore_ascii_case(name)
}

/// Returns the object that contains the path's attribute: the resource itself for core
/// attributes, the extension object for URN-prefixed ones. With `create`, a missing extension
/// object is created and its URN added to `schemas`.
fn container_for<'a>(
    root: &'a mut Map<String, Value>,
    attr: &AttrPath,
    create: bool,
) -> Result<Option<&'a mut Map<String, Value>>, ScimError> {
    let Some(schema) = attr.schema.as_deref().filter(|_| !attr.is_core()) else {
        return Ok(Some(root));
    };

    let existing_key = find_key(root, schema).map(str::to_owned);
    let key = match existing_key {
        Some(key) => key,
        None if create => {
            list_schema(root, schema);
            let key = canonical_schema(schema);
            root.insert(key.clone(), Value::Object(Map::new()));
            key
        }
        None => return Ok(None),
    };

    match root.get_mut(&key) {
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(slot @ Value::Null) if create => {
            *slot = Value::Object(Map::new());
            Ok(slot.as_object_mut())
        }
        Some(Value::Null) | None => Ok(None),
        Some(other) => Err(ScimError::invalid_value(format!(
            "attribute '{key}' must be an object, got {}",
            type_name(other)
        ))),
    }
}

fn canonical_schema(schema: &str) -> String {
    if ENTERPRISE_USER_SCHEMA.eq_ignore_ascii_case(schema) {
        ENTERPRISE_USER_SCHEMA.to_owned()
    } else {
        schema.to_owned()
    }
}

/// Adds an extension URN to `schemas` when the resource has a `schemas` array without it.
fn list_schema(root: &mut Map<String, Value>, schema: &str) {
    let Some(Value::Array(schemas)) = find_key(root, "schemas")
        .map(str::to_owned)
        .and_then(|key| root.get_mut(&key))
    else {
        return;
    };
    let listed = schemas.iter().any(|listed| {
        listed
            .as_str()
            .is_some_and(|listed| listed.eq_ignore_ascii_case(schema))
    });
    if !listed {
        schemas.push(Value::from(canonical_schema(schema)));
    }
}

fn unlist_schema(root: &mut Map<String, Value>, schema: &str) {
    let Some(Value::Array(schemas)) = find_key(root, "schemas")
        .map(str::to_owned)
        .and_then(|key| root.get_mut(&key))
    else {
        return;
    };
    schemas.retain(|listed| {
        !listed
            .as_str()
            .is_some_and(|listed| listed.eq_ignore_ascii_case(schema))
    });
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
