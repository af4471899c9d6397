//! Evaluation of a parsed filter against SCIM JSON.

use serde_json::Value;

use super::{AttrPath, CompValue, CompareOp, Filter};
use crate::json::{get_ignore_case, parse_bool_lenient};

impl Filter {
    /// Evaluates the filter against a resource's SCIM JSON.
    ///
    /// A path into a multi-valued attribute matches when any of its values matches (RFC 7644
    /// §3.4.2.2). String comparisons ignore case, the `caseExact: false` default of most User
    /// and Group attributes. Comparing a complex value without a sub-attribute compares its
    /// `value` sub-attribute. `ne` is the negation of `eq`, so it also matches an absent
    /// attribute.
    ///
    /// NOTE: timestamps compare as strings, which orders correctly only when both sides are
    /// RFC 3339 in UTC with the same precision.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::And(left, right) => left.matches(resource) && right.matches(resource),
            Filter::Or(left, right) => left.matches(resource) || right.matches(resource),
            Filter::Not(inner) => !inner.matches(resource),
            Filter::Present(path) => resolve(path, resource).into_iter().any(is_present),
            Filter::Compare {
                path,
                op: CompareOp::Ne,
                value,
            } => !compare_any(&resolve(path, resource), CompareOp::Eq, value),
            Filter::Compare { path, op, value } => {
                compare_any(&resolve(path, resource), *op, value)
            }
            Filter::ValuePath { path, filter } => resolve(path, resource)
                .into_iter()
                .any(|element| filter.matches(element)),
        }
    }
}

/// Collects the values that `path` names in `resource`, flattening multi-valued attributes.
fn resolve<'a>(path: &AttrPath, resource: &'a Value) -> Vec<&'a Value> {
    let Some(object) = resource.as_object() else {
        // Inside a value filter on a multi-valued simple attribute, "value" is the element
        // itself (RFC 7644 §3.4.2.2).
        let names_element = path.schema.is_none()
            && path.sub_attribute.is_none()
            && path.attribute.eq_ignore_ascii_case("value");
        return if names_element && !resource.is_null() {
            vec![resource]
        } else {
            Vec::new()
        };
    };

    let container = if path.is_core() {
        Some(object)
    } else {
        path.schema
            .as_deref()
            .and_then(|schema| get_ignore_case(object, schema))
            .and_then(Value::as_object)
    };
    let Some(attribute) =
        container.and_then(|container| get_ignore_case(container, &path.attribute))
    else {
        return Vec::new();
    };

    let mut values = Vec::new();
    for value in flatten(attribute) {
        match &path.sub_attribute {
            Some(sub_attribute) => {
                let sub_value = value
                    .as_object()
                    .and_then(|object| get_ignore_case(object, sub_attribute));
                values.extend(sub_value.map(flatten).unwrap_or_default());
            }
            None => values.push(value),
        }
    }
    values
}

fn flatten(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(elements) => elements.iter().collect(),
        other => vec![other],
    }
}

/// Checks the `pr` condition: a non-empty value, or a complex value with a non-empty sub-attribute.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(elements) => elements.iter().any(is_present),
        Value::Object(object) => object.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare_any(values: &[&Value], op: CompareOp, expected: &CompValue) -> bool {
    if values.is_empty() {
        return op == CompareOp::Eq && *expected == CompValue::Null;
    }
    values.iter().any(|value| compare(value, op, expected))
}

fn compare(actual: &Value, op: CompareOp, expected: &CompValue) -> bool {
    // A complex value compares through its "value" sub-attribute.
    if let Value::Object(object) = actual {
        return get_ignore_case(object, "value").is_some_and(|value| compare(value, op, expected));
    }

    match (actual, expected) {
        (Value::String(actual), CompValue::String(expected)) => {
            compare_strings(&actual.to_lowercase(), op, &expected.to_lowercase())
        }
        (Value::Number(actual), CompValue::Number(expected)) => {
            match (actual.as_f64(), expected.as_f64()) {
                (Some(actual), Some(expected)) => {
                    compare_ordered(actual.partial_cmp(&expected), op)
                }
                _ => false,
            }
        }
        (actual, CompValue::Bool(expected)) => match parse_bool_lenient(actual) {
            Some(actual) => op == CompareOp::Eq && actual == *expected,
            None => false,
        },
        (Value::Null, CompValue::Null) => op == CompareOp::Eq,
        _ => false,
    }
}

fn compare_strings(actual: &str, op: CompareOp, expected: &str) -> bool {
    match op {
        CompareOp::Co => actual.contains(expected),
        CompareOp::Sw => actual.starts_with(expected),
        CompareOp::Ew => actual.ends_with(expected),
        _ => compare_ordered(Some(actual.cmp(expected)), op),
    }
}

fn compare_ordered(ordering: Option<std::cmp::Ordering>, op: CompareOp) -> bool {
    use std::cmp::Ordering;
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
