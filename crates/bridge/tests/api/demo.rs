//! The demo on the embedded database, with no services, as a new user runs it.

#[cfg(feature = "embedded")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_each_tenant_report() {
    let data = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config();
    config.auth.jwt_secret = None;
    config.database.url = None;
    config.database.data_dir = data.path().join("data");
    let mut output = Vec::new();
    bridge::demo::run(config, false, &mut output)
        .await
        .expect("demo succeeds");
    let output = String::from_utf8(output).unwrap();
    for expected in [
        "Readiness report for demo-acme",
        "Readiness report for demo-globex",
        "alice.nguyen@acme.example",
        "erin.walsh@globex.example",
        "Average quiz score",
        "Completion rate",
        "answers 403 Forbidden",
    ] {
        assert!(
            output.contains(expected),
            "missing {expected:?} in:\n{output}"
        );
    }
    assert!(!output.contains("NaN"), "{output}");
}

#[cfg(feature = "embedded")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_data_survives_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config();
    config.database.url = None;
    config.database.data_dir = data.path().join("data");
    let tenant = bridge::tenancy::TenantId::parse("kept-co").unwrap();

    let database = bridge::server::open_database(&config).await.unwrap();
    bridge::tenancy::TenantRegistry::new(database.pool.clone())
        .create(&tenant, "Kept")
        .await
        .unwrap();
    database.close().await;

    let reopened = bridge::server::open_database(&config).await.unwrap();
    let found = bridge::tenancy::TenantRegistry::new(reopened.pool.clone())
        .get(&tenant)
        .await
        .unwrap();
    reopened.close().await;
    assert_eq!(found.map(|tenant| tenant.name), Some("Kept".to_owned()));
}
