use chrono::TimeZone;
use serde_json::json;

use super::*;

fn parse(body: &Value) -> UserResource {
    match UserResource::from_json(body) {
        Ok(user) => user,
        Err(error) => panic!("body failed to parse: {error}"),
    }
}

fn parse_error(body: &Value) -> ScimError {
    match UserResource::from_json(body) {
        Ok(user) => panic!("body parsed as {user:?}, expected an error"),
        Err(error) => error,
    }
}

fn sample_meta() -> Meta {
    let created = Utc
        .with_ymd_and_hms(2024, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    Meta {
        resource_type: "User".to_owned(),
        created,
        last_modified: created,
        location: "https://bridge.example.test/scim/v2/t1/Users/u1".to_owned(),
        version: "W/\"3\"".to_owned(),
    }
}

fn okta_create_body() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": "user@example.test",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": true, "value": "user@example.test", "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": "00u1abcd",
        "groups": [],
        "password": "Secret-123",
        "active": true
    })
}

fn entra_create_body() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "userName": "user@example.test",
        "active": "True",
        "displayName": "Ada Lovelace",
        "meta": {"resourceType": "User"},
        "roles": [],
        "emails": [{"primary": true, "type": "work", "value": "user@example.test"}],
        "name": {"formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada"},
        "title": "Engineer",
        ENTERPRISE_USER_SCHEMA: {
            "employeeNumber": "42",
            "department": "Research",
            "manager": {"value": "mgr-1"}
        }
    })
}

#[test]
fn from_json_accepts_okta_create() {
    let user = parse(&okta_create_body());

    assert_eq!(user.user_name, "user@example.test");
    assert_eq!(user.external_id.as_deref(), Some("00u1abcd"));
    assert_eq!(user.active, Some(true));
    assert_eq!(user.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(user.locale.as_deref(), Some("en-US"));
    assert_eq!(user.password.as_deref(), Some("Secret-123"));
    assert_eq!(
        user.name
            .as_ref()
            .and_then(|name| name.given_name.as_deref()),
        Some("Ada")
    );
    assert_eq!(
        user.emails,
        vec![MultiValue {
            value: "user@example.test".to_owned(),
            kind: Some("work".to_owned()),
            primary: true,
            display: None,
        }]
    );
    assert_eq!(user.enterprise, None);
}

#[test]
fn from_json_accepts_entra_create() {
    let user = parse(&entra_create_body());

    assert_eq!(user.active, Some(true));
    assert!(user.roles.is_empty());
    assert_eq!(user.title.as_deref(), Some("Engineer"));
    let enterprise = user.enterprise.unwrap_or_default();
    assert_eq!(enterprise.employee_number.as_deref(), Some("42"));
    assert_eq!(enterprise.department.as_deref(), Some("Research"));
    assert_eq!(
        enterprise
            .manager
            .and_then(|manager| manager.value)
            .as_deref(),
        Some("mgr-1")
    );
}

#[test]
fn from_json_accepts_string_booleans() {
    let body = json!({"schemas": [USER_SCHEMA], "userName": "a", "active": "False",
        "emails": [{"value": "a@example.test", "primary": "TRUE"}]});

    let user = parse(&body);

    assert_eq!(user.active, Some(false));
    assert!(user.emails.first().is_some_and(|email| email.primary));
}

#[test]
fn from_json_leaves_missing_active_unassigned() {
    let absent = parse(&json!({"schemas": [USER_SCHEMA], "userName": "a"}));
    assert_eq!(absent.active, None);
    assert!(absent.is_active());
    let null = parse(&json!({"schemas": [USER_SCHEMA], "userName": "a", "active": null}));
    assert_eq!(null.active, None);
    assert!(null.is_active());
}

#[test]
fn from_json_ignores_attribute_case() {
    let body = json!({
        "Schemas": [USER_SCHEMA],
        "USERNAME": "user@example.test",
        "Active": false,
        "Emails": [{"Value": "user@example.test", "Type": "work", "Primary": true}],
        "NAME": {"GivenName": "Ada"},
        ENTERPRISE_USER_SCHEMA: {"Department": "Research", "Manager": {"Value": "mgr-1"}}
    });

    let user = parse(&body);

    assert_eq!(user.user_name, "user@example.test");
    assert_eq!(user.active, Some(false));
    assert_eq!(user.primary_email(), Some("user@example.test"));
    assert_eq!(
        user.emails.first().and_then(|email| email.kind.as_deref()),
        Some("work")
    );
    assert_eq!(
        user.name.and_then(|name| name.given_name).as_deref(),
        Some("Ada")
    );
    let enterprise = user.enterprise.unwrap_or_default();
    assert_eq!(enterprise.department.as_deref(), Some("Research"));
    assert_eq!(
        enterprise
            .manager
            .and_then(|manager| manager.value)
            .as_deref(),
        Some("mgr-1")
    );
}

#[test]
fn from_json_reads_urn_prefixed_keys() {
    let body = json!({
        "schemas": [USER_SCHEMA],
        "urn:ietf:params:scim:schemas:core:2.0:User:userName": "user@example.test",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
        "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:manager": "mgr-2"
    });

    let user = parse(&body);

    assert_eq!(user.user_name, "user@example.test");
    let enterprise = user.enterprise.unwrap_or_default();
    assert_eq!(enterprise.employee_number.as_deref(), Some("42"));
    assert_eq!(
        enterprise
            .manager
            .and_then(|manager| manager.value)
            .as_deref(),
        Some("mgr-2")
    );
}

#[test]
fn from_json_prefers_extension_object_over_prefixed_key() {
    let body = json!({
        "schemas": [USER_SCHEMA],
        "userName": "a",
        ENTERPRISE_USER_SCHEMA: {"department": "Inside"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Outside",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division": "Outside"
    });

    let enterprise = parse(&body).enterprise.unwrap_or_default();

    assert_eq!(enterprise.department.as_deref(), Some("Inside"));
    assert_eq!(enterprise.division.as_deref(), Some("Outside"));
}

#[test]
fn from_json_accepts_manager_as_bare_id() {
    let body = json!({"schemas": [USER_SCHEMA], "userName": "a", ENTERPRISE_USER_SCHEMA: {"manager": "mgr-3"}});

    let manager = parse(&body)
        .enterprise
        .and_then(|enterprise| enterprise.manager);

    assert_eq!(
        manager,
        Some(Manager {
            value: Some("mgr-3".to_owned()),
            display_name: None
        })
    );
}

#[test]
fn from_json_treats_empty_values_as_unassigned() {
    let body = json!({
        "schemas": [USER_SCHEMA],
        "userName": "a",
        "title": "",
        "displayName": null,
        "name": {"givenName": ""},
        "phoneNumbers": [{"type": "work", "value": ""}],
        ENTERPRISE_USER_SCHEMA: {"manager": {"value": ""}, "department": null}
    });

    let user = parse(&body);

    assert_eq!(user.title, None);
    assert_eq!(user.display_name, None);
    assert_eq!(user.name, None);
    assert!(user.phone_numbers.is_empty());
    assert_eq!(user.enterprise, None);
}

#[test]
fn from_json_trims_user_name() {
    assert_eq!(
        parse(&json!({"schemas": [USER_SCHEMA], "userName": "  a@example.test "})).user_name,
        "a@example.test"
    );
}

#[test]
fn from_json_ignores_read_only_and_unknown_attributes() {
    let body = json!({
        "schemas": [USER_SCHEMA, "urn:example:custom"],
        "id": "client-chosen",
        "userName": "a",
        "groups": [{"value": "g1"}],
        "meta": {"resourceType": "User"},
        "favoriteColor": "green"
    });

    assert_eq!(parse(&body).user_name, "a");
}

#[test]
fn from_json_keeps_only_first_primary() {
    let body = json!({"schemas": [USER_SCHEMA], "userName": "a", "emails": [
        {"value": "one@example.test", "primary": true},
        {"value": "two@example.test", "primary": true}
    ]});

    let primaries: Vec<bool> = parse(&body)
        .emails
        .iter()
        .map(|email| email.primary)
        .collect();

    assert_eq!(primaries, vec![true, false]);
}

#[test]
fn from_json_requires_user_name() {
    for body in [
        json!({"schemas": [USER_SCHEMA]}),
        json!({"schemas": [USER_SCHEMA], "userName": null}),
        json!({"schemas": [USER_SCHEMA], "userName": "   "}),
    ] {
        let error = parse_error(&body);
        assert_eq!(error.status, 400);
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert_eq!(error.detail, "attribute 'userName' is required");
    }
}

#[test]
fn from_json_requires_user_schema() {
    for body in [
        json!({"userName": "a"}),
        json!({"schemas": [], "userName": "a"}),
        json!({"schemas": USER_SCHEMA, "userName": "a"}),
        json!({"schemas": [crate::GROUP_SCHEMA], "userName": "a"}),
    ] {
        let error = parse_error(&body);
        assert_eq!(
            error.scim_type,
            Some(ScimType::InvalidSyntax),
            "body {body}"
        );
    }
}

#[test]
fn from_json_accepts_schema_urn_in_any_case() {
    let body = json!({"schemas": ["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"], "userName": "a"});

    assert_eq!(parse(&body).user_name, "a");
}

#[test]
fn from_json_rejects_wrong_types() {
    let cases = [
        (
            json!({"userName": 42}),
            "attribute 'userName' must be a string, got a number",
        ),
        (
            json!({"userName": "a", "emails": {"value": "a@example.test"}}),
            "attribute 'emails' must be an array, got an object",
        ),
        (
            json!({"userName": "a", "emails": ["a@example.test"]}),
            "attribute 'emails[0]' must be an object, got a string",
        ),
        (
            json!({"userName": "a", "emails": [{"value": 1}]}),
            "attribute 'emails[0].value' must be a string, got a number",
        ),
        (
            json!({"userName": "a", "emails": [{"value": "x", "primary": "yes"}]}),
            "attribute 'emails[0].primary' must be a boolean, got a string",
        ),
        (
            json!({"userName": "a", "active": "maybe"}),
            "attribute 'active' must be a boolean, got a string",
        ),
        (
            json!({"userName": "a", "active": 1}),
            "attribute 'active' must be a boolean, got a number",
        ),
        (
            json!({"userName": "a", "name": "Ada"}),
            "attribute 'name' must be an object, got a string",
        ),
        (
            json!({"userName": "a", "name": {"givenName": []}}),
            "attribute 'name.givenName' must be a string, got an array",
        ),
        (
            json!({"userName": "a", "title": true}),
            "attribute 'title' must be a string, got a boolean",
        ),
        (
            json!({"userName": "a", ENTERPRISE_USER_SCHEMA: "x"}),
            "must be an object, got a string",
        ),
        (
            json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"manager": 5}}),
            "attribute 'manager' must be an object or a string, got a number",
        ),
        (
            json!({"userName": "a", ENTERPRISE_USER_SCHEMA: {"costCenter": 5}}),
            "attribute 'costCenter' must be a string, got a number",
        ),
    ];
    for (mut body, expected_detail) in cases {
        if let Some(object) = body.as_object_mut() {
            object.insert("schemas".to_owned(), json!([USER_SCHEMA]));
        }
        let error = parse_error(&body);
        assert_eq!(error.status, 400, "body {body}");
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "body {body}");
        assert!(
            error.detail.contains(expected_detail),
            "body {body}: detail {:?}",
            error.detail
        );
    }
}

#[test]
fn from_json_rejects_non_object_body() {
    let error = parse_error(&json!([1, 2]));

    assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
}

#[test]
fn to_json_renders_full_representation() {
    let user = parse(&entra_create_body());

    let rendered = user.to_json("u1", &sample_meta());

    assert_eq!(
        rendered["schemas"],
        json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
    );
    assert_eq!(rendered["id"], json!("u1"));
    assert_eq!(rendered["userName"], json!("user@example.test"));
    assert_eq!(rendered["active"], json!(true));
    assert_eq!(
        rendered["emails"],
        json!([{"value": "user@example.test", "type": "work", "primary": true}])
    );
    assert_eq!(rendered["name"]["familyName"], json!("Lovelace"));
    assert_eq!(
        rendered[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "mgr-1"})
    );
    assert_eq!(rendered["meta"]["resourceType"], json!("User"));
    assert_eq!(
        rendered["meta"]["created"],
        json!("2024-01-02T03:04:05.000Z")
    );
    assert_eq!(rendered["meta"]["version"], json!("W/\"3\""));
    assert!(rendered.get("roles").is_none());
}

#[test]
fn to_json_never_includes_password() {
    let user = parse(&okta_create_body());

    let rendered = user.to_json("u1", &sample_meta());

    assert!(!rendered.to_string().contains("Secret-123"));
    assert_eq!(rendered["schemas"], json!([USER_SCHEMA]));
}

#[test]
fn debug_redacts_password() {
    let user = parse(&okta_create_body());

    let debug = format!("{user:?}");

    assert!(!debug.contains("Secret-123"));
    assert!(debug.contains("<redacted>"));
}

#[test]
fn to_json_round_trips_through_from_json() {
    let user = parse(&entra_create_body());

    let reparsed = parse(&user.to_json("u1", &sample_meta()));

    assert_eq!(reparsed, user);
}

#[test]
fn primary_email_prefers_primary_then_work_then_first() {
    let email = |value: &str, kind: Option<&str>, primary: bool| MultiValue {
        value: value.to_owned(),
        kind: kind.map(str::to_owned),
        primary,
        display: None,
    };
    let mut user = UserResource {
        user_name: "a".to_owned(),
        ..UserResource::default()
    };
    assert_eq!(user.primary_email(), None);

    user.emails = vec![
        email("home@x", Some("home"), false),
        email("other@x", None, false),
    ];
    assert_eq!(user.primary_email(), Some("home@x"));

    user.emails.push(email("work@x", Some("Work"), false));
    assert_eq!(user.primary_email(), Some("work@x"));

    user.emails.push(email("main@x", Some("home"), true));
    assert_eq!(user.primary_email(), Some("main@x"));
}
