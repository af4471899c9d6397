//! Legacy HS256 bearer tokens signed by the caller.

use jsonwebtoken::{EncodingKey, Header, encode};
use mindtickle_emulator::{Fault, Region};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, demo_company, fast_processes, spawn};

fn now_seconds() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

fn sign(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    encode(&Header::default(), claims, &key).unwrap()
}

/// Claims for acme's key pair, valid from now for `lifetime` seconds.
fn acme_claims(lifetime: f64) -> Value {
    let acme = demo_company("acme");
    let iat = now_seconds();
    json!({
        "iss": acme.key_pairs[0].api_key,
        "aud": "acme",
        "iat": iat,
        "exp": iat + lifetime,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn acme_secret() -> String {
    demo_company("acme").key_pairs[0].secret_key.clone()
}

async fn series_list(app: &TestApp, region: Region, token: &str) -> (StatusCode, Value) {
    app.get(app.api(region, "/api/v2/series/list"), Some(token))
        .await
}

#[tokio::test]
async fn legacy_jwt_with_float_claims_is_accepted() {
    let app = spawn(fast_processes()).await;
    let token = sign(&acme_claims(1000.5), &acme_secret());

    let (status, body) = series_list(&app, Region::Global, &token).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["totalHits"], 2);
    assert_eq!(app.emulator.request_count("acme"), 1);
}

#[tokio::test]
async fn legacy_jwt_with_wrong_secret_is_rejected() {
    let app = spawn(fast_processes()).await;
    let token = sign(&acme_claims(1000.0), "not-the-secret");

    let (status, body) = series_list(&app, Region::Global, &token).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JWT signature"),
        "{body}"
    );
    assert_eq!(app.emulator.request_count("acme"), 0);
}

#[tokio::test]
async fn legacy_jwt_longer_than_an_hour_is_rejected() {
    let app = spawn(fast_processes()).await;
    let exactly_one_hour = sign(&acme_claims(3600.0), &acme_secret());
    let too_long = sign(&acme_claims(3600.5), &acme_secret());

    assert_eq!(
        series_list(&app, Region::Global, &exactly_one_hour).await.0,
        StatusCode::OK
    );
    let (status, body) = series_list(&app, Region::Global, &too_long).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("JWT lifetime of 3600.5 s exceeds"),
        "{body}"
    );
}

#[tokio::test]
async fn legacy_jwt_with_wrong_aud_is_rejected() {
    let app = spawn(fast_processes()).await;
    let cases = [
        (
            json!("globex"),
            "JWT iss is not an API key of company \"globex\"",
        ),
        (
            json!("1234567890123456789"),
            "JWT aud \"1234567890123456789\" is not a known company id",
        ),
        (
            json!(["acme", "globex"]),
            "JWT aud must name exactly one company id",
        ),
    ];

    for (aud, expected) in cases {
        let mut claims = acme_claims(1000.0);
        claims["aud"] = aud;
        let token = sign(&claims, &acme_secret());
        let host = if claims["aud"] == "globex" {
            Region::Us
        } else {
            Region::Global
        };
        let (status, body) = series_list(&app, host, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{expected}");
        assert_eq!(body["message"], expected);
    }
}

#[tokio::test]
async fn legacy_jwt_on_other_region_is_rejected() {
    let app = spawn(fast_processes()).await;
    let token = sign(&acme_claims(1000.0), &acme_secret());

    let (status, body) = series_list(&app, Region::Us, &token).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().contains("another region"));
}

#[tokio::test]
async fn legacy_jwt_past_exp_is_expired() {
    let app = spawn(fast_processes()).await;
    let mut claims = acme_claims(600.0);
    claims["iat"] = json!(now_seconds() - 700.0);
    claims["exp"] = json!(now_seconds() - 100.0);
    let token = sign(&claims, &acme_secret());

    let (status, body) = series_list(&app, Region::Global, &token).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["message"], "Token expired; request a new one");
}

#[tokio::test]
async fn legacy_jwt_missing_claims_are_rejected() {
    let app = spawn(fast_processes()).await;
    for claim in ["iss", "aud", "exp"] {
        let mut claims = acme_claims(1000.0);
        claims.as_object_mut().unwrap().remove(claim);
        let token = sign(&claims, &acme_secret());
        let (status, _) = series_list(&app, Region::Global, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "without {claim}");
    }
}

#[tokio::test]
async fn legacy_jwt_follows_expiry_and_ttl_switches() {
    let app = spawn(fast_processes()).await;
    let token = sign(&acme_claims(1000.0), &acme_secret());
    assert_eq!(
        series_list(&app, Region::Global, &token).await.0,
        StatusCode::OK
    );

    app.emulator.inject(Fault::TokenTtl {
        company_id: "acme".into(),
        ttl_ms: Some(0),
    });
    assert_eq!(
        series_list(&app, Region::Global, &token).await.0,
        StatusCode::FORBIDDEN
    );

    app.emulator.clear_faults();
    assert_eq!(
        series_list(&app, Region::Global, &token).await.0,
        StatusCode::OK
    );

    app.emulator.expire_tokens("acme");
    assert_eq!(
        series_list(&app, Region::Global, &token).await.0,
        StatusCode::FORBIDDEN
    );
}
