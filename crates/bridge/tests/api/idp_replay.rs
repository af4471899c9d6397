//! Replays the requests that Entra ID, Okta, JumpCloud, Google Workspace and Microsoft's sample
//! tests send, in their exact shape: capitalised ops, string booleans, URN paths, media types.
//! Each test checks the HTTP response, then the stored state through GET and through the owner
//! pool, which reads past row-level security.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, okta_user, spawn_app};

const TENANT: &str = "acme-a";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The media type Entra ID and Okta put on request bodies.
const SCIM_JSON_UTF8: &str = "application/scim+json; charset=utf-8";

/// One HTTP response: status, `Content-Type` and the body parsed as JSON (`Null` when empty).
struct Reply {
    status: u16,
    content_type: Option<String>,
    body: Value,
}

impl Reply {
    /// Asserts the status and that a body, if any, is labelled `application/scim+json`.
    fn assert_status(&self, status: u16, context: &str) {
        assert_eq!(self.status, status, "{context}: {}", self.body);
        if !self.body.is_null() {
            assert_eq!(
                self.content_type.as_deref(),
                Some("application/scim+json"),
                "{context}: content type"
            );
        }
    }

    /// Asserts a SCIM error (RFC 7644 §3.12): the error schema, `status` as a string, and
    /// `scimType` when one is expected (absent otherwise).
    fn assert_error(&self, status: u16, scim_type: Option<&str>, context: &str) {
        self.assert_status(status, context);
        assert_eq!(self.body["schemas"], json!([ERROR_SCHEMA]), "{context}");
        assert_eq!(self.body["status"], json!(status.to_string()), "{context}");
        assert!(
            self.body["detail"]
                .as_str()
                .is_some_and(|detail| !detail.is_empty()),
            "{context}: detail missing in {}",
            self.body
        );
        match scim_type {
            Some(scim_type) => assert_eq!(self.body["scimType"], scim_type, "{context}"),
            None => assert!(self.body.get("scimType").is_none(), "{context}"),
        }
    }

    /// Asserts a 200 ListResponse with integer counters and returns its resources.
    fn assert_list(&self, total: u64, context: &str) -> Vec<Value> {
        self.assert_status(200, context);
        assert_eq!(self.body["schemas"], json!([LIST_SCHEMA]), "{context}");
        assert_eq!(self.body["totalResults"].as_u64(), Some(total), "{context}");
        let resources = self.body["Resources"]
            .as_array()
            .unwrap_or_else(|| panic!("{context}: Resources missing in {}", self.body))
            .clone();
        assert_eq!(
            self.body["itemsPerPage"].as_u64(),
            Some(resources.len() as u64),
            "{context}"
        );
        assert!(self.body["startIndex"].is_u64(), "{context}");
        resources
    }
}

/// The client side of an identity provider: a running service, one tenant and its SCIM token.
struct IdpClient {
    app: TestApp,
    token: String,
}

impl IdpClient {
    async fn start() -> Option<IdpClient> {
        let app = spawn_app().await?;
        let tenant = app.create_tenant(TENANT, "acme").await;
        let token = app.scim_token(&tenant).await;
        Some(IdpClient { app, token })
    }

    fn url(&self, path: &str) -> String {
        self.app.url(&format!("/scim/v2/{TENANT}{path}"))
    }

    /// Sends `request` as is and reads the response.
    async fn execute(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("send request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|value| value.to_str().expect("ASCII content type").to_owned());
        let text = response.text().await.expect("read body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
        };
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// Sends a request under the tenant's SCIM base with the headers Entra ID and Okta send.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self
            .app
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .header("accept", "application/scim+json");
        if let Some(body) = body {
            request = request
                .header("content-type", SCIM_JSON_UTF8)
                .body(body.to_string());
        }
        self.execute(request).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    /// Sends a PatchOp with `operations` exactly as given.
    async fn patch(&self, path: &str, operations: Value) -> Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": operations});
        self.send(Method::PATCH, path, Some(&body)).await
    }

    async fn create_user(&self, body: Value) -> String {
        let reply = self.send(Method::POST, "/Users", Some(&body)).await;
        reply.assert_status(201, "create user");
        reply.body["id"]
            .as_str()
            .expect("created user has a string id")
            .to_owned()
    }

    /// Creates a user with only the attributes given besides `schemas` and `userName`.
    async fn create_plain_user(&self, user_name: &str, extra: Value) -> String {
        let mut body = json!({"schemas": [USER_SCHEMA], "userName": user_name});
        for (key, value) in extra.as_object().expect("object of attributes") {
            body[key] = value.clone();
        }
        self.create_user(body).await
    }

    async fn create_group(&self, display_name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        let body =
            json!({"schemas": [GROUP_SCHEMA], "displayName": display_name, "members": members});
        let reply = self.send(Method::POST, "/Groups", Some(&body)).await;
        reply.assert_status(201, "create group");
        reply.body["id"]
            .as_str()
            .expect("created group has a string id")
            .to_owned()
    }

    /// Reads the stored `users.resource` of one user past row-level security.
    async fn stored_resource(&self, user_id: &str) -> Value {
        sqlx::query_scalar("SELECT resource FROM users WHERE user_id = $1::uuid")
            .bind(user_id)
            .fetch_one(&self.app.db.owner)
            .await
            .expect("stored user")
    }

    async fn stored_active(&self, user_id: &str) -> bool {
        sqlx::query_scalar("SELECT active FROM users WHERE user_id = $1::uuid")
            .bind(user_id)
            .fetch_one(&self.app.db.owner)
            .await
            .expect("stored user")
    }

    /// Runs `sql` with `id` bound to `$1` on the owner pool and returns its one text column.
    async fn stored_text(&self, sql: &str, id: &str) -> Option<String> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(id)
            .fetch_one(&self.app.db.owner)
            .await
            .expect("stored value")
    }

    /// Reads the stored member ids of a group, sorted.
    async fn stored_members(&self, group_id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT user_id::text FROM group_members WHERE group_id = $1::uuid ORDER BY user_id",
        )
        .bind(group_id)
        .fetch_all(&self.app.db.owner)
        .await
        .expect("stored members")
    }
}

/// Percent-encodes a query parameter value the way identity providers send filters.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn resource_ids(resources: &[Value]) -> Vec<String> {
    resources
        .iter()
        .map(|resource| resource["id"].as_str().expect("id").to_owned())
        .collect()
}

// Entra ID without the compatibility flag: `Replace` with a capital R and `"False"` as a string.
#[tokio::test]
async fn entra_capitalized_replace_deactivates() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let id = idp.create_user(okta_user("alice@acme.example")).await;

    let reply = idp
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
    reply.assert_status(200, "PATCH Replace active");
    assert_eq!(reply.body["active"], json!(false));

    let fetched = idp.get(&format!("/Users/{id}")).await;
    fetched.assert_status(200, "GET after deactivation");
    assert_eq!(fetched.body["active"], json!(false));
    assert!(!idp.stored_active(&id).await);
    // The string was coerced, not stored verbatim.
    assert_eq!(idp.stored_resource(&id).await["active"], json!(false));
}

// Entra ID sets a single-valued core attribute with a capitalised `Add`.
#[tokio::test]
async fn entra_capitalized_add_sets_attribute() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let id = idp.create_user(okta_user("barbara@acme.example")).await;

    let reply = idp
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Add", "path": "title", "value": "Tour Guide"}]),
        )
        .await;
    reply.assert_status(200, "PATCH Add title");
    assert_eq!(reply.body["title"], "Tour Guide");

    let fetched = idp.get(&format!("/Users/{id}")).await;
    fetched.assert_status(200, "GET after Add");
    assert_eq!(fetched.body["title"], "Tour Guide");
    assert_eq!(idp.stored_resource(&id).await["title"], "Tour Guide");
}

// Entra ID adds `nickName`, a core User attribute (RFC 7643 §4.1.1), with a capitalised `Add`.
#[tokio::test]
async fn entra_capitalized_add_sets_nick_name() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let id = idp.create_user(okta_user("barbara@acme.example")).await;

    let reply = idp
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Add", "path": "nickName", "value": "Babs"}]),
        )
        .await;
    reply.assert_status(200, "PATCH Add nickName");
    assert_eq!(reply.body["nickName"], "Babs");

    let fetched = idp.get(&format!("/Users/{id}")).await;
    assert_eq!(fetched.body["nickName"], "Babs");
    assert_eq!(idp.stored_resource(&id).await["nickName"], "Babs");
}

// Entra ID replaces the work email through a value filter path with a sub-attribute.
#[tokio::test]
async fn entra_work_email_filter_replace() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let without_work = idp
        .create_plain_user(
            "carol@acme.example",
            json!({"emails": [{"type": "home", "value": "carol@home.test"}]}),
        )
        .await;
    let with_work = idp
        .create_plain_user(
            "dave@acme.example",
            json!({"emails": [{"type": "work", "value": "old@acme.example", "primary": true}]}),
        )
        .await;
    let work_email_path = "emails[type eq \"work\"].value";
    let operation =
        |value: &str| json!([{"op": "Replace", "path": work_email_path, "value": value}]);

    let reply = idp
        .patch(
            &format!("/Users/{without_work}"),
            operation("carol@acme.example"),
        )
        .await;
    // RFC 7644 §3.5.2.3 calls for 400 noTarget when no work email exists, but that fails Entra's
    // sync, so the service adds one instead.
    reply.assert_status(200, "work email on a user without one");
    let fetched = idp.get(&format!("/Users/{without_work}")).await;
    let emails = fetched.body["emails"].as_array().expect("emails").clone();
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert!(
        emails
            .iter()
            .any(|email| email["type"] == "work" && email["value"] == "carol@acme.example"),
        "{emails:?}"
    );
    assert!(
        emails
            .iter()
            .any(|email| email["type"] == "home" && email["value"] == "carol@home.test"),
        "home email kept: {emails:?}"
    );
    // The work address wins over the home one as the user's address.
    let stored_email = idp
        .stored_text(
            "SELECT email FROM users WHERE user_id = $1::uuid",
            &without_work,
        )
        .await;
    assert_eq!(stored_email.as_deref(), Some("carol@acme.example"));

    let reply = idp
        .patch(
            &format!("/Users/{with_work}"),
            operation("dave@acme.example"),
        )
        .await;
    reply.assert_status(200, "work email on a user with one");
    let emails = reply.body["emails"].as_array().expect("emails").clone();
    assert_eq!(emails.len(), 1, "replaced in place: {emails:?}");
    assert_eq!(emails[0]["value"], "dave@acme.example");
    assert_eq!(emails[0]["primary"], true, "other sub-attributes kept");
    let stored_email = idp
        .stored_text(
            "SELECT email FROM users WHERE user_id = $1::uuid",
            &with_work,
        )
        .await;
    assert_eq!(stored_email.as_deref(), Some("dave@acme.example"));
}

// Entra ID (aadOptscim062020 flag) sends a no-path replace whose keys are attribute paths.
#[tokio::test]
async fn entra_pathless_replace_keys_are_paths() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let id = idp.create_user(okta_user("erin@acme.example")).await;

    let reply = idp
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {
                "displayName": "X",
                "name.givenName": "A",
                "name.familyName": "B",
                format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber"): "42"
            }}]),
        )
        .await;
    reply.assert_status(200, "no-path replace");
    assert_eq!(reply.body["displayName"], "X");
    assert_eq!(reply.body["name"]["givenName"], "A");
    assert_eq!(reply.body["name"]["familyName"], "B");
    assert_eq!(reply.body[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");

    let stored = idp.stored_resource(&id).await;
    assert_eq!(stored["name"]["givenName"], "A");
    assert_eq!(stored["name"]["familyName"], "B");
    assert_eq!(stored[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");
    for literal in [
        "name.givenName",
        "name.familyName",
        &format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber"),
    ] {
        assert!(
            stored.get(literal).is_none(),
            "{literal} stored as a literal key: {stored}"
        );
    }
    let display_name = idp
        .stored_text(
            "SELECT display_name FROM users WHERE user_id = $1::uuid",
            &id,
        )
        .await;
    assert_eq!(display_name.as_deref(), Some("X"));
}

// Entra ID addresses an enterprise extension attribute by its URN-prefixed path.
#[tokio::test]
async fn entra_urn_path_sets_employee_number() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let id = idp.create_user(okta_user("frank@acme.example")).await;
    let employee_number_path = format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber");

    let reply = idp
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": employee_number_path, "value": "42"}]),
        )
        .await;
    reply.assert_status(200, "URN-prefixed replace");
    assert_eq!(reply.body[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");
    assert!(
        reply.body["schemas"]
            .as_array()
            .expect("schemas")
            .contains(&json!(ENTERPRISE_USER_SCHEMA)),
        "{}",
        reply.body
    );

    let fetched = idp.get(&format!("/Users/{id}")).await;
    assert_eq!(fetched.body[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");
    let stored = idp.stored_resource(&id).await;
    assert_eq!(stored[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");
    assert!(
        stored
            .get(format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber"))
            .is_none(),
        "{stored}"
    );
}

// Entra ID assigns a manager as a bare id string, then clears it by replacing it with "".
#[tokio::test]
async fn entra_manager_assign_and_clear() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let manager = idp.create_user(okta_user("grace@acme.example")).await;
    let other_manager = idp.create_user(okta_user("heidi@acme.example")).await;
    let report = idp.create_user(okta_user("ivan@acme.example")).await;
    let manager_path = format!("{ENTERPRISE_USER_SCHEMA}:manager");
    let manager_ref = "SELECT manager_ref FROM users WHERE user_id = $1::uuid";

    let reply = idp
        .patch(
            &format!("/Users/{report}"),
            json!([{"op": "add", "path": manager_path, "value": manager}]),
        )
        .await;
    reply.assert_status(200, "manager as a bare id");
    assert_eq!(
        reply.body[ENTERPRISE_USER_SCHEMA]["manager"]["value"],
        manager.as_str()
    );
    assert_eq!(
        idp.stored_resource(&report).await[ENTERPRISE_USER_SCHEMA]["manager"],
        json!({"value": manager}),
        "stored as an object"
    );
    assert_eq!(
        idp.stored_text(manager_ref, &report).await.as_deref(),
        Some(manager.as_str())
    );

    // Other clients send the RFC 7643 form, `{"value": id}`.
    let reply = idp
        .patch(
            &format!("/Users/{report}"),
            json!([{"op": "replace", "path": manager_path, "value": {"value": other_manager}}]),
        )
        .await;
    reply.assert_status(200, "manager as an object");
    assert_eq!(
        reply.body[ENTERPRISE_USER_SCHEMA]["manager"]["value"],
        other_manager.as_str()
    );
    assert_eq!(
        idp.stored_text(manager_ref, &report).await.as_deref(),
        Some(other_manager.as_str())
    );

    let reply = idp
        .patch(
            &format!("/Users/{report}"),
            json!([{"op": "Replace", "path": manager_path, "value": ""}]),
        )
        .await;
    reply.assert_status(200, "manager cleared with an empty string");
    let fetched = idp.get(&format!("/Users/{report}")).await;
    fetched.assert_status(200, "GET after clearing");
    assert!(
        fetched.body[ENTERPRISE_USER_SCHEMA]
            .get("manager")
            .is_none(),
        "{}",
        fetched.body
    );
    assert_eq!(idp.stored_text(manager_ref, &report).await, None);
    assert!(
        idp.stored_resource(&report).await[ENTERPRISE_USER_SCHEMA]
            .get("manager")
            .is_none()
    );
}

// Entra's null-update check writes "" and null into optional attributes to unassign them.
#[tokio::test]
async fn entra_empty_and_null_values_unassign() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let mut body = okta_user("judy@acme.example");
    body["title"] = json!("Account Executive");
    body[ENTERPRISE_USER_SCHEMA] = json!({"department": "Sales", "costCenter": "CC-1"});
    let id = idp.create_user(body).await;
    let department_path = format!("{ENTERPRISE_USER_SCHEMA}:department");

    let reply = idp
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "title", "value": ""},
                {"op": "Replace", "path": department_path, "value": null},
                {"op": "Replace", "path": "displayName", "value": null}
            ]),
        )
        .await;
    reply.assert_status(200, "null update");

    let fetched = idp.get(&format!("/Users/{id}")).await;
    for name in ["title", "displayName"] {
        assert!(fetched.body.get(name).is_none(), "{name}: {}", fetched.body);
    }
    assert!(
        fetched.body[ENTERPRISE_USER_SCHEMA]
            .get("department")
            .is_none()
    );
    assert_eq!(
        fetched.body[ENTERPRISE_USER_SCHEMA]["costCenter"], "CC-1",
        "untouched attribute kept"
    );
    let stored = idp.stored_resource(&id).await;
    assert!(stored.get("title").is_none(), "{stored}");
    assert!(
        stored[ENTERPRISE_USER_SCHEMA].get("department").is_none(),
        "{stored}"
    );
    let display_name = idp
        .stored_text(
            "SELECT display_name FROM users WHERE user_id = $1::uuid",
            &id,
        )
        .await;
    assert_eq!(display_name, None);
}

// Entra ID and Okta remove a member by filter path, and a repeated removal is a no-op.
#[tokio::test]
async fn member_filter_remove_is_idempotent() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let alice = idp.create_user(okta_user("alice@acme.example")).await;
    let bob = idp.create_user(okta_user("bob@acme.example")).await;
    let group = idp.create_group("Sales", &[&alice, &bob]).await;
    let remove_bob = json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]);

    // RFC 7644 §3.5.2 allows 200 with the group or 204. The service returns 200.
    let reply = idp
        .patch(&format!("/Groups/{group}"), remove_bob.clone())
        .await;
    reply.assert_status(200, "remove by filter");
    assert_eq!(member_ids(&reply.body), vec![alice.clone()]);
    assert_eq!(idp.stored_members(&group).await, vec![alice.clone()]);

    let reply = idp.patch(&format!("/Groups/{group}"), remove_bob).await;
    reply.assert_status(200, "repeated remove by filter");
    assert_eq!(idp.stored_members(&group).await, vec![alice.clone()]);

    let fetched = idp.get(&format!("/Groups/{group}")).await;
    fetched.assert_status(200, "GET group");
    assert_eq!(
        member_ids(&fetched.body),
        vec![alice.clone()],
        "{}",
        fetched.body
    );
    let user_rows = idp.app.owner_count("SELECT count(*) FROM users").await;
    assert_eq!(user_rows, 2, "removing a member keeps the user");
}

fn member_ids(group: &Value) -> Vec<String> {
    let members = group["members"].as_array().cloned().unwrap_or_default();
    sorted(
        members
            .iter()
            .map(|member| {
                member["value"]
                    .as_str()
                    .expect("member has a string value")
                    .to_owned()
            })
            .collect(),
    )
}

// Entra ID adds several members in one capitalised `Add` with `"$ref": null` on each.
#[tokio::test]
async fn entra_multi_member_add_ignores_null_ref() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let alice = idp.create_user(okta_user("alice@acme.example")).await;
    let bob = idp.create_user(okta_user("bob@acme.example")).await;
    let group = idp.create_group("Sales", &[]).await;

    let reply = idp
        .patch(
            &format!("/Groups/{group}"),
            json!([{"op": "Add", "path": "members", "value": [
                {"$ref": null, "value": alice},
                {"$ref": null, "value": bob}
            ]}]),
        )
        .await;
    // Entra advises 204 here, but RFC 7644 §3.5.2 also allows 200 with the resource, and Entra
    // accepts it. The service returns 200 with the group.
    reply.assert_status(200, "multi-member add");
    assert_eq!(
        member_ids(&reply.body),
        sorted(vec![alice.clone(), bob.clone()])
    );

    assert_eq!(
        idp.stored_members(&group).await,
        sorted(vec![alice, bob]),
        "both members stored by one operation"
    );
}

// Entra ID creates a group with its own extra schema URI and a client-sent `meta`.
#[tokio::test]
async fn entra_group_create_ignores_extra_schema() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let body = json!({
        "schemas": [GROUP_SCHEMA,
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Sales",
        "meta": {"resourceType": "Group"}
    });

    let reply = idp.send(Method::POST, "/Groups", Some(&body)).await;
    reply.assert_status(201, "Entra group create");
    assert_eq!(reply.body["members"], json!([]));
    assert_eq!(reply.body["displayName"], "Sales");
    assert_eq!(reply.body["schemas"], json!([GROUP_SCHEMA]));
    let id = reply.body["id"].as_str().expect("id").to_owned();
    let location = reply.body["meta"]["location"].as_str().expect("location");
    assert!(
        location.ends_with(&format!("/scim/v2/{TENANT}/Groups/{id}")),
        "{location}"
    );

    let stored: (String, Option<String>) =
        sqlx::query_as("SELECT display_name, external_id FROM groups WHERE group_id = $1::uuid")
            .bind(&id)
            .fetch_one(&idp.app.db.owner)
            .await
            .unwrap();
    assert_eq!(stored.0, "Sales");
    assert_eq!(
        stored.1.as_deref(),
        Some("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
    );
}

// Entra ID creates a user with a read-only `meta`, an empty `roles` and an enterprise block.
#[tokio::test]
async fn entra_user_create_ignores_meta_and_empty_roles() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let body = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee@acme.example",
        "active": true,
        "displayName": "Test User",
        "emails": [{"primary": true, "type": "work", "value": "Test_User_ab6490ee@acme.example"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Test User", "familyName": "User", "givenName": "Test"},
        "roles": [],
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "1001", "department": "Sales"}
    });

    let reply = idp.send(Method::POST, "/Users", Some(&body)).await;
    reply.assert_status(201, "Entra user create");
    let id = reply.body["id"].as_str().expect("id").to_owned();
    assert_eq!(reply.body["meta"]["resourceType"], "User");
    assert!(reply.body["meta"]["created"].is_string(), "{}", reply.body);
    assert_eq!(reply.body[ENTERPRISE_USER_SCHEMA]["department"], "Sales");
    assert!(reply.body.get("roles").is_none(), "{}", reply.body);

    let stored = idp.stored_resource(&id).await;
    assert!(stored.get("meta").is_none(), "client meta stored: {stored}");
    let role = idp
        .stored_text("SELECT role FROM users WHERE user_id = $1::uuid", &id)
        .await;
    assert_eq!(role, None, "an empty roles list assigns no role");
    let email = idp
        .stored_text("SELECT email FROM users WHERE user_id = $1::uuid", &id)
        .await;
    assert_eq!(email.as_deref(), Some("Test_User_ab6490ee@acme.example"));
}

// Entra ID's Test Connection and matching filters get 200 and a ListResponse, never 404.
#[tokio::test]
async fn entra_match_queries_return_lists() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let random_user_filters = [
        "userName eq \"2bd4c7a1-91c2-4d2b-8f0e-0c5b0d7f1e3a\"",
        "externalId eq \"0e8b7d6c-1234-4cde-9abc-def012345678\"",
        "emails[type eq \"work\"].value eq \"nobody@acme.example\"",
    ];
    for filter in random_user_filters {
        let reply = idp.get(&format!("/Users?filter={}", encode(filter))).await;
        let resources = reply.assert_list(0, filter);
        assert!(resources.is_empty(), "{filter}");
    }
    let reply = idp
        .get(&format!(
            "/Groups?filter={}",
            encode("displayName eq \"7c3f5a52-5b0e-4d55-9d1f-41e6b6f0f1a2\"")
        ))
        .await;
    reply.assert_list(0, "random group");

    let mut body = okta_user("kate@acme.example");
    body["externalId"] = json!("entra-object-1");
    body["emails"] = json!([{"type": "work", "value": "kate.work@acme.example"}]);
    let id = idp.create_user(body).await;
    let matching_filters = [
        "userName eq \"kate@acme.example\"",
        "externalId eq \"entra-object-1\"",
        "emails[type eq \"work\"].value eq \"kate.work@acme.example\"",
        "userName eq \"kate@acme.example\" and externalId eq \"entra-object-1\"",
    ];
    for filter in matching_filters {
        let reply = idp.get(&format!("/Users?filter={}", encode(filter))).await;
        let resources = reply.assert_list(1, filter);
        assert_eq!(resource_ids(&resources), vec![id.clone()], "{filter}");
    }
}

// Entra ID looks a group up by its unique name without the member list.
#[tokio::test]
async fn entra_group_lookup_excludes_members() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let alice = idp.create_user(okta_user("alice@acme.example")).await;
    let group = idp.create_group("Sales", &[&alice]).await;

    let reply = idp
        .get(&format!(
            "/Groups?excludedAttributes=members&filter={}",
            encode("displayName eq \"Sales\"")
        ))
        .await;
    let resources = reply.assert_list(1, "group lookup");
    assert_eq!(resources[0]["id"], group.as_str());
    assert_eq!(resources[0]["displayName"], "Sales");
    assert!(resources[0].get("members").is_none(), "{}", resources[0]);

    // Group names are unique per tenant, ignoring case, so the lookup finds at most one.
    let duplicate = json!({"schemas": [GROUP_SCHEMA], "displayName": "sales"});
    let reply = idp.send(Method::POST, "/Groups", Some(&duplicate)).await;
    reply.assert_error(409, Some("uniqueness"), "duplicate group name");
    assert_eq!(idp.app.owner_count("SELECT count(*) FROM groups").await, 1);
    assert_eq!(
        idp.stored_members(&group).await,
        vec![alice],
        "excluding members from the response leaves them stored"
    );
}

// Entra's pagination check: the second page of five out of eleven users, 1-based.
#[tokio::test]
async fn entra_pagination_is_one_based_and_stable() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let mut created = Vec::new();
    for index in 0..11 {
        created.push(
            idp.create_user(okta_user(&format!("user{index:02}@acme.example")))
                .await,
        );
    }

    let reply = idp.get("/Users?startIndex=6&count=5").await;
    let second_page = reply.assert_list(11, "second page");
    assert_eq!(reply.body["startIndex"], json!(6));
    assert_eq!(reply.body["itemsPerPage"], json!(5));
    assert_eq!(second_page.len(), 5);

    let again = idp.get("/Users?startIndex=6&count=5").await;
    assert_eq!(
        resource_ids(&again.assert_list(11, "second page again")),
        resource_ids(&second_page),
        "same page, same users"
    );

    let mut all_pages = Vec::new();
    for start in [1, 6, 11] {
        let reply = idp.get(&format!("/Users?startIndex={start}&count=5")).await;
        let page = reply.assert_list(11, &format!("page at {start}"));
        assert_eq!(reply.body["startIndex"], json!(start));
        all_pages.extend(resource_ids(&page));
    }
    assert_eq!(all_pages.len(), 11, "{all_pages:?}");
    assert_eq!(
        sorted(all_pages),
        sorted(created),
        "pages neither skip nor repeat users"
    );
}

// Okta's pre-create lookup arrives percent-encoded with startIndex=1 and count=100.
#[tokio::test]
async fn okta_encoded_filter_lookup() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let path = "/Users?filter=userName%20eq%20%22user%40example.test%22&startIndex=1&count=100";

    let reply = idp.get(path).await;
    reply.assert_list(0, "lookup before create");
    assert_eq!(reply.body["startIndex"], json!(1));
    assert_eq!(reply.body["itemsPerPage"], json!(0));

    let id = idp.create_user(okta_user("user@example.test")).await;
    let reply = idp.get(path).await;
    let resources = reply.assert_list(1, "lookup after create");
    assert_eq!(resource_ids(&resources), vec![id]);
    assert_eq!(resources[0]["userName"], "user@example.test");
}

// Okta's username case check: an upper-case lookup must find the user, or the next POST hits 409.
#[tokio::test]
async fn okta_user_name_lookup_ignores_case() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let id = idp.create_user(okta_user("user@example.test")).await;

    let reply = idp
        .get(&format!(
            "/Users?filter={}",
            encode("userName eq \"USER@EXAMPLE.TEST\"")
        ))
        .await;
    let resources = reply.assert_list(1, "upper-case lookup");
    assert_eq!(resource_ids(&resources), vec![id.clone()]);
    assert_eq!(
        resources[0]["userName"], "user@example.test",
        "stored spelling returned"
    );
    let stored = idp
        .stored_text("SELECT user_name FROM users WHERE user_id = $1::uuid", &id)
        .await;
    assert_eq!(stored.as_deref(), Some("user@example.test"));
}

// Okta creates a user with a password, which is accepted but never stored or returned.
#[tokio::test]
async fn okta_create_keeps_no_password() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let password = "Okta-Passw0rd-7f3e91";
    let body = json!({
        "schemas": [USER_SCHEMA],
        "userName": "user@example.test",
        "name": {"givenName": "Ursula", "familyName": "Example"},
        "emails": [{"primary": true, "value": "user@example.test", "type": "work"}],
        "displayName": "Ursula Example",
        "locale": "en-US",
        "externalId": "00u1abcd2EFGH3ijk4l5",
        "groups": [],
        "password": password,
        "active": true
    });

    let reply = idp.send(Method::POST, "/Users", Some(&body)).await;
    reply.assert_status(201, "Okta create");
    let id = reply.body["id"].as_str().expect("id").to_owned();
    assert_eq!(reply.body["userName"], "user@example.test");
    assert_eq!(reply.body["name"]["givenName"], "Ursula");
    assert_eq!(reply.body["emails"][0]["value"], "user@example.test");
    assert_eq!(reply.body["displayName"], "Ursula Example");
    assert_eq!(reply.body["locale"], "en-US");
    assert_eq!(reply.body["externalId"], "00u1abcd2EFGH3ijk4l5");
    assert_eq!(reply.body["active"], true);
    assert!(reply.body.get("password").is_none(), "{}", reply.body);
    assert!(!reply.body.to_string().contains(password));

    let fetched = idp.get(&format!("/Users/{id}")).await;
    fetched.assert_status(200, "GET created user");
    assert!(!fetched.body.to_string().contains(password));

    let stored = idp.stored_resource(&id).await;
    assert!(stored.get("password").is_none(), "{stored}");
    assert!(
        stored.get("groups").is_none(),
        "read-only groups stored: {stored}"
    );
    for table in ["users", "outbox", "jobs"] {
        let rows_with_password: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'"
        )))
        .bind(password)
        .fetch_one(&idp.app.db.owner)
        .await
        .unwrap();
        assert_eq!(rows_with_password, 0, "password found in {table}");
    }
}

// Okta creates a user whose userName exists (in other case) and parses the JSON error.
#[tokio::test]
async fn okta_duplicate_create_conflicts() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    idp.create_user(okta_user("user@example.test")).await;

    for user_name in ["user@example.test", "User@Example.Test"] {
        let reply = idp
            .send(Method::POST, "/Users", Some(&okta_user(user_name)))
            .await;
        reply.assert_error(409, Some("uniqueness"), user_name);
    }
    assert_eq!(idp.app.owner_count("SELECT count(*) FROM users").await, 1);
}

// Okta app-wizard apps deactivate with a full PUT that carries `id`, `meta` and `groups`.
#[tokio::test]
async fn okta_put_replaces_full_user() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let mut body = okta_user("user@example.test");
    body["title"] = json!("Account Executive");
    body[ENTERPRISE_USER_SCHEMA] = json!({"department": "Sales"});
    let id = idp.create_user(body).await;
    let group = idp.create_group("Sales", &[&id]).await;
    let created = idp.get(&format!("/Users/{id}")).await;
    created.assert_status(200, "GET before PUT");

    // The full object Okta sends, without title and enterprise block, so both are cleared.
    let replacement = json!({
        "schemas": [USER_SCHEMA],
        "id": id,
        "userName": "user@example.test",
        "name": {"givenName": "Ursula", "familyName": "Renamed"},
        "emails": [{"primary": true, "value": "user@example.test", "type": "work"}],
        "displayName": "Ursula Renamed",
        "locale": "en-US",
        "externalId": "00uuser",
        "groups": [],
        "password": "Secret-Passw0rd!",
        "active": false,
        "meta": {"resourceType": "User"}
    });
    let reply = idp
        .send(Method::PUT, &format!("/Users/{id}"), Some(&replacement))
        .await;
    reply.assert_status(200, "Okta PUT");
    assert_eq!(reply.body["id"], id.as_str());
    assert_eq!(reply.body["active"], false);
    assert_eq!(reply.body["name"]["familyName"], "Renamed");
    assert!(reply.body.get("title").is_none(), "{}", reply.body);
    assert!(
        reply.body.get(ENTERPRISE_USER_SCHEMA).is_none(),
        "{}",
        reply.body
    );
    assert!(reply.body.get("password").is_none());
    assert_eq!(
        reply.body["meta"]["created"], created.body["meta"]["created"],
        "server-managed creation time kept"
    );
    assert_eq!(reply.body["meta"]["resourceType"], "User");
    assert_ne!(
        reply.body["meta"]["version"],
        created.body["meta"]["version"]
    );

    assert!(!idp.stored_active(&id).await);
    let stored = idp.stored_resource(&id).await;
    assert!(stored.get("title").is_none(), "{stored}");
    assert!(stored.get("id").is_none(), "{stored}");
    assert!(stored.get("meta").is_none(), "{stored}");
    assert!(stored.get("groups").is_none(), "{stored}");
    assert_eq!(
        idp.stored_members(&group).await,
        vec![id.clone()],
        "`groups: []` in a PUT leaves memberships alone"
    );
    assert_eq!(idp.app.owner_count("SELECT count(*) FROM users").await, 1);
}

// Okta integration-network apps deactivate with a replace that has no path.
#[tokio::test]
async fn okta_pathless_replace_deactivates() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let id = idp.create_user(okta_user("user@example.test")).await;

    let reply = idp
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    reply.assert_status(200, "no-path deactivate");
    assert_eq!(reply.body["active"], false);
    assert_eq!(reply.body["userName"], "user@example.test");

    assert!(!idp.stored_active(&id).await);
    let stored = idp.stored_resource(&id).await;
    assert_eq!(stored["active"], false);
    assert_eq!(
        stored["userName"], "user@example.test",
        "other attributes kept"
    );
}

// Okta sends the group's own `id` with its name on every membership change.
#[tokio::test]
async fn okta_group_replace_with_own_id() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let alice = idp.create_user(okta_user("alice@acme.example")).await;
    let group = idp.create_group("Sales", &[&alice]).await;

    let reply = idp
        .patch(
            &format!("/Groups/{group}"),
            json!([{"op": "replace", "value": {"id": group, "displayName": "Sales"}}]),
        )
        .await;
    reply.assert_status(200, "same name with own id");
    assert_eq!(reply.body["id"], group.as_str());
    assert_eq!(reply.body["displayName"], "Sales");

    let reply = idp
        .patch(
            &format!("/Groups/{group}"),
            json!([{"op": "replace", "value": {"id": group, "displayName": "Field Sales"}}]),
        )
        .await;
    reply.assert_status(200, "rename with own id");
    assert_eq!(reply.body["displayName"], "Field Sales");

    let fetched = idp.get(&format!("/Groups/{group}")).await;
    assert_eq!(fetched.body["displayName"], "Field Sales");
    let stored = idp
        .stored_text(
            "SELECT display_name FROM groups WHERE group_id = $1::uuid",
            &group,
        )
        .await;
    assert_eq!(stored.as_deref(), Some("Field Sales"));
    assert_eq!(
        idp.stored_members(&group).await,
        vec![alice],
        "a rename keeps the members"
    );
}

// Okta swaps members with a filtered remove and an add with `display`, in order and atomically.
#[tokio::test]
async fn okta_member_swap_is_ordered_and_atomic() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let first = idp.create_user(okta_user("first@acme.example")).await;
    let second = idp.create_user(okta_user("second@acme.example")).await;
    let group = idp.create_group("Sales", &[&first]).await;

    let reply = idp
        .patch(
            &format!("/Groups/{group}"),
            json!([
                {"op": "remove", "path": format!("members[value eq \"{first}\"]")},
                {"op": "add", "path": "members", "value": [
                    {"value": second, "display": "second@acme.example"}
                ]}
            ]),
        )
        .await;
    reply.assert_status(200, "member swap");
    assert_eq!(member_ids(&reply.body), vec![second.clone()]);
    assert_eq!(idp.stored_members(&group).await, vec![second.clone()]);

    // The second operation names an unknown user, so the first one must not stay applied.
    let unknown = "0190b7a2-0000-7000-8000-000000000000";
    let reply = idp
        .patch(
            &format!("/Groups/{group}"),
            json!([
                {"op": "remove", "path": format!("members[value eq \"{second}\"]")},
                {"op": "add", "path": "members", "value": [{"value": unknown}]}
            ]),
        )
        .await;
    reply.assert_error(400, Some("invalidValue"), "swap to an unknown user");
    assert_eq!(
        idp.stored_members(&group).await,
        vec![second],
        "failed request changed nothing"
    );
}

// Okta sends `application/scim+json; charset=utf-8`, and its spec test `application/json`.
#[tokio::test]
async fn okta_media_types_with_charset() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let content_types = [
        SCIM_JSON_UTF8,
        "application/scim+json",
        "application/json",
        "application/json; charset=utf-8",
    ];
    for (index, content_type) in content_types.iter().enumerate() {
        let user_name = format!("media{index}@acme.example");
        let request = idp
            .app
            .http
            .post(idp.url("/Users"))
            .bearer_auth(&idp.token)
            .header("accept", "application/scim+json")
            .header("content-type", *content_type)
            .body(okta_user(&user_name).to_string());
        let reply = idp.execute(request).await;
        reply.assert_status(201, content_type);
        assert_eq!(reply.body["userName"], user_name.as_str(), "{content_type}");
    }
    assert_eq!(idp.app.owner_count("SELECT count(*) FROM users").await, 4);

    let reply = idp.get("/Users?startIndex=1&count=100").await;
    reply.assert_list(4, "list with Accept: application/scim+json");
}

// Okta's spec test sends a malformed Authorization header and requests an unknown user.
#[tokio::test]
async fn okta_auth_and_not_found_errors() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let request = idp
        .app
        .http
        .post(idp.url("/Users"))
        .header("authorization", "non-token")
        .header("content-type", SCIM_JSON_UTF8)
        .body(okta_user("user@example.test").to_string());
    idp.execute(request)
        .await
        .assert_error(401, None, "non-token POST");
    assert_eq!(
        idp.app.owner_count("SELECT count(*) FROM users").await,
        0,
        "rejected request stored nothing"
    );

    let request = idp
        .app
        .http
        .get(idp.url("/Users?filter=userName%20eq%20%22user%40example.test%22"))
        .header("authorization", "non-token");
    idp.execute(request)
        .await
        .assert_error(401, None, "non-token GET");

    let unknown = "0190b7a2-0000-7000-8000-00000000abcd";
    idp.get(&format!("/Users/{unknown}"))
        .await
        .assert_error(404, None, "unknown user");
    idp.get("/Users/not-a-uuid")
        .await
        .assert_error(404, None, "malformed user id");
}

// JumpCloud's Test Connection creates a user and a group, then deletes both.
#[tokio::test]
async fn jumpcloud_test_connection_cleans_up() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let user = idp
        .create_user(okta_user("jumpcloud.test.user@acme.example"))
        .await;
    let group = idp.create_group("JumpCloud Test Group", &[&user]).await;

    let reply = idp
        .send(Method::DELETE, &format!("/Groups/{group}"), None)
        .await;
    reply.assert_status(204, "DELETE group");
    assert!(reply.body.is_null(), "{}", reply.body);
    idp.get(&format!("/Groups/{group}"))
        .await
        .assert_error(404, None, "GET deleted group");

    let reply = idp
        .send(Method::DELETE, &format!("/Users/{user}"), None)
        .await;
    reply.assert_status(204, "DELETE user");
    idp.get(&format!("/Users/{user}"))
        .await
        .assert_error(404, None, "GET deleted user");

    assert_eq!(idp.app.owner_count("SELECT count(*) FROM users").await, 0);
    assert_eq!(idp.app.owner_count("SELECT count(*) FROM groups").await, 0);
    assert_eq!(
        idp.app
            .owner_count("SELECT count(*) FROM group_members")
            .await,
        0
    );
}

// Google Workspace probes with `count=1` and no `startIndex`, and may deprovision with DELETE.
#[tokio::test]
async fn google_probe_defaults_start_index() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let first = idp.create_user(okta_user("first@acme.example")).await;
    idp.create_user(okta_user("second@acme.example")).await;

    let reply = idp.get("/Users?count=1").await;
    let resources = reply.assert_list(2, "probe");
    assert_eq!(reply.body["startIndex"], json!(1));
    assert_eq!(resources.len(), 1);

    let reply = idp
        .send(Method::DELETE, &format!("/Users/{first}"), None)
        .await;
    reply.assert_status(204, "DELETE");
    idp.get(&format!("/Users/{first}"))
        .await
        .assert_error(404, None, "GET deleted user");
    assert_eq!(idp.app.owner_count("SELECT count(*) FROM users").await, 1);
    idp.get("/Users?count=1")
        .await
        .assert_list(1, "probe after delete");
}

// Microsoft's sample requests spell attribute names in other case, as RFC 7643 §2.1 allows.
#[tokio::test]
async fn attribute_names_ignore_case() {
    let Some(idp) = IdpClient::start().await else {
        return;
    };
    let manager = idp.create_user(okta_user("boss@acme.example")).await;
    let body = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "UserName": "mixed@acme.example",
        "Active": "True",
        "DisplayName": "Mixed Case",
        "Emails": [{"Primary": true, "Type": "work", "Value": "mixed@acme.example"}],
        ENTERPRISE_USER_SCHEMA: {"Department": "Sales", "Manager": {"Value": manager}}
    });

    let reply = idp.send(Method::POST, "/Users", Some(&body)).await;
    reply.assert_status(201, "mixed-case create");
    let id = reply.body["id"].as_str().expect("id").to_owned();
    assert_eq!(reply.body["userName"], "mixed@acme.example");
    assert_eq!(reply.body["active"], true);
    assert_eq!(reply.body["emails"][0]["primary"], true);
    assert_eq!(reply.body["emails"][0]["value"], "mixed@acme.example");
    assert_eq!(reply.body[ENTERPRISE_USER_SCHEMA]["department"], "Sales");
    assert_eq!(
        reply.body[ENTERPRISE_USER_SCHEMA]["manager"]["value"],
        manager.as_str()
    );

    let stored = idp.stored_resource(&id).await;
    assert_eq!(stored["emails"][0]["primary"], true, "{stored}");
    assert_eq!(
        stored[ENTERPRISE_USER_SCHEMA]["department"], "Sales",
        "{stored}"
    );
    let manager_ref = idp
        .stored_text(
            "SELECT manager_ref FROM users WHERE user_id = $1::uuid",
            &id,
        )
        .await;
    assert_eq!(manager_ref.as_deref(), Some(manager.as_str()));
    let display_name = idp
        .stored_text(
            "SELECT display_name FROM users WHERE user_id = $1::uuid",
            &id,
        )
        .await;
    assert_eq!(display_name.as_deref(), Some("Mixed Case"));

    let reply = idp
        .get(&format!(
            "/Users?filter={}",
            encode("DisplayName eq \"Mixed Case\"")
        ))
        .await;
    assert_eq!(
        resource_ids(&reply.assert_list(1, "user filter")),
        vec![id.clone()]
    );

    let reply = idp
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "Title", "value": "Lead"}]),
        )
        .await;
    reply.assert_status(200, "mixed-case PATCH path");
    assert_eq!(reply.body["title"], "Lead");

    let group = idp.create_group("Mixed Group", &[]).await;
    let reply = idp
        .get(&format!(
            "/Groups?filter={}",
            encode("DisplayName eq \"Mixed Group\"")
        ))
        .await;
    assert_eq!(
        resource_ids(&reply.assert_list(1, "group filter")),
        vec![group]
    );
}
