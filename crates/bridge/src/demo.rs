//! `demo`: the main job end to end, on an in-process MindTickle emulator. Two tenants are
//! provisioned through real SCIM requests shaped like Okta's and Entra ID's, synced to MindTickle,
//! their progress and quiz scores pulled, quiz results recorded and readiness aggregated.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use rand::RngCore;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{AppState, router};
use crate::config::Config;
use crate::gateway::Scope;
use crate::jobs::JobRunner;
use crate::progress::ProgressOut;
use crate::readiness::ReadinessReport;
use crate::server::{Workers, in_process_bus, jwt_keys, open_database, shutdown_signal};
use crate::sync::MindTickleAccount;
use crate::tenancy::{TenantId, TenantRegistry, TenantRegistryError, TenantTx};

/// The demo tenants, one per identity provider. The files ship with the crate.
const FIXTURES: [&str; 2] = [
    include_str!("../fixtures/demo/acme-okta.json"),
    include_str!("../fixtures/demo/globex-entra.json"),
];

/// Maximum time the demo waits for MindTickle's bulk processes to finish.
const JOB_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct TenantFixture {
    tenant: String,
    name: String,
    company_id: String,
    identity_provider: String,
    users: Vec<Value>,
    patches: Vec<PatchFixture>,
    quiz_results: Vec<QuizFixture>,
}

#[derive(Debug, Deserialize)]
struct PatchFixture {
    user_name: String,
    comment: String,
    body: Value,
}

#[derive(Debug, Deserialize)]
struct QuizFixture {
    user_name: String,
    quiz_id: String,
    score: f64,
    max_score: f64,
    submitted_at: String,
    duration_seconds: Option<i32>,
    answers: Vec<Value>,
}

/// One demo tenant as set up: ids, tokens and the users created.
struct DemoTenant {
    fixture: TenantFixture,
    tenant: TenantId,
    scim_token: SecretString,
    api_token: String,
    /// userName → user id.
    users: BTreeMap<String, String>,
}

pub async fn run(mut config: Config, serve: bool, out: &mut impl Write) -> anyhow::Result<()> {
    crate::install_crypto_provider();
    let embedded = config.database.url.is_none();
    crate::server::resolve_credentials_key(&mut config, embedded)?;
    let emulator = mindtickle_emulator::Emulator::start(
        mindtickle_emulator::demo_fixtures(),
        mindtickle_emulator::Options {
            process_delay: Duration::from_millis(100),
            // MindTickle's documented limits (5/s, 220/min, 3,000/h); the tenant budget of
            // 3/s and 55/min keeps every call under them.
            rate_limit: mindtickle_emulator::RateLimitProfile::Documented,
            ..Default::default()
        },
    )
    .await
    .context("failed to start the MindTickle emulator")?;
    // Bulk processes finish in 100 ms on the emulator; check them every second.
    config.mindtickle.process_poll_secs = 1;
    let listen = if serve {
        config.server.listen
    } else {
        std::net::SocketAddr::from(([127, 0, 0, 1], 0))
    };

    let database = open_database(&config).await?;
    let secret = config.auth.jwt_secret.clone().unwrap_or_else(random_secret);
    let keys = jwt_keys(&config, Some(secret))?;
    let state = AppState::new(database.pool.clone(), config, keys, in_process_bus())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    let address = listener.local_addr()?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .into_future(),
    );
    let base = format!("http://{address}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    writeln!(out, "Enablement Bridge demo")?;
    writeln!(out, "  API and SCIM server   {base}")?;
    writeln!(
        out,
        "  MindTickle emulator   {} (global), {} (US), {} (reporting)",
        emulator.api_url(mindtickle_emulator::Region::Global),
        emulator.api_url(mindtickle_emulator::Region::Us),
        emulator.admin_url()
    )?;
    writeln!(out)?;

    let mut tenants = Vec::new();
    for raw in FIXTURES {
        let fixture: TenantFixture = serde_json::from_str(raw).context("invalid demo fixture")?;
        tenants.push(set_up_tenant(&state, &emulator, fixture).await?);
    }

    for demo in &mut tenants {
        provision(&http, &base, demo, out).await?;
    }
    run_jobs(&state, &tenants).await?;
    writeln!(out)?;

    let mut subscriptions: Vec<_> = tenants
        .iter()
        .map(|demo| state.bus().subscribe(demo.tenant.clone()))
        .collect();
    for demo in &tenants {
        let progress = sync_progress(&state, &http, &base, demo).await?;
        record_quiz_results(&http, &base, demo).await?;
        let report: ReadinessReport = send_json(
            http.post(format!(
                "{base}/api/tenants/{}/readiness/aggregate",
                demo.tenant
            ))
            .bearer_auth(&demo.api_token),
            StatusCode::OK,
        )
        .await?;
        print_report(out, &state, demo, &progress, &report).await?;
    }

    check_isolation(&http, &base, &tenants, out).await?;

    crate::events::Relay::new(state.pool().clone(), state.bus().clone())
        .drain()
        .await?;
    writeln!(out, "Events published through the outbox")?;
    for (demo, subscription) in tenants.iter().zip(subscriptions.iter_mut()) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        while let Some(envelope) = subscription.try_next() {
            *counts.entry(envelope.routing_key).or_default() += 1;
        }
        for (key, count) in counts {
            writeln!(out, "  {key:<40} {count}")?;
        }
        let _ = demo;
    }
    writeln!(out)?;
    writeln!(out, "MindTickle requests, paced by each tenant's budget")?;
    for demo in &tenants {
        writeln!(
            out,
            "  {:<14} {:>4} requests, {} rejected by MindTickle's rate limit",
            demo.tenant,
            emulator.request_count(&demo.fixture.company_id),
            emulator.rejected_count(&demo.fixture.company_id)
        )?;
    }
    writeln!(out)?;

    if serve {
        let workers = Workers::spawn(&state);
        let first = &tenants[0];
        writeln!(out, "Serving on {base}. Press Ctrl-C to stop.")?;
        writeln!(out, "API token for {} (all scopes, 1 hour):", first.tenant)?;
        writeln!(out, "  export TOKEN={}", first.api_token)?;
        writeln!(
            out,
            "  export SCIM_TOKEN={}",
            first.scim_token.expose_secret()
        )?;
        writeln!(out, "Try:")?;
        writeln!(
            out,
            "  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/tenants/{}/readiness",
            first.tenant
        )?;
        if let Some(user_id) = first.users.values().next() {
            writeln!(
                out,
                "  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" {base}/api/tenants/{}/users/{user_id}/sync-progress",
                first.tenant
            )?;
        }
        writeln!(
            out,
            "  curl -s -H \"Authorization: Bearer $SCIM_TOKEN\" '{base}/scim/v2/{}/Users?filter=userName%20eq%20%22alice.nguyen@acme.example%22'",
            first.tenant
        )?;
        writeln!(
            out,
            "  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/tenants/{}/readiness   # another tenant: 403",
            tenants[1].tenant
        )?;
        writeln!(out, "  curl -s {base}/metrics | grep bridge_")?;
        out.flush()?;
        shutdown_signal().await;
        workers.stop().await;
    }

    let _ = stop_server.send(());
    server.await.context("server task failed")??;
    drop(state);
    database.close().await;
    emulator.shutdown().await;
    Ok(())
}

fn random_secret() -> SecretString {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Recreates the tenant from scratch, so every run starts from the same state.
async fn set_up_tenant(
    state: &AppState,
    emulator: &mindtickle_emulator::Emulator,
    fixture: TenantFixture,
) -> anyhow::Result<DemoTenant> {
    let tenant = TenantId::parse(&fixture.tenant)?;
    let registry = TenantRegistry::new(state.pool().clone());
    match registry.delete_demo_tenant(&tenant).await {
        Ok(()) | Err(TenantRegistryError::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    registry.create(&tenant, &fixture.name).await?;

    let fixtures = mindtickle_emulator::demo_fixtures();
    let company = fixtures
        .company(&fixture.company_id)
        .with_context(|| format!("no emulator company {}", fixture.company_id))?;
    let key_pair = company
        .key_pairs
        .first()
        .context("emulator company has no key pair")?;
    state
        .mindtickle()
        .set_account(
            state.pool(),
            &tenant,
            &MindTickleAccount {
                api_base: emulator.api_url(company.region),
                admin_base: emulator.admin_url(),
                ls_url: company.ls_url.clone(),
                api_key: key_pair.api_key.clone(),
                secret_key: key_pair.secret_key.clone().into(),
                reporting_user: company.reporting_user.clone(),
                reporting_password: company.reporting_password.clone().into(),
                requests_per_second: None,
                requests_per_minute: None,
            },
        )
        .await?;
    let scim_token = crate::scim_api::create_scim_token(state.pool(), &tenant).await?;
    let scopes = Scope::ALL.into_iter().collect();
    let api_token = state.jwt().issue(
        &tenant,
        "demo",
        &scopes,
        chrono::Utc::now(),
        Duration::from_secs(3600),
    )?;
    Ok(DemoTenant {
        fixture,
        tenant,
        scim_token,
        api_token,
        users: BTreeMap::new(),
    })
}

async fn send_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    expected: StatusCode,
) -> anyhow::Result<T> {
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    ensure!(
        status == expected,
        "expected {expected}, got {status}: {body}"
    );
    serde_json::from_str(&body).with_context(|| format!("unexpected response body: {body}"))
}

/// Sends the identity provider's requests: for each user the existence check and the create,
/// then the updates.
async fn provision(
    http: &reqwest::Client,
    base: &str,
    demo: &mut DemoTenant,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let scim = format!("{base}/scim/v2/{}", demo.tenant);
    let token = demo.scim_token.expose_secret().to_owned();
    writeln!(
        out,
        "{} provisions {} users into tenant {} over SCIM",
        demo.fixture.identity_provider,
        demo.fixture.users.len(),
        demo.tenant
    )?;
    for body in &demo.fixture.users {
        let user_name = body["userName"]
            .as_str()
            .context("fixture user without userName")?;
        let existing: Value = send_json(
            http.get(format!("{scim}/Users"))
                .query(&[
                    ("filter", format!("userName eq \"{user_name}\"")),
                    ("startIndex", "1".into()),
                    ("count", "100".into()),
                ])
                .bearer_auth(&token),
            StatusCode::OK,
        )
        .await?;
        ensure!(existing["totalResults"] == 0, "{user_name} already exists");
        let created: Value = send_json(
            http.post(format!("{scim}/Users"))
                .header("content-type", "application/scim+json; charset=utf-8")
                .bearer_auth(&token)
                .body(body.to_string()),
            StatusCode::CREATED,
        )
        .await?;
        let id = created["id"].as_str().context("created user without id")?;
        writeln!(out, "  POST   /Users  {user_name:<30} 201 Created  id {id}")?;
        demo.users.insert(user_name.to_owned(), id.to_owned());
    }
    for patch in &demo.fixture.patches {
        let id = demo
            .users
            .get(&patch.user_name)
            .with_context(|| format!("patch for unknown user {}", patch.user_name))?;
        let patched: Value = send_json(
            http.patch(format!("{scim}/Users/{id}"))
                .header("content-type", "application/scim+json")
                .bearer_auth(&token)
                .body(patch.body.to_string()),
            StatusCode::OK,
        )
        .await?;
        writeln!(
            out,
            "  PATCH  /Users  {:<30} 200 OK       active={} ({})",
            patch.user_name, patched["active"], patch.comment
        )?;
    }
    Ok(())
}

/// Steps the job runner until every tenant's queue is empty: user pushes, then the checks of
/// MindTickle's bulk processes.
async fn run_jobs(state: &AppState, tenants: &[DemoTenant]) -> anyhow::Result<()> {
    let runner = JobRunner::new(state.pool().clone(), state.config().jobs.clone());
    let started = Instant::now();
    loop {
        let ran = runner
            .run_once(50, |job| crate::sync::handle_job(state.clone(), job))
            .await?;
        if ran > 0 {
            continue;
        }
        let mut pending = 0;
        let mut failures = Vec::new();
        for demo in tenants {
            let mut tx = TenantTx::begin(state.pool(), &demo.tenant).await?;
            let counts = crate::jobs::counts(&mut tx).await?;
            let errors: Vec<(String, Option<String>)> = sqlx::query_as(
                "SELECT kind, last_error FROM jobs WHERE tenant_id = $1 AND status = 'dead'",
            )
            .bind(demo.tenant.as_str())
            .fetch_all(tx.conn())
            .await?;
            tx.commit().await?;
            pending += counts.pending + counts.running;
            failures.extend(errors.into_iter().map(|(kind, error)| {
                format!("{}: {kind}: {}", demo.tenant, error.unwrap_or_default())
            }));
        }
        ensure!(
            failures.is_empty(),
            "MindTickle sync jobs failed: {}",
            failures.join("; ")
        );
        if pending == 0 {
            return Ok(());
        }
        if started.elapsed() > JOB_DEADLINE {
            bail!("MindTickle sync jobs still pending after {JOB_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sync_progress(
    state: &AppState,
    http: &reqwest::Client,
    base: &str,
    demo: &DemoTenant,
) -> anyhow::Result<BTreeMap<String, ProgressOut>> {
    let mut progress = BTreeMap::new();
    for (user_name, id) in &demo.users {
        let url = format!(
            "{base}/api/tenants/{}/users/{id}/sync-progress",
            demo.tenant
        );
        let response = http.post(&url).bearer_auth(&demo.api_token).send().await?;
        let synced: ProgressOut = match response.status() {
            StatusCode::OK => response.json().await?,
            // Over the tenant's MindTickle budget: the sync was queued for the next window, so
            // run the queue until it has been done, then read the result.
            StatusCode::ACCEPTED => {
                run_jobs(state, std::slice::from_ref(demo)).await?;
                send_json(http.get(&url).bearer_auth(&demo.api_token), StatusCode::OK).await?
            }
            status => bail!(
                "sync of {user_name} failed with {status}: {}",
                response.text().await?
            ),
        };
        progress.insert(user_name.clone(), synced);
    }
    Ok(progress)
}

async fn record_quiz_results(
    http: &reqwest::Client,
    base: &str,
    demo: &DemoTenant,
) -> anyhow::Result<()> {
    for quiz in &demo.fixture.quiz_results {
        let user_id = demo
            .users
            .get(&quiz.user_name)
            .with_context(|| format!("quiz result for unknown user {}", quiz.user_name))?;
        let _: Value = send_json(
            http.post(format!("{base}/api/tenants/{}/quiz-results", demo.tenant))
                .bearer_auth(&demo.api_token)
                .json(&json!({
                    "user_id": user_id,
                    "quiz_id": quiz.quiz_id,
                    "score": quiz.score,
                    "max_score": quiz.max_score,
                    "submitted_at": quiz.submitted_at,
                    "duration_seconds": quiz.duration_seconds,
                    "answers": quiz.answers,
                })),
            StatusCode::CREATED,
        )
        .await?;
    }
    Ok(())
}

/// Uses the first tenant's token on the second tenant's path, and prints the refusal.
async fn check_isolation(
    http: &reqwest::Client,
    base: &str,
    tenants: &[DemoTenant],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let [first, second, ..] = tenants else {
        return Ok(());
    };
    let response = http
        .get(format!("{base}/api/tenants/{}/readiness", second.tenant))
        .bearer_auth(&first.api_token)
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status == StatusCode::FORBIDDEN,
        "cross-tenant request was not refused: {status}"
    );
    writeln!(
        out,
        "Isolation: a {} token on {}'s readiness report answers {status}; a security event was recorded.",
        first.tenant, second.tenant
    )?;
    writeln!(out)?;
    Ok(())
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |value| format!("{value:.1} %"))
}

async fn print_report(
    out: &mut impl Write,
    state: &AppState,
    demo: &DemoTenant,
    progress: &BTreeMap<String, ProgressOut>,
    report: &ReadinessReport,
) -> anyhow::Result<()> {
    let mut tx = TenantTx::begin(state.pool(), &demo.tenant).await?;
    let (users, _) = crate::directory::list_users(&mut tx, 0, 1000).await?;
    // The same rule as the report: the latest score per quiz, from MindTickle or submitted here.
    let averages: BTreeMap<uuid::Uuid, f64> = sqlx::query_as::<_, (uuid::Uuid, f64)>(
        "SELECT user_id, avg(percent) FROM (
             SELECT DISTINCT ON (user_id, quiz_id) user_id, score / max_score * 100 AS percent
             FROM (SELECT user_id, quiz_id, score, max_score, submitted_at AS at
                   FROM quiz_results WHERE tenant_id = $1
                   UNION ALL
                   SELECT user_id, course_id, score, max_score, coalesce(completed_at, synced_at)
                   FROM course_progress
                   WHERE tenant_id = $1 AND score IS NOT NULL AND max_score > 0) attempts
             ORDER BY user_id, quiz_id, at DESC) latest
         GROUP BY user_id",
    )
    .bind(demo.tenant.as_str())
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .collect();
    let roles: BTreeMap<uuid::Uuid, String> =
        sqlx::query_as::<_, (uuid::Uuid, String)>(sqlx::AssertSqlSafe(format!(
            "SELECT u.user_id, {} FROM users u WHERE u.tenant_id = $1",
            crate::directory::EFFECTIVE_ROLE_SQL
        )))
        .bind(demo.tenant.as_str())
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .collect();
    tx.commit().await?;

    writeln!(
        out,
        "Readiness report for {} ({}, provisioned by {})",
        demo.tenant, demo.fixture.name, demo.fixture.identity_provider
    )?;
    writeln!(
        out,
        "  Active users        {} of {}",
        report.active_users,
        users.len()
    )?;
    writeln!(
        out,
        "  Average quiz score  {}  ({} scores from {} users)",
        percent(report.average_score),
        report.score_count,
        report.users_with_scores
    )?;
    writeln!(
        out,
        "  Completion rate     {}  ({} of {} assigned courses)",
        percent(report.completion_rate.map(|rate| rate * 100.0)),
        report.completed_courses,
        report.assigned_courses
    )?;
    let status = match &report.provisional_reason {
        Some(reason) => format!("provisional: {reason}"),
        None => "final: all active users synced".to_owned(),
    };
    writeln!(out, "  Report              {status}")?;
    writeln!(out)?;
    writeln!(
        out,
        "  {:<30} {:<8} {:<8} {:<11} {:>8} {:>10}",
        "User", "Role", "Active", "MindTickle", "Done", "Avg score"
    )?;
    for user in &users {
        let courses = progress
            .get(&user.user_name)
            .map(|progress| progress.courses.as_slice())
            .unwrap_or_default();
        let done = courses
            .iter()
            .filter(|course| course.status == "completed")
            .count();
        let average = averages.get(&user.user_id).copied();
        writeln!(
            out,
            "  {:<30} {:<8} {:<8} {:<11} {:>8} {:>10}",
            user.user_name,
            roles.get(&user.user_id).map_or("rep", String::as_str),
            if user.active { "yes" } else { "no" },
            user.mindtickle_state,
            format!("{done}/{}", courses.len()),
            percent(average)
        )?;
    }
    writeln!(out)?;
    Ok(())
}
