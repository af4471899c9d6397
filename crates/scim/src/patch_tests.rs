use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::UserResource;

const MANAGER_PATH: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";

fn user() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "id": "u1",
        "userName": "user@example.test",
        "active": true,
        "displayName": "Ada Lovelace",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [
            {"value": "user@example.test", "type": "work", "primary": true},
            {"value": "ada@home.example", "type": "home", "primary": false}
        ],
        "meta": {"resourceType": "User", "version": "W/\"1\""}
    })
}

fn group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": "g1",
        "displayName": "Sales",
        "members": [{"value": "u1", "display": "one@example.test"}, {"value": "u2"}]
    })
}

fn request(operations: Value) -> PatchRequest {
    let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations});
    match PatchRequest::from_json(&body) {
        Ok(request) => request,
        Err(error) => panic!("request failed to parse: {error}"),
    }
}

fn patch(resource: &Value, operations: Value) -> Value {
    match apply_patch(resource, &request(operations)) {
        Ok(patched) => patched,
        Err(error) => panic!("patch failed: {error}"),
    }
}

fn patch_error(resource: &Value, operations: Value) -> ScimError {
    match apply_patch(resource, &request(operations)) {
        Ok(patched) => panic!("patch succeeded with {patched}, expected an error"),
        Err(error) => error,
    }
}

fn parse_error(body: Value) -> ScimError {
    match PatchRequest::from_json(&body) {
        Ok(request) => panic!("request parsed as {request:?}, expected an error"),
        Err(error) => error,
    }
}

fn member_ids(resource: &Value) -> Vec<&str> {
    resource["members"]
        .as_array()
        .map(|members| members.iter().filter_map(|m| m["value"].as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn from_json_parses_ops_in_any_case() {
    let parsed = request(json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "REMOVE", "path": "title"},
        {"Op": "add", "Path": "nickName", "Value": "Babs"}
    ]));

    let ops: Vec<PatchOpKind> = parsed
        .operations
        .iter()
        .map(|operation| operation.op)
        .collect();
    assert_eq!(
        ops,
        vec![PatchOpKind::Replace, PatchOpKind::Remove, PatchOpKind::Add]
    );
    assert_eq!(
        parsed
            .operations
            .get(2)
            .and_then(|operation| operation.value.clone()),
        Some(json!("Babs"))
    );
}

#[test]
fn from_json_accepts_operations_key_in_any_case() {
    let body =
        json!({"schemas": [PATCH_OP_SCHEMA], "operations": [{"op": "remove", "path": "title"}]});

    assert_eq!(
        PatchRequest::from_json(&body).map(|request| request.operations.len()),
        Ok(1)
    );
}

#[test]
fn from_json_parses_paths() {
    let parsed = request(json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@example.test"},
        {"op": "remove", "path": "members[value eq \"u1\"]"},
        {"op": "replace", "path": MANAGER_PATH, "value": "m1"},
        {"op": "replace", "path": "name.givenName", "value": "A"}
    ]));
    let paths: Vec<&PatchPath> = parsed
        .operations
        .iter()
        .filter_map(|operation| operation.path.as_ref())
        .collect();

    let Some(&[emails, members, manager, given_name]) = Some(paths.as_slice()) else {
        panic!("expected four paths");
    };
    assert_eq!(emails.attr, AttrPath::new("emails"));
    assert!(emails.filter.is_some());
    assert_eq!(emails.sub_attribute.as_deref(), Some("value"));
    assert_eq!(members.sub_attribute, None);
    assert!(manager.attr.schema_is(ENTERPRISE_USER_SCHEMA));
    assert_eq!(manager.attr.attribute, "manager");
    assert_eq!(given_name.attr.sub_attribute.as_deref(), Some("givenName"));
}

#[test]
fn from_json_requires_patch_schema() {
    let missing =
        parse_error(json!({"Operations": [{"op": "replace", "value": {"active": false}}]}));
    let wrong = parse_error(json!({"schemas": [USER_SCHEMA], "Operations": []}));

    assert_eq!(missing.scim_type, Some(ScimType::InvalidSyntax));
    assert_eq!(wrong.scim_type, Some(ScimType::InvalidSyntax));
}

#[test]
fn from_json_rejects_malformed_operations() {
    let cases = [
        (
            json!({"schemas": [PATCH_OP_SCHEMA]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {}}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ["add"]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"path": "title"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "move", "path": "title"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": 1}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove"}]}),
            ScimType::NoTarget,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": ""}]}),
            ScimType::NoTarget,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": "title"}]}),
            ScimType::InvalidValue,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "value": "x"}]}),
            ScimType::InvalidValue,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": 5, "value": "x"}]}),
            ScimType::InvalidPath,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]}),
            ScimType::InvalidPath,
        ),
        (
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "bad name", "value": "x"}]}),
            ScimType::InvalidPath,
        ),
    ];
    for (body, expected) in cases {
        let error = parse_error(body.clone());
        assert_eq!(error.status, 400, "body {body}");
        assert_eq!(
            error.scim_type,
            Some(expected),
            "body {body}: {}",
            error.detail
        );
    }
}

#[test]
fn from_json_names_failing_operation() {
    let error = parse_error(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [
        {"op": "add", "path": "title", "value": "x"},
        {"op": "remove"}
    ]}));

    assert!(
        error.detail.starts_with("Operations[1]: "),
        "{}",
        error.detail
    );
}

#[test]
fn from_json_limits_operation_count() {
    let operations: Vec<Value> = (0..=MAX_PATCH_OPERATIONS)
        .map(|_| json!({"op": "remove", "path": "title"}))
        .collect();

    let error = parse_error(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations}));

    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn entra_capitalized_replace_deactivates() {
    let patched = patch(
        &user(),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );

    assert_eq!(patched["active"], json!(false));
}

#[test]
fn okta_pathless_replace_deactivates() {
    let patched = patch(
        &user(),
        json!([{"op": "replace", "value": {"active": false}}]),
    );

    assert_eq!(patched["active"], json!(false));
    assert_eq!(patched["userName"], json!("user@example.test"));
}

#[test]
fn pathless_replace_coerces_string_boolean() {
    let patched = patch(
        &user(),
        json!([{"op": "Replace", "value": {"Active": "True"}}]),
    );

    assert_eq!(patched["active"], json!(true));
    assert!(patched.get("Active").is_none());
}

#[test]
fn add_sets_single_valued_attribute() {
    let patched = patch(
        &user(),
        json!([{"op": "Add", "path": "nickName", "value": "Babs"}]),
    );

    assert_eq!(patched["nickName"], json!("Babs"));
}

#[test]
fn write_keeps_existing_key_spelling() {
    let resource = json!({"schemas": [USER_SCHEMA], "userName": "a", "DisplayName": "Old"});

    let patched = patch(
        &resource,
        json!([{"op": "replace", "path": "displayname", "value": "New"}]),
    );

    assert_eq!(patched["DisplayName"], json!("New"));
    assert!(patched.get("displayname").is_none());
}

#[test]
fn new_key_gets_rfc_spelling() {
    let patched = patch(
        &user(),
        json!([{"op": "add", "path": "NICKNAME", "value": "Babs"}]),
    );

    assert_eq!(patched["nickName"], json!("Babs"));
}

#[test]
fn replace_work_email_value_by_filter() {
    let patched = patch(
        &user(),
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.test"}]),
    );

    assert_eq!(patched["emails"][0]["value"], json!("new@example.test"));
    assert_eq!(patched["emails"][0]["type"], json!("work"));
    assert_eq!(patched["emails"][1]["value"], json!("ada@home.example"));
}

#[test]
fn replace_work_email_appends_when_missing() {
    let resource = json!({"schemas": [USER_SCHEMA], "userName": "a"});

    let patched = patch(
        &resource,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@example.test"}]),
    );

    assert_eq!(
        patched["emails"],
        json!([{"type": "work", "value": "a@example.test"}])
    );
}

#[test]
fn replace_unmatched_complex_filter_is_no_target() {
    let error = patch_error(
        &user(),
        json!([{"op": "replace", "path": "emails[value co \"@nowhere\"].type", "value": "other"}]),
    );

    assert_eq!(error.status, 400);
    assert_eq!(error.scim_type, Some(ScimType::NoTarget));
}

#[test]
fn replace_unmatched_member_is_no_target() {
    let error = patch_error(
        &group(),
        json!([{"op": "replace", "path": "members[value eq \"u9\"]", "value": {"value": "u8"}}]),
    );

    assert_eq!(error.scim_type, Some(ScimType::NoTarget));
}

#[test]
fn replace_matched_element_by_filter() {
    let patched = patch(
        &group(),
        json!([{"op": "replace", "path": "members[value eq \"u2\"]", "value": {"value": "u3"}}]),
    );

    assert_eq!(member_ids(&patched), vec!["u1", "u3"]);
}

#[test]
fn set_primary_clears_other_primaries() {
    let patched = patch(
        &user(),
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]),
    );

    assert_eq!(patched["emails"][0]["primary"], json!(false));
    assert_eq!(patched["emails"][1]["primary"], json!(true));
}

#[test]
fn add_primary_email_clears_other_primaries() {
    let patched = patch(
        &user(),
        json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.test", "type": "other", "primary": true}]}]),
    );

    assert_eq!(patched["emails"][0]["primary"], json!(false));
    assert_eq!(patched["emails"][2]["primary"], json!(true));
}

#[test]
fn replace_multi_valued_replaces_all_values() {
    let patched = patch(
        &user(),
        json!([{"op": "replace", "path": "emails", "value": [{"value": "only@example.test", "type": "work"}]}]),
    );

    assert_eq!(
        patched["emails"],
        json!([{"value": "only@example.test", "type": "work"}])
    );
}

#[test]
fn replace_enterprise_attribute_by_urn_path() {
    let patched = patch(
        &user(),
        json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "42"}]),
    );

    assert_eq!(
        patched[ENTERPRISE_USER_SCHEMA]["employeeNumber"],
        json!("42")
    );
    assert_eq!(
        patched["schemas"],
        json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
    );
}

#[test]
fn add_manager_as_bare_id() {
    let patched = patch(
        &user(),
        json!([{"op": "add", "path": MANAGER_PATH, "value": "mgr-1"}]),
    );

    assert_eq!(
        patched[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "mgr-1"})
    );
}

#[test]
fn add_manager_as_object() {
    let patched = patch(
        &user(),
        json!([{"op": "add", "path": MANAGER_PATH, "value": {"value": "mgr-2"}}]),
    );

    assert_eq!(
        patched[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "mgr-2"})
    );
}

#[test]
fn replace_manager_with_empty_string_clears() {
    let with_manager = patch(
        &user(),
        json!([{"op": "add", "path": MANAGER_PATH, "value": "mgr-1"}]),
    );

    for cleared_by in [json!(""), json!(null)] {
        let patched = patch(
            &with_manager,
            json!([{"op": "Replace", "path": MANAGER_PATH, "value": cleared_by}]),
        );
        assert!(
            patched[ENTERPRISE_USER_SCHEMA].get("manager").is_none(),
            "value {cleared_by}"
        );
    }
}

#[test]
fn replace_manager_sub_attribute() {
    let patched = patch(
        &user(),
        json!([{"op": "replace", "path": format!("{MANAGER_PATH}.value"), "value": "mgr-3"}]),
    );

    assert_eq!(
        patched[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": "mgr-3"})
    );
}

#[test]
fn remove_from_absent_extension_is_noop() {
    let patched = patch(&user(), json!([{"op": "remove", "path": MANAGER_PATH}]));

    assert_eq!(patched, user());
}

#[test]
fn remove_extension_object_unlists_schema() {
    let with_extension = patch(
        &user(),
        json!([{"op": "add", "path": MANAGER_PATH, "value": "mgr-1"}]),
    );

    let patched = patch(
        &with_extension,
        json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]),
    );

    assert!(patched.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert_eq!(patched["schemas"], json!([USER_SCHEMA]));
}

#[test]
fn pathless_replace_treats_keys_as_paths() {
    let patched = patch(
        &user(),
        json!([{"op": "replace", "value": {
            "displayName": "X",
            "name.givenName": "A",
            "name.familyName": "B",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42"
        }}]),
    );

    assert_eq!(patched["displayName"], json!("X"));
    assert_eq!(
        patched["name"],
        json!({"givenName": "A", "familyName": "B"})
    );
    assert_eq!(
        patched[ENTERPRISE_USER_SCHEMA]["employeeNumber"],
        json!("42")
    );
    assert!(patched.get("name.givenName").is_none());
}

#[test]
fn pathless_add_merges_extension_object() {
    let patched = patch(
        &user(),
        json!([{"op": "add", "value": {ENTERPRISE_USER_SCHEMA: {"department": "Research", "manager": {"value": "m"}}}}]),
    );

    assert_eq!(
        patched[ENTERPRISE_USER_SCHEMA],
        json!({"department": "Research", "manager": {"value": "m"}})
    );
    assert_eq!(
        patched["schemas"],
        json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
    );
}

#[test]
fn replace_complex_merges_sub_attributes() {
    let patched = patch(
        &user(),
        json!([{"op": "replace", "path": "name", "value": {"givenName": "Augusta"}}]),
    );

    assert_eq!(
        patched["name"],
        json!({"givenName": "Augusta", "familyName": "Lovelace"})
    );
}

#[test]
fn null_update_clears_optional_attribute() {
    let patched = patch(
        &user(),
        json!([
            {"op": "replace", "path": "displayName", "value": null},
            {"op": "replace", "path": "name.familyName", "value": ""}
        ]),
    );

    assert!(patched.get("displayName").is_none());
    assert_eq!(patched["name"], json!({"givenName": "Ada"}));
}

#[test]
fn pathless_replace_ignores_read_only_keys() {
    let patched = patch(
        &group(),
        json!([{"op": "replace", "value": {"id": "g1", "displayName": "Renamed", "meta": {}, "schemas": []}}]),
    );

    assert_eq!(patched["displayName"], json!("Renamed"));
    assert_eq!(patched["schemas"], json!([GROUP_SCHEMA]));
}

#[test]
fn pathless_replace_rejects_other_id() {
    let error = patch_error(
        &group(),
        json!([{"op": "replace", "value": {"id": "other"}}]),
    );

    assert_eq!(error.scim_type, Some(ScimType::Mutability));
}

#[test]
fn path_to_read_only_attribute_is_rejected() {
    for path in ["id", "meta", "meta.version", "schemas"] {
        let error = patch_error(
            &user(),
            json!([{"op": "replace", "path": path, "value": "x"}]),
        );
        assert_eq!(error.scim_type, Some(ScimType::Mutability), "path {path}");
    }
}

#[test]
fn remove_member_by_filter() {
    let patched = patch(
        &group(),
        json!([{"op": "remove", "path": "members[value eq \"u1\"]"}]),
    );

    assert_eq!(member_ids(&patched), vec!["u2"]);
}

#[test]
fn remove_absent_member_is_noop() {
    let patched = patch(
        &group(),
        json!([{"op": "remove", "path": "members[value eq \"u9\"]"}]),
    );

    assert_eq!(patched, group());
}

#[test]
fn remove_members_listed_in_value() {
    let patched = patch(
        &group(),
        json!([{"op": "Remove", "path": "members", "value": [{"value": "u2"}]}]),
    );

    assert_eq!(member_ids(&patched), vec!["u1"]);
}

#[test]
fn remove_member_listed_without_type_matches_typed_member() {
    let resource = json!({"schemas": [GROUP_SCHEMA], "displayName": "Sales",
        "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]});

    let patched = patch(
        &resource,
        json!([{"op": "remove", "path": "members", "value": [{"value": "u1"}]}]),
    );

    assert_eq!(member_ids(&patched), vec!["u2"]);
}

#[test]
fn clearing_filtered_value_of_absent_attribute_is_noop() {
    let resource = json!({"schemas": [USER_SCHEMA], "userName": "a"});

    let patched = patch(
        &resource,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": ""}]),
    );

    assert_eq!(patched, resource);
}

#[test]
fn remove_members_without_value_removes_all() {
    let patched = patch(&group(), json!([{"op": "remove", "path": "members"}]));

    assert!(patched.get("members").is_none());
}

#[test]
fn add_members_ignores_null_ref_and_duplicates() {
    let patched = patch(
        &group(),
        json!([{"op": "Add", "path": "members", "value": [
            {"$ref": null, "value": "u3"},
            {"$ref": null, "value": "u4"},
            {"value": "u1"}
        ]}]),
    );

    assert_eq!(member_ids(&patched), vec!["u1", "u2", "u3", "u4"]);
    assert_eq!(patched["members"][2], json!({"value": "u3"}));
    assert_eq!(patched["members"][0]["display"], json!("one@example.test"));
}

#[test]
fn add_members_to_group_without_members() {
    let resource = json!({"schemas": [GROUP_SCHEMA], "id": "g1", "displayName": "Sales"});

    let patched = patch(
        &resource,
        json!([{"op": "add", "path": "members", "value": {"value": "u1"}}]),
    );

    assert_eq!(patched["members"], json!([{"value": "u1"}]));
}

#[test]
fn okta_membership_change_applies_in_order() {
    let patched = patch(
        &group(),
        json!([
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u5", "display": "five@example.test"}]}
        ]),
    );

    assert_eq!(member_ids(&patched), vec!["u2", "u5"]);
    assert_eq!(patched["members"][1]["display"], json!("five@example.test"));
}

#[test]
fn multiple_operations_are_atomic() {
    let resource = user();
    let parsed = request(json!([
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "emails[type eq \"pager\" or type eq \"fax\"].value", "value": "x"}
    ]));

    let result = apply_patch(&resource, &parsed);

    let error = result.err();
    assert_eq!(
        error.as_ref().and_then(|error| error.scim_type),
        Some(ScimType::NoTarget)
    );
    assert!(error.is_some_and(|error| error.detail.starts_with("Operations[1]: ")));
    assert_eq!(resource["displayName"], json!("Ada Lovelace"));
}

#[test]
fn remove_sub_attribute_by_filter() {
    let patched = patch(
        &user(),
        json!([{"op": "remove", "path": "emails[type eq \"home\"].primary"}]),
    );

    assert!(patched["emails"][1].get("primary").is_none());
    assert_eq!(patched["emails"][0]["primary"], json!(true));
}

#[test]
fn filter_on_single_valued_attribute_is_invalid_path() {
    let error = patch_error(
        &user(),
        json!([{"op": "replace", "path": "displayName[value eq \"x\"]", "value": "y"}]),
    );

    assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
}

#[test]
fn sub_attribute_of_simple_attribute_is_invalid_path() {
    let error = patch_error(
        &user(),
        json!([{"op": "replace", "path": "displayName.value", "value": "y"}]),
    );

    assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
}

#[test]
fn patched_user_validates() {
    let patched = patch(
        &user(),
        json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.test"},
            {"op": "Add", "path": MANAGER_PATH, "value": "mgr-1"}
        ]),
    );

    let validated = UserResource::from_json(&patched);

    let Ok(validated) = validated else {
        panic!("patched user is invalid: {validated:?}");
    };
    assert_eq!(validated.active, Some(false));
    assert_eq!(validated.primary_email(), Some("new@example.test"));
    assert_eq!(
        validated
            .enterprise
            .and_then(|enterprise| enterprise.manager)
            .and_then(|manager| manager.value)
            .as_deref(),
        Some("mgr-1")
    );
}

#[test]
fn apply_patch_rejects_non_object_resource() {
    let result = apply_patch(&json!([]), &request(json!([])));

    assert_eq!(
        result.err().and_then(|error| error.scim_type),
        Some(ScimType::InvalidSyntax)
    );
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z\\[\\]\". :]{0,24}".prop_map(Value::String),
        prop_oneof![Just("True"), Just("false"), Just("work"), Just("u1")].prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 96, 8, |inner| {
        let key = prop_oneof![
            Just("op".to_owned()),
            Just("path".to_owned()),
            Just("value".to_owned()),
            Just("Operations".to_owned()),
            Just("schemas".to_owned()),
            Just("emails".to_owned()),
            Just("members".to_owned()),
            Just("active".to_owned()),
            Just("primary".to_owned()),
            Just(ENTERPRISE_USER_SCHEMA.to_owned()),
            "[a-zA-Z.:]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn arbitrary_operation() -> impl Strategy<Value = Value> {
    let op = prop_oneof![Just("add"), Just("Replace"), Just("REMOVE"), Just("copy")];
    let path = prop_oneof![
        Just(Value::Null),
        Just(json!("active")),
        Just(json!("emails")),
        Just(json!("emails[type eq \"work\"].value")),
        Just(json!("emails[type eq \"work\"]")),
        Just(json!("members[value eq \"u1\"]")),
        Just(json!("name.givenName")),
        Just(json!(MANAGER_PATH)),
        Just(json!(ENTERPRISE_USER_SCHEMA)),
        "[a-zA-Z.:\\[\\]\" ]{0,30}".prop_map(Value::String),
    ];
    (op, path, arbitrary_json())
        .prop_map(|(op, path, value)| json!({"op": op, "path": path, "value": value}))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn patch_request_never_panics_on_arbitrary_json(body in arbitrary_json(), resource in arbitrary_json()) {
        if let Ok(parsed) = PatchRequest::from_json(&body) {
            let _ = apply_patch(&resource, &parsed);
        }
    }

    #[test]
    fn apply_patch_never_panics_on_arbitrary_operations(operations in prop::collection::vec(arbitrary_json(), 0..6)) {
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations});
        if let Ok(parsed) = PatchRequest::from_json(&body) {
            let _ = apply_patch(&user(), &parsed);
            let _ = apply_patch(&group(), &parsed);
        }
    }

    #[test]
    fn apply_patch_never_panics_on_generated_operations(
        operations in prop::collection::vec(arbitrary_operation(), 0..8),
        use_group in any::<bool>(),
    ) {
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations});
        let resource = if use_group { group() } else { user() };
        if let Ok(parsed) = PatchRequest::from_json(&body)
            && let Ok(patched) = apply_patch(&resource, &parsed)
        {
            let _ = UserResource::from_json(&patched);
        }
    }

    #[test]
    fn patch_request_never_panics_on_arbitrary_text(text in "\\PC{0,2048}") {
        if let Ok(body) = serde_json::from_str::<Value>(&text) {
            let _ = PatchRequest::from_json(&body);
        }
        let path_body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": text, "value": "x"}]});
        if let Ok(parsed) = PatchRequest::from_json(&path_body) {
            let _ = apply_patch(&user(), &parsed);
        }
    }
}
