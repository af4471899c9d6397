use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use mindtickle::{Client, Error, Statement, StatementVerb};
use mindtickle_emulator::{Emulator, GeneratorSpec, RegionMix, generate_fixtures};

use crate::harness::{
    ACME, ALICE, GLOBEX, RecordingGate, client, gated_client, http, options, provision, spawn,
    tenant_of, upsert,
};

#[tokio::test]
async fn user_stream_spans_pages_for_us_tenant() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, GLOBEX, 0);
    let emails: Vec<String> = (0..130)
        .map(|i| format!("rep{i:03}@globex.example"))
        .collect();
    let users: Vec<_> = emails.iter().map(|e| upsert(e, "Rep")).collect();
    provision(&client, &users).await;
    let mut requested = emails.clone();
    requested.push("missing@globex.example".to_owned());
    let before = gate.acquired();

    let found: Vec<_> = client
        .users_by_email_stream(&requested)
        .try_collect()
        .await
        .unwrap();

    let found_emails: BTreeSet<&str> = found.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(found.len(), 130);
    assert_eq!(found_emails.len(), 130);
    assert!(emails.iter().all(|e| found_emails.contains(e.as_str())));
    // 100 emails in two pages of 50, then a second batch of 31 in one page.
    assert_eq!(gate.acquired() - before, 3);
}

#[tokio::test]
async fn user_stream_reads_pages_on_demand() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, GLOBEX, 0);
    let emails: Vec<String> = (0..60)
        .map(|i| format!("rep{i:03}@globex.example"))
        .collect();
    let users: Vec<_> = emails.iter().map(|e| upsert(e, "Rep")).collect();
    provision(&client, &users).await;
    let before = gate.acquired();

    let first: Vec<_> = client
        .users_by_email_stream(&emails)
        .take(10)
        .try_collect()
        .await
        .unwrap();

    assert_eq!(first.len(), 10);
    assert_eq!(gate.acquired() - before, 1);
}

#[tokio::test]
async fn user_stream_of_no_emails_sends_nothing() {
    let emulator = spawn(options()).await;
    let (client, gate) = gated_client(&emulator, ACME, 0);

    let found: Vec<_> = client
        .users_by_email_stream(&[])
        .try_collect()
        .await
        .unwrap();

    assert!(found.is_empty());
    assert_eq!(gate.acquired(), 0);
}

#[tokio::test]
async fn statement_stream_matches_collected_history() {
    let emulator = spawn(options()).await;
    let client = client(&emulator, ACME);
    provision(&client, &[upsert(ALICE, "Alice Nguyen")]).await;

    let streamed: Vec<_> = client.statements_stream(ALICE).try_collect().await.unwrap();
    let collected = client.learner_statements(ALICE).await.unwrap();

    // `timestamp` is the time MindTickle served the page, so only the events are compared.
    let events = |statements: &[Statement]| -> Vec<(String, StatementVerb)> {
        statements
            .iter()
            .map(|s| (s.module_id.clone(), s.verb.clone()))
            .collect()
    };
    assert!(!streamed.is_empty());
    assert_eq!(events(&streamed), events(&collected));
}

#[tokio::test]
async fn statement_stream_spans_pages_for_us_tenant() {
    let mut spec = GeneratorSpec::new(7, 1, 1);
    spec.region_mix = RegionMix::AllUs;
    spec.series_per_company = 5;
    spec.modules_per_series = 10;
    let fixtures = generate_fixtures(&spec);
    let company = &fixtures.companies[0];
    let email = "user1@company1.example";
    let modules: BTreeSet<&str> = company
        .activity
        .iter()
        .filter(|row| row.email == email)
        .map(|row| row.module_id.as_str())
        .collect();
    let emulator = Emulator::start(fixtures.clone(), options()).await.unwrap();
    let gate = RecordingGate::admitting();
    let client = Client::new(http(), tenant_of(&emulator, &fixtures, &company.company_id))
        .with_request_gate(gate.clone());

    let statements: Vec<_> = client.statements_stream(email).try_collect().await.unwrap();

    let streamed_modules: BTreeSet<&str> =
        statements.iter().map(|s| s.module_id.as_str()).collect();
    assert!(modules.len() > 40, "{}", modules.len());
    assert_eq!(streamed_modules, modules);
    // One token exchange, then pages of at most 20 statements.
    assert_eq!(gate.acquired(), 1 + statements.len().div_ceil(20));
}

#[tokio::test]
async fn stream_ends_after_error() {
    let emulator = spawn(options()).await;
    let mut config = crate::harness::tenant(&emulator, ACME);
    config.secret_key = "not-the-secret".to_owned().into();
    let client = mindtickle::Client::new(crate::harness::http(), config);

    let items: Vec<_> = client.statements_stream(ALICE).collect().await;

    assert_eq!(items.len(), 1);
    assert!(
        matches!(items[0], Err(Error::Unauthorized { status: 401, .. })),
        "{items:?}"
    );
}
