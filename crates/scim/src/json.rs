//! Helpers for reading SCIM JSON, where attribute names are case-insensitive (RFC 7643 §2.1).

use serde_json::{Map, Value};

/// Reads a boolean sent either as a JSON boolean or as the string `"true"` or `"false"` in any
/// case and with surrounding whitespace. Entra ID sends `"True"` and `"False"` for booleans
/// unless the application opts in to its newer SCIM behaviour. Returns `None` for anything else.
pub fn parse_bool_lenient(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => {
            let text = text.trim();
            if text.eq_ignore_ascii_case("true") {
                Some(true)
            } else if text.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Returns the key of `object` that equals `name` ignoring ASCII case, as it is spelled in the
/// object. The first match wins when a client sends the same name in two spellings.
pub(crate) fn find_key<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .map(String::as_str)
}

/// Looks up `name` in `object` ignoring ASCII case.
pub(crate) fn get_ignore_case<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// Returns the JSON type name used in error details.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_bool_lenient_accepts_bools_and_strings() {
        assert_eq!(parse_bool_lenient(&json!(true)), Some(true));
        assert_eq!(parse_bool_lenient(&json!(false)), Some(false));
        assert_eq!(parse_bool_lenient(&json!("True")), Some(true));
        assert_eq!(parse_bool_lenient(&json!("FALSE")), Some(false));
        assert_eq!(parse_bool_lenient(&json!(" false ")), Some(false));
    }

    #[test]
    fn parse_bool_lenient_rejects_other_values() {
        for value in [
            json!("yes"),
            json!(1),
            json!(0),
            json!(null),
            json!([]),
            json!(""),
        ] {
            assert_eq!(parse_bool_lenient(&value), None, "value {value}");
        }
    }

    #[test]
    fn find_key_keeps_existing_spelling() {
        let object = json!({"userName": "a", "Active": true});
        let Some(object) = object.as_object() else {
            panic!("object literal")
        };

        assert_eq!(find_key(object, "ACTIVE"), Some("Active"));
        assert_eq!(find_key(object, "username"), Some("userName"));
        assert_eq!(find_key(object, "title"), None);
    }
}
