//! Roles and managers feeding the readiness team breakdowns.

use serde_json::{Value, json};

use crate::support::{okta_user, spawn_app};

#[tokio::test]
async fn report_breaks_down_by_manager_and_role() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&tenant).await;
    let token = app.all_scopes_token("acme-a");

    // The manager's role comes from a userType mapping; the reports name her as manager.
    let mut manager = okta_user("carla@acme.example");
    manager["userType"] = json!("Sales Manager");
    let carla = app.scim_create(&tenant, &scim, manager).await;
    let report = |email: &str| {
        let mut body = okta_user(email);
        body["schemas"] = json!([
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ]);
        body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
            json!({"manager": {"value": carla}});
        body
    };
    let alice = app
        .scim_create(&tenant, &scim, report("alice@acme.example"))
        .await;
    let bob = app
        .scim_create(&tenant, &scim, report("bob@acme.example"))
        .await;
    // An admin by SCIM roles, with no manager.
    let mut admin = okta_user("root@acme.example");
    admin["roles"] = json!([{"value": "admin", "primary": true}]);
    app.scim_create(&tenant, &scim, admin).await;

    let response = app
        .http
        .put(app.url("/api/tenants/acme-a/role-mappings"))
        .bearer_auth(&token)
        .json(&json!({"user_types": {"Sales Manager": "manager"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mappings: Value = response.json().await.unwrap();
    assert_eq!(mappings["user_types"], json!({"sales manager": "manager"}));
    let rejected = app
        .http
        .put(app.url("/api/tenants/acme-a/role-mappings"))
        .bearer_auth(&token)
        .json(&json!({"groups": {"Leads": "boss"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 400);

    for (user, score) in [(&alice, 8), (&bob, 4)] {
        let response = app
            .http
            .post(app.url("/api/tenants/acme-a/quiz-results"))
            .bearer_auth(&token)
            .json(
                &json!({"user_id": user, "quiz_id": "q1", "score": score, "max_score": 10,
                          "submitted_at": "2026-11-20T10:00:00Z"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    let report: Value = app
        .http
        .post(app.url("/api/tenants/acme-a/readiness/aggregate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let teams = report["teams"].as_array().unwrap();
    let carla_team = teams
        .iter()
        .find(|team| team["manager_user_id"] == carla.as_str())
        .unwrap_or_else(|| panic!("no team for the manager: {report}"));
    assert_eq!(carla_team["manager_user_name"], "carla@acme.example");
    assert_eq!(carla_team["users"], 2);
    assert_eq!(carla_team["average_score"], 60.0);
    let unmanaged = teams
        .iter()
        .find(|team| team["manager_user_id"].is_null())
        .unwrap();
    assert_eq!(unmanaged["users"], 2, "carla and the admin have no manager");
    assert_eq!(unmanaged["average_score"], Value::Null);

    let roles = report["roles"].as_array().unwrap();
    let role = |name: &str| roles.iter().find(|role| role["role"] == name).cloned();
    assert_eq!(role("manager").unwrap()["users"], 1);
    assert_eq!(role("admin").unwrap()["users"], 1);
    assert_eq!(role("rep").unwrap()["users"], 2);
    assert_eq!(role("rep").unwrap()["average_score"], 60.0);

    // The stored report reads back with its breakdowns.
    let latest: Value = app
        .http
        .get(app.url("/api/tenants/acme-a/readiness"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(latest["teams"], report["teams"]);
}

#[tokio::test]
async fn group_mapping_makes_a_manager() {
    let Some(app) = spawn_app().await else { return };
    let tenant = app.create_tenant("acme-a", "acme").await;
    let scim = app.scim_token(&tenant).await;
    let token = app.all_scopes_token("acme-a");
    let lead = app
        .scim_create(&tenant, &scim, okta_user("lead@acme.example"))
        .await;
    let response = app
        .http
        .post(app.url("/scim/v2/acme-a/Groups"))
        .bearer_auth(&scim)
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                     "displayName": "Sales Leads", "members": [{"value": lead}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    app.http
        .put(app.url("/api/tenants/acme-a/role-mappings"))
        .bearer_auth(&token)
        .json(&json!({"groups": {"sales leads": "manager"}}))
        .send()
        .await
        .unwrap();
    let report: Value = app
        .http
        .post(app.url("/api/tenants/acme-a/readiness/aggregate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        report["roles"],
        json!([{"role": "manager", "users": 1, "score_count": 0,
        "average_score": null, "assigned_courses": 0, "completed_courses": 0, "completion_rate": null}])
    );
}
