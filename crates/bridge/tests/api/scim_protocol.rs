//! SCIM protocol coverage beyond the user lifecycle: groups, filters, paging, projection,
//! `.search`, discovery and concurrent uniqueness.

use serde_json::{Value, json};

use crate::support::{TestApp, okta_user, spawn_app};

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/scim+json");
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

fn user_with(user_name: &str, extra: Value) -> Value {
    let mut body = okta_user(user_name);
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

#[tokio::test]
async fn group_lifecycle_with_members() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let token = app.scim_token(&tenant).await;
    let alice = app
        .scim_create(&tenant, &token, okta_user("alice@acme.example"))
        .await;
    let bob = app
        .scim_create(&tenant, &token, okta_user("bob@acme.example"))
        .await;

    // Entra's create: extra schema URI and client meta are ignored.
    let (status, group) = call(
        &app,
        reqwest::Method::POST,
        "/scim/v2/acme-a/Groups",
        &token,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "grp-1", "displayName": "Sales", "meta": {"resourceType": "Group"}
        })),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["members"], json!([]));
    let id = group["id"].as_str().unwrap().to_owned();

    // Entra adds several members in one operation, with `$ref: null`.
    let (status, patched) = call(&app, reqwest::Method::PATCH, &format!("/scim/v2/acme-a/Groups/{id}"), &token, Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": alice}, {"$ref": null, "value": bob}]}]
    }))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["members"].as_array().unwrap().len(), 2);

    // Okta removes one member by filter and renames in the same request, in order.
    let (status, patched) = call(
        &app,
        reqwest::Method::PATCH,
        &format!("/scim/v2/acme-a/Groups/{id}"),
        &token,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "remove", "path": format!("members[value eq \"{bob}\"]")},
                {"op": "replace", "value": {"id": id, "displayName": "Field Sales"}}
            ]
        })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["displayName"], "Field Sales");
    let members = patched["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{patched}");
    assert_eq!(members[0]["value"], alice.as_str());
    assert_eq!(members[0]["type"], "User");
    assert!(
        members[0]["$ref"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/acme-a/Users/{alice}"))
    );

    let (status, list) = call(&app, reqwest::Method::GET,
        "/scim/v2/acme-a/Groups?excludedAttributes=members&filter=displayName%20eq%20%22field%20sales%22",
        &token, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 1);
    assert!(list["Resources"][0].get("members").is_none(), "{list}");

    let (status, list) = call(
        &app,
        reqwest::Method::GET,
        &format!("/scim/v2/acme-a/Groups?filter=members%5Bvalue%20eq%20%22{alice}%22%5D"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 1);

    let (status, duplicate) = call(&app, reqwest::Method::POST, "/scim/v2/acme-a/Groups", &token,
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "FIELD SALES"}))).await;
    assert_eq!(status, 409);
    assert_eq!(duplicate["scimType"], "uniqueness");

    let (status, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/scim/v2/acme-a/Groups/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        &format!("/scim/v2/acme-a/Groups/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404);

    let events = app
        .owner_count("SELECT count(*) FROM outbox WHERE event_type = 'group_changed'")
        .await;
    assert_eq!(events, 4, "created, members_changed, updated, deleted");
}

#[tokio::test]
async fn other_tenant_member_is_rejected() {
    let Some(app) = spawn_app().await else { return };
    let acme = app.create_tenant("acme-a", "acme").await;
    let globex = app.create_tenant("globex-b", "globex").await;
    let acme_token = app.scim_token(&acme).await;
    let globex_token = app.scim_token(&globex).await;
    let globex_user = app
        .scim_create(&globex, &globex_token, okta_user("erin@globex.example"))
        .await;

    let (status, error) = call(
        &app,
        reqwest::Method::POST,
        "/scim/v2/acme-a/Groups",
        &acme_token,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Sales", "members": [{"value": globex_user}]
        })),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["scimType"], "invalidValue");
    assert_eq!(app.owner_count("SELECT count(*) FROM groups").await, 0);
    assert_eq!(
        app.owner_count("SELECT count(*) FROM group_members").await,
        0
    );
}

#[tokio::test]
async fn filters_cover_the_grammar() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let token = app.scim_token(&tenant).await;
    app.scim_create(&tenant, &token, user_with("bjensen@example.com", json!({
        "title": "Tour Guide", "userType": "Employee",
        "name": {"givenName": "Barbara", "familyName": "O'Malley"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@home.test", "type": "home"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Tours"}
    }))).await;
    app.scim_create(
        &tenant,
        &token,
        user_with(
            "jsmith@example.org",
            json!({"active": false, "userType": "Contractor"}),
        ),
    )
    .await;
    app.scim_create(&tenant, &token, user_with("adoe@example.com", json!({})))
        .await;

    let cases: &[(&str, &[&str])] = &[
        (
            "userName eq \"BJENSEN@example.com\"",
            &["bjensen@example.com"],
        ),
        (
            "userName ne \"bjensen@example.com\"",
            &["adoe@example.com", "jsmith@example.org"],
        ),
        ("name.familyName co \"o'malley\"", &["bjensen@example.com"]),
        ("userName sw \"j\"", &["jsmith@example.org"]),
        (
            "userName ew \".com\"",
            &["adoe@example.com", "bjensen@example.com"],
        ),
        ("title pr", &["bjensen@example.com"]),
        (
            "title pr and userType eq \"Employee\"",
            &["bjensen@example.com"],
        ),
        (
            "userType eq \"Employee\" or userType eq \"Contractor\"",
            &["bjensen@example.com", "jsmith@example.org"],
        ),
        (
            "not (userName sw \"b\")",
            &["adoe@example.com", "jsmith@example.org"],
        ),
        ("active eq false", &["jsmith@example.org"]),
        (
            "emails[type eq \"home\" and value co \"babs\"]",
            &["bjensen@example.com"],
        ),
        (
            "emails[type eq \"work\"].value eq \"bjensen@example.com\"",
            &["bjensen@example.com"],
        ),
        ("emails co \"home.test\"", &["bjensen@example.com"]),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"tours\"",
            &["bjensen@example.com"],
        ),
        (
            "meta.created gt \"2000-01-01T00:00:00Z\" and userName sw \"a\"",
            &["adoe@example.com"],
        ),
        ("EXTERNALID eq \"00ujsmith\"", &["jsmith@example.org"]),
        ("userName eq \"nobody@example.com\"", &[]),
    ];
    for (filter, expected) in cases {
        let (status, list) = call(
            &app,
            reqwest::Method::GET,
            &format!(
                "/scim/v2/acme-a/Users?sortBy=userName&filter={}",
                urlencode(filter)
            ),
            &token,
            None,
        )
        .await;
        assert_eq!(status, 200, "{filter}: {list}");
        let names: Vec<&str> = list["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|user| user["userName"].as_str().unwrap())
            .collect();
        assert_eq!(&names, expected, "{filter}");
        assert_eq!(list["totalResults"], expected.len(), "{filter}");
    }

    for bad in [
        "userName eq",
        "shoeSize gt 3",
        "userName xx \"a\"",
        "active eq \"yes\"",
        "((userName eq \"a\")",
    ] {
        let (status, error) = call(
            &app,
            reqwest::Method::GET,
            &format!("/scim/v2/acme-a/Users?filter={}", urlencode(bad)),
            &token,
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(error["scimType"], "invalidFilter", "{bad}: {error}");
    }
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn paging_sorting_and_projection() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let token = app.scim_token(&tenant).await;
    for index in 0..12 {
        app.scim_create(
            &tenant,
            &token,
            okta_user(&format!("user{index:02}@example.com")),
        )
        .await;
    }
    let (status, page) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/Users?startIndex=6&count=5&sortBy=userName",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["totalResults"], 12);
    assert_eq!(page["startIndex"], 6);
    assert_eq!(page["itemsPerPage"], 5);
    assert_eq!(page["Resources"][0]["userName"], "user05@example.com");

    let (_, page) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/Users?count=1&sortBy=userName&sortOrder=descending",
        &token,
        None,
    )
    .await;
    assert_eq!(page["Resources"][0]["userName"], "user11@example.com");

    for (query, total, items) in [
        ("startIndex=0&count=-3", 12, 0),
        ("count=0", 12, 0),
        ("startIndex=50", 12, 0),
        ("count=100000", 12, 12),
    ] {
        let (status, page) = call(
            &app,
            reqwest::Method::GET,
            &format!("/scim/v2/acme-a/Users?{query}"),
            &token,
            None,
        )
        .await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(page["totalResults"], total, "{query}");
        assert_eq!(
            page["Resources"].as_array().unwrap().len(),
            items,
            "{query}"
        );
    }
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/Users?count=many",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 400);

    let (_, page) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/Users?count=1&attributes=userName",
        &token,
        None,
    )
    .await;
    let user = &page["Resources"][0];
    assert!(user["id"].is_string());
    assert!(user["userName"].is_string());
    assert!(user.get("emails").is_none(), "{user}");

    let (status, search) = call(
        &app,
        reqwest::Method::POST,
        "/scim/v2/acme-a/Users/.search",
        &token,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName sw \"user1\"", "startIndex": 1, "count": 10,
            "sortBy": "userName", "attributes": ["userName"]
        })),
    )
    .await;
    assert_eq!(status, 200, "{search}");
    assert_eq!(search["totalResults"], 2);
    assert!(search["Resources"][0].get("name").is_none());
}

#[tokio::test]
async fn discovery_is_truthful() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let token = app.scim_token(&tenant).await;
    let (status, config) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/ServiceProviderConfig",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["bulk"]["supported"], false);
    assert_eq!(config["filter"]["maxResults"], 200);
    let (_, types) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/ResourceTypes",
        &token,
        None,
    )
    .await;
    assert_eq!(types["totalResults"], 2);
    let (_, schemas) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/Schemas",
        &token,
        None,
    )
    .await;
    assert_eq!(schemas["totalResults"], 3);
    let (status, user_schema) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = user_schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"userName"));
    assert!(names.contains(&"emails"));
    let (status, error) = call(
        &app,
        reqwest::Method::POST,
        "/scim/v2/acme-a/Schemas",
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(error["status"], "405");
    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/scim/v2/acme-a/ResourceTypes/Device",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn concurrent_creates_yield_one_user() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let other = app.create_tenant("globex-b", "globex").await;
    let token = app.scim_token(&tenant).await;
    let other_token = app.scim_token(&other).await;
    let mut requests = Vec::new();
    for index in 0..20 {
        let name = if index % 2 == 0 {
            "Race@Example.com"
        } else {
            "race@example.com"
        };
        let request = app
            .http
            .post(app.url("/scim/v2/acme-a/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(okta_user(name).to_string())
            .send();
        requests.push(request);
    }
    let responses = futures::future::join_all(requests).await;
    let statuses: Vec<u16> = responses
        .into_iter()
        .map(|response| response.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|status| **status == 409).count(),
        19,
        "{statuses:?}"
    );
    // The same userName is free in another tenant.
    app.scim_create(&other, &other_token, okta_user("race@example.com"))
        .await;
}
