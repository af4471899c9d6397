//! Writes of one PATCH operation into a resource: to a whole attribute, to a sub-attribute,
//! or to the values of a multi-valued attribute that a filter selects.

use serde_json::{Map, Value};

use super::{PatchOpKind, PatchPath, is_clearing};
use crate::ENTERPRISE_USER_SCHEMA;
use crate::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::json::{find_key, get_ignore_case, parse_bool_lenient, type_name};
use crate::{ScimError, ScimType};

/// Attributes whose values are booleans, coerced from "True"/"False" strings on write.
const BOOLEAN_ATTRIBUTES: [&str; 2] = ["active", "primary"];

/// Multi-valued attributes of the User and Group schemas (RFC 7643 §4.1.2, §4.2). A single
/// value written to one of them, when absent, becomes a one-element array.
const MULTI_VALUED_ATTRIBUTES: [&str; 10] = [
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    "members",
];

/// Attribute names of the User, Group and Enterprise User schemas. A key created by PATCH gets
/// this spelling when the client wrote the name in another case, so stored JSON stays in the
/// spelling of RFC 7643.
const KNOWN_ATTRIBUTE_NAMES: [&str; 44] = [
    "userName",
    "externalId",
    "name",
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    "members",
    "value",
    "display",
    "type",
    "primary",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
];

/// Returns the key to write `name` under: the existing key with that name in any case, else
/// the RFC 7643 spelling of a known attribute, else `name` as written.
pub(super) fn key_for(object: &Map<String, Value>, name: &str) -> String {
    if let Some(existing) = find_key(object, name) {
        return existing.to_owned();
    }
    let known = KNOWN_ATTRIBUTE_NAMES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name));
    known.map_or_else(|| name.to_owned(), |known| (*known).to_owned())
}

fn is_multi_valued(name: &str) -> bool {
    MULTI_VALUED_ATTRIBUTES
        .iter()
        .any(|known| known.eq_ignore_ascii_case(name))
}

/// Converts what clients send into the stored form: boolean strings in `active` and
/// `primary` become booleans, and a bare manager id becomes `{"value": id}`.
pub(super) fn normalize_value(
    attr: &AttrPath,
    sub_attribute: Option<&str>,
    value: &Value,
) -> Value {
    let target_name = sub_attribute
        .or(attr.sub_attribute.as_deref())
        .unwrap_or(&attr.attribute);
    let mut value = value.clone();

    let is_manager = attr.schema_is(ENTERPRISE_USER_SCHEMA)
        && attr.attribute.eq_ignore_ascii_case("manager")
        && attr.sub_attribute.is_none()
        && sub_attribute.is_none();
    if is_manager && let Value::String(id) = &value {
        if id.is_empty() {
            return value;
        }
        let mut manager = Map::new();
        manager.insert("value".to_owned(), Value::String(id.clone()));
        return Value::Object(manager);
    }

    if BOOLEAN_ATTRIBUTES
        .iter()
        .any(|name| name.eq_ignore_ascii_case(target_name))
        && let Some(flag) = parse_bool_lenient(&value)
    {
        return Value::Bool(flag);
    }
    coerce_nested_booleans(&mut value, 0);
    value
}

/// Coerces boolean strings under `active` and `primary` keys inside objects and arrays. SCIM
/// resources are a few levels deep, so the recursion stops at a small depth.
fn coerce_nested_booleans(value: &mut Value, depth: usize) {
    const MAX_DEPTH: usize = 4;
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Array(elements) => {
            for element in elements {
                coerce_nested_booleans(element, depth + 1);
            }
        }
        Value::Object(object) => {
            for (key, nested) in object.iter_mut() {
                let is_boolean = BOOLEAN_ATTRIBUTES
                    .iter()
                    .any(|name| name.eq_ignore_ascii_case(key));
                match parse_bool_lenient(nested) {
                    Some(flag) if is_boolean => *nested = Value::Bool(flag),
                    _ => coerce_nested_booleans(nested, depth + 1),
                }
            }
        }
        _ => {}
    }
}

/// Drops `null` members of an object about to be stored, such as the `"$ref": null` Entra ID
/// sends with each member.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(_, nested)| !nested.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Writes `source` into `target` key by key. A `null` or `""` member removes that key, the
/// complex-attribute rule of RFC 7644 §3.5.2.3 where unmentioned sub-attributes stay.
fn merge_object(target: &mut Map<String, Value>, source: &Map<String, Value>) {
    for (name, value) in source {
        let key = key_for(target, name);
        if is_clearing(Some(value)) {
            target.remove(&key);
        } else {
            target.insert(key, value.clone());
        }
    }
}

/// Values to add or to remove: the elements of an array value, or the value itself.
fn value_items(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(elements) => elements
            .iter()
            .filter(|element| !element.is_null())
            .map(without_nulls)
            .collect(),
        other => vec![without_nulls(other)],
    }
}

/// Checks whether two values of a multi-valued attribute are the same value. Complex values
/// are the same when their `value` sub-attributes are equal ignoring case and their `type`
/// sub-attributes are too, unless one of them has no type. So adding a member again with a
/// `display` does not duplicate it, and `{"value": id}` in a remove matches a typed member.
fn same_element(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Object(left), Value::Object(right)) => {
            let (Some(left_value), Some(right_value)) = (
                get_ignore_case(left, "value"),
                get_ignore_case(right, "value"),
            ) else {
                return left == right;
            };
            let types_compatible = match (
                get_ignore_case(left, "type"),
                get_ignore_case(right, "type"),
            ) {
                (None | Some(Value::Null), _) | (_, None | Some(Value::Null)) => true,
                (left_type, right_type) => equal_ignoring_case(left_type, right_type),
            };
            equal_ignoring_case(Some(left_value), Some(right_value)) && types_compatible
        }
        (Value::String(left), Value::String(right)) => left.eq_ignore_ascii_case(right),
        (left, right) => left == right,
    }
}

fn equal_ignoring_case(left: Option<&Value>, right: Option<&Value>) -> bool {
    match (left, right) {
        (None | Some(Value::Null), None | Some(Value::Null)) => true,
        (Some(Value::String(left)), Some(Value::String(right))) => left.eq_ignore_ascii_case(right),
        (Some(left), Some(right)) => left == right,
        _ => false,
    }
}

fn is_primary(value: &Value) -> bool {
    value
        .as_object()
        .and_then(|object| get_ignore_case(object, "primary"))
        .and_then(parse_bool_lenient)
        == Some(true)
}

/// Keeps `primary: true` on at most one value (RFC 7643 §2.4). When one of the `written`
/// values is primary it keeps the flag and the others lose it.
fn enforce_single_primary(elements: &mut [Value], written: &[usize]) {
    let Some(&keeper) = written
        .iter()
        .find(|&&index| elements.get(index).is_some_and(is_primary))
    else {
        return;
    };
    for (index, element) in elements.iter_mut().enumerate() {
        if index == keeper || !is_primary(element) {
            continue;
        }
        if let Value::Object(object) = element {
            let key = key_for(object, "primary");
            object.insert(key, Value::Bool(false));
        }
    }
}

/// Appends values to a multi-valued attribute, merging a value that is already there
/// (RFC 7644 §3.5.2.1: an existing value is not added twice). Returns the written indices.
fn append_values(elements: &mut Vec<Value>, items: Vec<Value>) -> Vec<usize> {
    let mut written = Vec::with_capacity(items.len());
    for item in items {
        match elements
            .iter()
            .position(|existing| same_element(existing, &item))
        {
            Some(index) => {
                if let (Some(Value::Object(existing)), Value::Object(item)) =
                    (elements.get_mut(index), &item)
                {
                    merge_object(existing, item);
                }
                written.push(index);
            }
            None => {
                elements.push(item);
                written.push(elements.len() - 1);
            }
        }
    }
    written
}

/// Applies an operation to a whole attribute: `path` is `attr` with no sub-attribute or filter.
pub(super) fn apply_attribute(
    container: &mut Map<String, Value>,
    op: PatchOpKind,
    name: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let key = key_for(container, name);

    if op == PatchOpKind::Remove {
        // Entra ID removes group members with `"path": "members", "value": [{"value": id}]`.
        // Removing the whole attribute there would drop every other member.
        if let (Some(Value::Array(elements)), Some(value)) = (container.get_mut(&key), value)
            && !value.is_null()
        {
            let items = value_items(value);
            elements.retain(|element| !items.iter().any(|item| same_element(element, item)));
            return Ok(());
        }
        container.remove(&key);
        return Ok(());
    }

    let Some(value) = value.filter(|value| !is_clearing(Some(value))) else {
        container.remove(&key);
        return Ok(());
    };

    match (container.get_mut(&key), value) {
        (Some(Value::Array(elements)), value) => {
            let items = value_items(value);
            if op == PatchOpKind::Replace {
                elements.clear();
            }
            let written = append_values(elements, items);
            enforce_single_primary(elements, &written);
        }
        (Some(Value::Object(existing)), Value::Object(source)) => merge_object(existing, source),
        (_, value) if is_multi_valued(name) || value.is_array() => {
            let mut elements = Vec::new();
            let written = append_values(&mut elements, value_items(value));
            enforce_single_primary(&mut elements, &written);
            container.insert(key, Value::Array(elements));
        }
        (_, Value::Object(source)) => {
            let mut object = Map::new();
            merge_object(&mut object, source);
            container.insert(key, Value::Object(object));
        }
        (_, value) => {
            container.insert(key, value.clone());
        }
    }
    Ok(())
}

/// Applies an operation to `attr.sub` with no filter, such as `name.givenName`. On a
/// multi-valued attribute it applies to every value.
pub(super) fn apply_sub_attribute(
    container: &mut Map<String, Value>,
    op: PatchOpKind,
    name: &str,
    sub_attribute: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let key = key_for(container, name);
    let new_value = value.filter(|value| op != PatchOpKind::Remove && !is_clearing(Some(value)));

    let Some(new_value) = new_value else {
        match container.get_mut(&key) {
            Some(Value::Object(object)) => remove_key(object, sub_attribute),
            Some(Value::Array(elements)) => {
                for element in elements.iter_mut().filter_map(Value::as_object_mut) {
                    remove_key(element, sub_attribute);
                }
            }
            _ => {}
        }
        return Ok(());
    };

    match container.get_mut(&key) {
        Some(Value::Object(object)) => {
            set_key(object, sub_attribute, new_value);
        }
        Some(Value::Array(elements)) if !elements.is_empty() => {
            for element in elements.iter_mut() {
                let Value::Object(object) = element else {
                    return Err(no_sub_attributes(name));
                };
                set_key(object, sub_attribute, new_value);
            }
        }
        Some(Value::Array(elements)) => {
            let mut object = Map::new();
            set_key(&mut object, sub_attribute, new_value);
            elements.push(Value::Object(object));
        }
        None | Some(Value::Null) => {
            let mut object = Map::new();
            set_key(&mut object, sub_attribute, new_value);
            let created = if is_multi_valued(name) {
                Value::Array(vec![Value::Object(object)])
            } else {
                Value::Object(object)
            };
            container.insert(key, created);
        }
        Some(_) => return Err(no_sub_attributes(name)),
    }
    Ok(())
}

fn no_sub_attributes(name: &str) -> ScimError {
    ScimError::bad_request(
        ScimType::InvalidPath,
        format!("attribute '{name}' has no sub-attributes"),
    )
}

fn remove_key(object: &mut Map<String, Value>, name: &str) {
    if let Some(key) = find_key(object, name).map(str::to_owned) {
        object.remove(&key);
    }
}

fn set_key(object: &mut Map<String, Value>, name: &str, value: &Value) {
    let key = key_for(object, name);
    object.insert(key, without_nulls(value));
}

/// Applies an operation to `attr[filter]` or `attr[filter].sub`.
pub(super) fn apply_filtered(
    container: &mut Map<String, Value>,
    op: PatchOpKind,
    path: &PatchPath,
    filter: &Filter,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = &path.attr.attribute;
    let key = key_for(container, name);
    let sub_attribute = path.sub_attribute.as_deref();

    let elements = match container.get_mut(&key) {
        Some(Value::Array(elements)) => elements,
        None | Some(Value::Null) => {
            if op == PatchOpKind::Remove || is_clearing(value) {
                return Ok(());
            }
            container.insert(key.clone(), Value::Array(Vec::new()));
            match container.get_mut(&key) {
                Some(Value::Array(elements)) => elements,
                // Unreachable: the array was inserted under this key on the line above.
                _ => return Ok(()),
            }
        }
        Some(other) => {
            return Err(ScimError::bad_request(
                ScimType::InvalidPath,
                format!(
                    "a value filter needs a multi-valued attribute, but '{name}' is {}",
                    type_name(other)
                ),
            ));
        }
    };
    let matched: Vec<usize> = elements
        .iter()
        .enumerate()
        .filter(|(_, element)| filter.matches(element))
        .map(|(index, _)| index)
        .collect();

    let new_value = value.filter(|value| op != PatchOpKind::Remove && !is_clearing(Some(value)));
    let Some(new_value) = new_value else {
        remove_filtered(elements, &matched, sub_attribute);
        return Ok(());
    };

    if matched.is_empty() {
        return append_from_filter(elements, op, path, filter, new_value);
    }

    for &index in &matched {
        let Some(element) = elements.get_mut(index) else {
            continue;
        };
        match (sub_attribute, element, op) {
            (Some(sub_attribute), Value::Object(object), _) => {
                set_key(object, sub_attribute, new_value)
            }
            (Some(_), _, _) => return Err(no_sub_attributes(name)),
            (None, Value::Object(object), PatchOpKind::Add) => {
                let Value::Object(source) = new_value else {
                    return Err(ScimError::invalid_value(format!(
                        "a value added to '{name}[…]' must be an object, got {}",
                        type_name(new_value)
                    )));
                };
                merge_object(object, source);
            }
            (None, element, _) => *element = without_nulls(new_value),
        }
    }
    enforce_single_primary(elements, &matched);
    Ok(())
}

fn remove_filtered(elements: &mut Vec<Value>, matched: &[usize], sub_attribute: Option<&str>) {
    match sub_attribute {
        Some(sub_attribute) => {
            for &index in matched {
                if let Some(Value::Object(object)) = elements.get_mut(index) {
                    remove_key(object, sub_attribute);
                }
            }
        }
        None => {
            let mut index = 0;
            elements.retain(|_| {
                let keep = !matched.contains(&index);
                index += 1;
                keep
            });
        }
    }
}

/// Handles an `add` or `replace` whose filter matched no value: appends a value built from
/// the filter's `eq` comparisons when that is possible, else returns 400 `noTarget` for a
/// replace (RFC 7644 §3.5.2.3) and 400 `invalidValue` for an add.
fn append_from_filter(
    elements: &mut Vec<Value>,
    op: PatchOpKind,
    path: &PatchPath,
    filter: &Filter,
    new_value: &Value,
) -> Result<(), ScimError> {
    let name = &path.attr.attribute;
    let mut element = Map::new();
    let synthesized = collect_equalities(filter, &mut element, 0);

    let written = match (&path.sub_attribute, new_value) {
        (Some(sub_attribute), value) if synthesized => {
            set_key(&mut element, sub_attribute, value);
            true
        }
        (None, Value::Object(source)) if synthesized && op == PatchOpKind::Add => {
            merge_object(&mut element, source);
            true
        }
        _ => false,
    };
    if !written {
        let scim_type = if op == PatchOpKind::Replace {
            ScimType::NoTarget
        } else {
            ScimType::InvalidValue
        };
        return Err(ScimError::bad_request(
            scim_type,
            format!("no value of '{name}' matches the filter in the path"),
        ));
    }

    elements.push(Value::Object(element));
    let index = elements.len() - 1;
    enforce_single_primary(elements, &[index]);
    Ok(())
}

/// Collects `sub eq literal` comparisons joined by `and` into `element`. Returns false when
/// the filter has any other form, because then no single new value is implied.
fn collect_equalities(filter: &Filter, element: &mut Map<String, Value>, depth: usize) -> bool {
    // Filters nest at most MAX_FILTER_DEPTH levels through groups, but `and` chains add one
    // level per term, so the depth is checked here too.
    const MAX_DEPTH: usize = 32;
    if depth > MAX_DEPTH {
        return false;
    }
    match filter {
        Filter::And(left, right) => {
            collect_equalities(left, element, depth + 1)
                && collect_equalities(right, element, depth + 1)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.schema.is_none() && path.sub_attribute.is_none() => {
            let literal = match value {
                CompValue::String(text) => Value::String(text.clone()),
                CompValue::Number(number) => Value::Number(number.clone()),
                CompValue::Bool(flag) => Value::Bool(*flag),
                CompValue::Null => return false,
            };
            set_key(element, &path.attribute, &literal);
            true
        }
        _ => false,
    }
}
