//! User, group and content routes beyond token exchange and the v4.0 search.

use mindtickle_emulator::{GeneratorSpec, Region, UNSUPPORTED_MODULE_TYPE, generate_fixtures};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, demo_company, fast_processes, spawn, spawn_with};

const ONBOARDING_SERIES: &str = "1311384894896850668";
const NEGOTIATION_SERIES: &str = "1311384894896850991";
const PRODUCT_COURSE: &str = "1407221365079360141";
const ONBOARDING_ASSESSMENT: &str = "1407221365079360143";

async fn acme_with_users(app: &TestApp) -> String {
    let token = app.token_for(&demo_company("acme")).await;
    let users = json!([
        { "email": "dana.lee@acme.example", "name": "Dana Lee", "groupIds": ["g-east"] },
        { "email": "eli.park@acme.example", "name": "Eli Park", "groupIds": ["g-west"] },
        { "email": "fay.ortiz@acme.example", "name": "Fay Ortiz", "groupIds": ["g-east"] },
    ]);
    app.upsert(Region::Global, &token, users).await;
    token
}

fn emails(body: &Value) -> Vec<&str> {
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn v2_users_lists_matching_users() {
    let app = spawn(fast_processes()).await;
    let token = acme_with_users(&app).await;
    let url = app.api(Region::Global, "/services/data/v2.0/mtobjects/Users");

    let (status, all) = app.post(url.clone(), Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["totalSize"], 3);
    assert_eq!(all["users"][0]["managers"], json!([]));

    let (_, east) = app
        .post(url.clone(), Some(&token), json!({ "groupIds": ["g-east"] }))
        .await;
    assert_eq!(east["totalSize"], 2);
    assert_eq!(
        emails(&east),
        ["dana.lee@acme.example", "fay.ortiz@acme.example"]
    );

    let (_, eli) = app
        .post(
            url.clone(),
            Some(&token),
            json!({ "emails": ["ELI.PARK@acme.example"] }),
        )
        .await;
    assert_eq!(emails(&eli), ["eli.park@acme.example"]);

    let (status, _) = app.post(url, None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn v2_users_rejects_invalid_body() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let url = app.api(Region::Global, "/services/data/v2.0/mtobjects/Users");

    let (status, body) = app
        .post(url, Some(&token), json!({ "groupIds": "g-east" }))
        .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON body")
    );
}

#[tokio::test]
async fn v2_user_by_id_found_and_missing() {
    let app = spawn(fast_processes()).await;
    let token = acme_with_users(&app).await;
    let eli = app.emulator.user("acme", "eli.park@acme.example").unwrap();

    let url = app.api(
        Region::Global,
        &format!("/services/data/v2.0/mtobjects/User/{}", eli.id),
    );
    let (status, user) = app.get(url, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["email"], "eli.park@acme.example");
    assert_eq!(user["userState"], "ACTIVE");
    assert_eq!(user["groupIds"], json!(["g-west"]));

    let missing = app.api(
        Region::Global,
        "/services/data/v2.0/mtobjects/User/1000000000000000000",
    );
    let (status, body) = app.get(missing.clone(), Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "User not found: 1000000000000000000");

    assert_eq!(app.get(missing, None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn group_create_is_idempotent_by_name() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let url = app.api(Region::Global, "/services/data/v2.0/mtobjects/Group");

    let (status, first) = app
        .post(url.clone(), Some(&token), json!({ "name": "EMEA Sales" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = first["id"].as_str().unwrap();
    assert_eq!(id.len(), 19);
    assert!(id.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(first["name"], "EMEA Sales");

    let (status, again) = app
        .post(url.clone(), Some(&token), json!({ "name": "EMEA Sales" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    assert_eq!(app.emulator.groups("acme").len(), 1);

    let (status, other) = app
        .post(url, Some(&token), json!({ "name": "APAC Sales" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(other["id"], first["id"]);
}

#[tokio::test]
async fn group_create_without_name_is_rejected() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let url = app.api(Region::Global, "/services/data/v2.0/mtobjects/Group");

    for body in [json!({}), json!({ "name": "  " })] {
        let (status, response) = app.post(url.clone(), Some(&token), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(response["message"], "missing parameter name");
    }
    assert_eq!(
        app.post(url, None, json!({ "name": "x" })).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn group_lookup_matches_exact_names() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let create = app.api(Region::Global, "/services/data/v2.0/mtobjects/Group");
    let (_, emea) = app
        .post(create, Some(&token), json!({ "name": "EMEA Sales" }))
        .await;
    let lookup = app.api(Region::Global, "/services/data/v2.0/mtobjects/Groups");

    let (status, found) = app
        .post(
            lookup.clone(),
            Some(&token),
            json!({ "names": ["EMEA Sales", "emea sales", "Nobody"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found, json!({ "groups": [emea] }));

    let (status, body) = app
        .post(lookup.clone(), Some(&token), json!({ "names": [] }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "names must contain at least one group name"
    );

    // Groups belong to one company only.
    let globex = app.token_for(&demo_company("globex")).await;
    let (_, other) = app
        .post(
            app.api(Region::Us, "/services/data/v2.0/mtobjects/Groups"),
            Some(&globex),
            json!({ "names": ["EMEA Sales"] }),
        )
        .await;
    assert_eq!(other, json!({ "groups": [] }));
}

#[tokio::test]
async fn jit_module_details_add_url_tags_version() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let url = app.api(
        Region::Global,
        &format!("/api/v2/jit/series/{ONBOARDING_SERIES}/entity/{ONBOARDING_ASSESSMENT}"),
    );

    let (status, module) = app.get(url, Some(&token)).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(module["id"], ONBOARDING_ASSESSMENT);
    assert_eq!(module["name"], "Onboarding Certification");
    assert_eq!(module["moduleType"], "ASSESSMENT");
    assert_eq!(module["version"], 1);
    assert_eq!(module["tags"], json!({ "values": [] }));
    assert_eq!(
        module["url"],
        format!(
            "https://acme.mindtickle.com/new/ui/learner/assessment/{ONBOARDING_ASSESSMENT}/consume?series={ONBOARDING_SERIES}"
        )
    );
}

#[tokio::test]
async fn jit_module_details_errors() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let path = |series: &str, module: &str| {
        app.api(
            Region::Global,
            &format!("/api/v2/jit/series/{series}/entity/{module}"),
        )
    };

    let (status, body) = app.get(path("42", PRODUCT_COURSE), Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Series not found: 42");

    // The module exists, but in another series.
    let (status, body) = app
        .get(path(NEGOTIATION_SERIES, PRODUCT_COURSE), Some(&token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Module not found")
    );

    assert_eq!(
        app.get(path(ONBOARDING_SERIES, PRODUCT_COURSE), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn learning_objects_of_course_and_assessment() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let path = |module: &str| {
        app.api(
            Region::Global,
            &format!("/api/v2/entity/{module}/learning_objects"),
        )
    };

    let (status, course) = app.get(path(PRODUCT_COURSE), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let objects = course["learningObjects"].as_array().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["type"], "content");
    assert_eq!(objects[0]["media"]["title"], "Product Fundamentals");

    let (status, assessment) = app.get(path(ONBOARDING_ASSESSMENT), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let objects = assessment["learningObjects"].as_array().unwrap();
    assert_eq!(objects.len(), 3);
    let question = &objects[1];
    assert!(question["question"].is_string());
    let correct = question["options"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["isCorrect"] == true)
        .count();
    assert_eq!(correct, 1);

    // Reads repeat the same ids.
    let (_, again) = app.get(path(ONBOARDING_ASSESSMENT), Some(&token)).await;
    assert_eq!(again, assessment);
}

#[tokio::test]
async fn learning_objects_reject_unsupported_and_unknown() {
    let fixtures = generate_fixtures(&GeneratorSpec::new(11, 3, 2));
    let company = fixtures.companies[2].clone();
    let checklist = company
        .modules
        .iter()
        .find(|m| m.module_type == UNSUPPORTED_MODULE_TYPE)
        .unwrap()
        .id
        .clone();
    let app = spawn_with(fixtures, fast_processes()).await;
    let token = app.token_for(&company).await;
    let path = |module: &str| {
        app.api(
            company.region,
            &format!("/api/v2/entity/{module}/learning_objects"),
        )
    };

    let (status, body) = app.get(path(&checklist), Some(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Module type not supported");

    let (status, body) = app.get(path("1"), Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Module not found: 1");

    assert_eq!(
        app.get(path(&checklist), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

fn assign_url(app: &TestApp, series: &str) -> String {
    app.api(Region::Global, &format!("/api/v2/series/{series}/learners"))
}

#[tokio::test]
async fn series_assignment_creates_not_started_statements() {
    let app = spawn(fast_processes()).await;
    let token = acme_with_users(&app).await;

    let (status, accepted) = app
        .post(
            assign_url(&app, NEGOTIATION_SERIES),
            Some(&token),
            json!({ "identifierType": "EMAIL", "learners": [{ "identifier": "dana.lee@acme.example" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let process_id = accepted["processIds"][0].as_str().unwrap();
    let outcome = app
        .wait_for_process(Region::Global, &token, process_id)
        .await;
    assert_eq!(outcome["status"][process_id], "SUCCESS");

    let url = format!(
        "{}?agent={}",
        app.api(Region::Global, "/services/data/v4.0/xapi/statements"),
        "%7B%22mbox%22%3A%22mailto%3Adana.lee%40acme.example%22%7D"
    );
    let (status, body) = app.get(url, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let statements = body["statements"].as_array().unwrap();
    let mut modules: Vec<&str> = statements
        .iter()
        .map(|s| s["object"]["id"].as_str().unwrap())
        .collect();
    modules.sort_unstable();
    assert_eq!(modules, ["1407221365079360217", "1407221365079360218"]);
    for statement in statements {
        assert_eq!(statement["verb"]["display"]["en-US"], "not_started");
    }
}

#[tokio::test]
async fn series_assignment_of_unknown_learner_fails() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;

    let (status, accepted) = app
        .post(
            assign_url(&app, NEGOTIATION_SERIES),
            Some(&token),
            json!({ "identifierType": "EMAIL", "learners": [{ "identifier": "nobody@acme.example" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let process_id = accepted["processIds"][0].as_str().unwrap();

    let outcome = app
        .wait_for_process(Region::Global, &token, process_id)
        .await;
    assert_eq!(outcome["status"][process_id], "FAILED");
    assert_eq!(
        outcome["errors"][process_id][0]["message"],
        "User not found: nobody@acme.example"
    );
}

#[tokio::test]
async fn series_assignment_rejects_invalid_requests() {
    let app = spawn(fast_processes()).await;
    let token = app.token_for(&demo_company("acme")).await;
    let one_learner = json!([{ "identifier": "dana.lee@acme.example" }]);
    let too_many: Vec<Value> = (0..101)
        .map(|n| json!({ "identifier": format!("user{n}@acme.example") }))
        .collect();
    let cases = [
        (
            NEGOTIATION_SERIES,
            json!({ "identifierType": "ID", "learners": one_learner }),
            StatusCode::BAD_REQUEST,
            "Unsupported identifierType \"ID\"; use EMAIL",
        ),
        (
            NEGOTIATION_SERIES,
            json!({ "learners": one_learner }),
            StatusCode::BAD_REQUEST,
            "missing parameter identifierType",
        ),
        (
            NEGOTIATION_SERIES,
            json!({ "identifierType": "EMAIL", "learners": [] }),
            StatusCode::BAD_REQUEST,
            "learners must contain at least one entry",
        ),
        (
            NEGOTIATION_SERIES,
            json!({ "identifierType": "EMAIL", "learners": too_many }),
            StatusCode::BAD_REQUEST,
            "learners has 101 entries; at most 100 are allowed per request, so split it into batches",
        ),
        (
            "42",
            json!({ "identifierType": "EMAIL", "learners": one_learner }),
            StatusCode::NOT_FOUND,
            "Series not found: 42",
        ),
    ];

    for (series, body, expected_status, expected_message) in cases {
        let (status, response) = app.post(assign_url(&app, series), Some(&token), body).await;
        assert_eq!(status, expected_status, "{expected_message}");
        assert_eq!(response["message"], expected_message);
    }
    let (status, _) = app
        .post(
            assign_url(&app, NEGOTIATION_SERIES),
            None,
            json!({ "identifierType": "EMAIL", "learners": one_learner }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
