//! Inputs shared by the fuzz targets.

use serde_json::{Value, json};

/// Returns a stored User resource with every kind of attribute that the PATCH engine and the
/// filter evaluator walk. It has simple, complex and multi-valued attributes (with `primary`)
/// and the enterprise extension.
pub fn sample_user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "userName": "jane.doe@example.com",
        "externalId": "00u1a2b3c4",
        "active": true,
        "displayName": "Jane Doe",
        "name": {"givenName": "Jane", "familyName": "Doe", "formatted": "Jane Doe"},
        "emails": [
            {"value": "jane.doe@example.com", "type": "work", "primary": true},
            {"value": "jane@home.example", "type": "home"}
        ],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
        "roles": [{"value": "manager", "primary": true}],
        "title": "Account Executive",
        "locale": "en-US",
        "timezone": "America/New_York",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "4711",
            "department": "Sales",
            "manager": {"value": "0198c4a2-7e1d-7b3e-9a55-2f7f5b0c1d2e"}
        }
    })
}
