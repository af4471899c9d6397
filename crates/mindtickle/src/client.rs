//! The per-tenant MindTickle client.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::TryStreamExt;
use reqwest::{Method, RequestBuilder, StatusCode, header::HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::json;
use tokio::sync::Mutex;
use tracing::instrument;

use crate::{
    config::TenantConfig,
    error::Error,
    gate::RequestGate,
    model::{
        CourseProgress, LearnerModulePerformance, Module, ProcessError, ProcessId, ProcessState,
        ProcessStatusReport, Series, Statement, User, UserUpsert,
    },
    progress::{self, Catalog},
    retry::RetryPolicy,
    token::{CachedToken, Clock, SystemClock, TokenSlot},
};

/// Default upper bound of each attempt of a request, from sending to the end of the body.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// MindTickle's bulk user calls take at most this many users or emails.
pub(crate) const MAX_BATCH: usize = 100;
/// How long the series and module catalog is reused by `learner_progress`.
const CATALOG_TTL: Duration = Duration::from_secs(15 * 60);

/// A MindTickle client for one tenant. Clones share the token and catalog caches. The retry
/// policy, request gate and timeout belong to each handle, so a clone changed by the `with_`
/// methods keeps sharing the caches of the original.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    retry: RetryPolicy,
    gate: Option<Arc<dyn RequestGate>>,
    request_timeout: Duration,
}

/// A response read to its end, so a retry covers a body that failed halfway.
pub(crate) struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

struct Inner {
    http: reqwest::Client,
    config: TenantConfig,
    api_base: String,
    admin_base: String,
    clock: Arc<dyn Clock>,
    token: TokenSlot,
    catalog: Mutex<Option<(Instant, Arc<Catalog>)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_base", &self.inner.api_base)
            .field("ls_url", &self.inner.config.ls_url)
            .field("retry", &self.retry)
            .field("gate", &self.gate.is_some())
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(alias = "access_token")]
    token: String,
    #[serde(default = "default_token_lifetime")]
    expires_in: u64,
}

fn default_token_lifetime() -> u64 {
    3600
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProcessIdsResponse {
    process_ids: Vec<ProcessId>,
}

#[derive(Deserialize)]
struct Hits<T> {
    #[serde(default = "Vec::new")]
    hits: Vec<T>,
}

#[derive(Deserialize)]
struct ODataEnvelope {
    d: ODataPage,
}

#[derive(Deserialize)]
struct ODataPage {
    #[serde(default)]
    results: Vec<LearnerModulePerformance>,
    #[serde(default, rename = "__next")]
    next: Option<String>,
}

#[derive(Deserialize)]
struct StatusResponse {
    #[serde(default)]
    status: std::collections::BTreeMap<ProcessId, String>,
    #[serde(default)]
    errors: std::collections::BTreeMap<ProcessId, Vec<ProcessError>>,
}

impl Client {
    /// Builds a client with the default [`RetryPolicy`], no request gate and a 30 s timeout
    /// per attempt.
    pub fn new(http: reqwest::Client, config: TenantConfig) -> Client {
        Client::with_clock(http, config, Arc::new(SystemClock))
    }

    /// Builds a client whose token ages by `clock`, so tests can expire it without waiting.
    pub fn with_clock(
        http: reqwest::Client,
        config: TenantConfig,
        clock: Arc<dyn Clock>,
    ) -> Client {
        let api_base = config.api_base.trim_end_matches('/').to_owned();
        let admin_base = config.admin_base.trim_end_matches('/').to_owned();
        Client {
            inner: Arc::new(Inner {
                http,
                config,
                api_base,
                admin_base,
                clock,
                token: TokenSlot::default(),
                catalog: Mutex::new(None),
            }),
            retry: RetryPolicy::default(),
            gate: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Replaces the bounds of the client's retries of 5xx responses, timeouts and failed
    /// connections.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Client {
        self.retry = policy;
        self
    }

    /// Makes every request wait for `gate` first; see [`RequestGate`] for the contract.
    pub fn with_request_gate(mut self, gate: Arc<dyn RequestGate>) -> Client {
        self.gate = Some(gate);
        self
    }

    /// Replaces the 30 s upper bound of each attempt, from sending the request to reading the
    /// end of its body. A shorter timeout of the `reqwest::Client` still applies.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Client {
        self.request_timeout = timeout;
        self
    }

    /// Creates or updates users keyed by email, in batches of at most 100. The changes apply
    /// asynchronously; poll [`Client::process_status`] with the returned ids.
    ///
    /// A batch that timed out may still have been applied, and the client then sends it
    /// again. That is safe because MindTickle matches users by email (case-insensitively):
    /// the repeat updates the user the first request created, and only its process id is
    /// lost. The returned ids are those of the attempts that received a response.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url, users = users.len()))]
    pub async fn upsert_users(&self, users: &[UserUpsert]) -> Result<Vec<ProcessId>, Error> {
        let mut process_ids = Vec::new();
        for batch in users.chunks(MAX_BATCH) {
            let body: Vec<_> = batch
                .iter()
                .map(|user| {
                    json!({
                        "email": user.email,
                        "name": user.name,
                        "profile": user.profile,
                        "userState": if user.active { "ACTIVE" } else { "DEACTIVATED" },
                    })
                })
                .collect();
            let body = json!({ "users": body });
            let url = self.api_url("/services/data/v2.0/mtobjects/Users/upsert");
            let response: ProcessIdsResponse = self
                .call_json("user upsert", |http| http.post(&url).json(&body))
                .await?;
            process_ids.extend(response.process_ids);
        }
        tracing::debug!(processes = process_ids.len(), "user upsert accepted");
        Ok(process_ids)
    }

    /// Deactivates users by email, in batches of at most 100. Applies asynchronously.
    ///
    /// Like [`Client::upsert_users`] this is safe to send twice: deactivating a deactivated
    /// user changes nothing, and an unknown email creates no user.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url, users = emails.len()))]
    pub async fn deactivate_users(&self, emails: &[String]) -> Result<Vec<ProcessId>, Error> {
        let mut process_ids = Vec::new();
        for batch in emails.chunks(MAX_BATCH) {
            let body = json!({ "emails": batch });
            let url = self.api_url("/services/data/v2.0/mtobjects/Users/deactivate");
            let response: ProcessIdsResponse = self
                .call_json("user deactivation", |http| http.post(&url).json(&body))
                .await?;
            process_ids.extend(response.process_ids);
        }
        Ok(process_ids)
    }

    /// Reads the state of bulk processes and the per-user errors of finished ones.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url, processes = ids.len()))]
    pub async fn process_status(&self, ids: &[ProcessId]) -> Result<ProcessStatusReport, Error> {
        let mut report = ProcessStatusReport::default();
        // Keeps the comma-separated query string of one request short.
        for batch in ids.chunks(50) {
            let joined = batch
                .iter()
                .map(|id| id.0.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let url = self.api_url("/services/data/v2.0/process/status");
            let response: StatusResponse = self
                .call_json("process status", |http| {
                    http.get(&url).query(&[("processIds", joined.as_str())])
                })
                .await?;
            for (id, state) in response.status {
                let state = parse_process_state(&id, &state);
                report.states.insert(id, state);
            }
            report.errors.extend(response.errors);
        }
        Ok(report)
    }

    /// Finds users by email, following continuation pages. Collects
    /// [`Client::users_by_email_stream`].
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url, emails = emails.len()))]
    pub async fn find_users_by_email(&self, emails: &[String]) -> Result<Vec<User>, Error> {
        self.users_by_email_stream(emails).try_collect().await
    }

    /// Lists the company's series.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url))]
    pub async fn list_series(&self) -> Result<Vec<Series>, Error> {
        let url = self.api_url("/api/v2/series/list");
        let page: Hits<Series> = self.call_json("series list", |http| http.get(&url)).await?;
        Ok(page.hits)
    }

    /// Lists the modules of one series.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url, series_id))]
    pub async fn list_modules(&self, series_id: &str) -> Result<Vec<Module>, Error> {
        let mut url = self.api_url("/api/v2/series/");
        url.push_str(&url_path_segment(series_id));
        url.push_str("/list");
        let page: Hits<Module> = self.call_json("module list", |http| http.get(&url)).await?;
        Ok(page.hits)
    }

    /// Reads a learner's whole xAPI history, following `more` links. Collects
    /// [`Client::statements_stream`].
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url))]
    pub async fn learner_statements(&self, email: &str) -> Result<Vec<Statement>, Error> {
        let statements: Vec<Statement> = self.statements_stream(email).try_collect().await?;
        tracing::debug!(statements = statements.len(), "read learner statements");
        Ok(statements)
    }

    /// Reads a learner's rows of the OData reporting feed, which is the only source of scores.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url))]
    pub async fn learner_performances(
        &self,
        email: &str,
    ) -> Result<Vec<LearnerModulePerformance>, Error> {
        // OData string literals escape a quote by doubling it.
        let filter = format!("LearnerEmailId eq '{}'", email.replace('\'', "''"));
        let url = format!(
            "{}/Odata.svc/LearnerModulePerformances",
            self.inner.admin_base
        );
        let mut page = self
            .reporting_call(|http| {
                http.get(&url)
                    .query(&[("$filter", filter.as_str()), ("$format", "json")])
            })
            .await?;

        let mut rows = Vec::new();
        let mut pages = 1;
        loop {
            rows.append(&mut page.results);
            let Some(next) = page.next.filter(|n| !n.is_empty()) else {
                break;
            };
            if pages >= crate::paging::MAX_PAGES {
                return Err(Error::TooManyPages {
                    what: "OData performance",
                    pages,
                });
            }
            let next = self.repoint(&next, &self.inner.admin_base, "OData performance")?;
            page = self.reporting_call(|http| http.get(&next)).await?;
            pages += 1;
        }
        Ok(rows)
    }

    /// Builds a learner's progress per module: status from xAPI verbs, scores and percentages
    /// from the reporting feed, names and module types from the catalog.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url))]
    pub async fn learner_progress(&self, email: &str) -> Result<Vec<CourseProgress>, Error> {
        let statements = self.learner_statements(email).await?;
        let performances = self.learner_performances(email).await?;
        let catalog = self.catalog().await?;
        Ok(progress::merge(&statements, &performances, &catalog))
    }

    async fn catalog(&self) -> Result<Arc<Catalog>, Error> {
        let mut cached = self.inner.catalog.lock().await;
        let now = self.inner.clock.now();
        if let Some((fetched_at, catalog)) = cached.as_ref()
            && now.saturating_duration_since(*fetched_at) < CATALOG_TTL
        {
            return Ok(Arc::clone(catalog));
        }
        let mut series_modules = Vec::new();
        for series in self.list_series().await? {
            let modules = self.list_modules(&series.id).await?;
            series_modules.push((series, modules));
        }
        let catalog = Arc::new(Catalog::new(series_modules));
        *cached = Some((now, Arc::clone(&catalog)));
        Ok(catalog)
    }

    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("{}{}", self.inner.api_base, path)
    }

    /// Regional REST host of the tenant, without a trailing slash.
    pub(crate) fn api_base(&self) -> &str {
        &self.inner.api_base
    }

    /// Learning-site host of the tenant, the one tenant label that is safe to log.
    pub(crate) fn ls_url(&self) -> &str {
        &self.inner.config.ls_url
    }

    /// Moves a continuation URL onto `base`, keeping its path and query. MindTickle returns
    /// these on the global host even for US tenants, and the global host fails them with 500.
    pub(crate) fn repoint(
        &self,
        link: &str,
        base: &str,
        what: &'static str,
    ) -> Result<String, Error> {
        let parsed = url::Url::parse(link)
            .or_else(|_| url::Url::parse(&format!("{base}/")).and_then(|b| b.join(link)))
            .map_err(|e| Error::decode(what, format!("invalid continuation link {link:?}: {e}")))?;
        let mut repointed = format!("{base}{}", parsed.path());
        if let Some(query) = parsed.query() {
            repointed.push('?');
            repointed.push_str(query);
        }
        Ok(repointed)
    }

    /// Sends an authenticated API request and decodes its JSON body.
    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        what: &'static str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<T, Error> {
        let reply = self.call(what, &build).await?;
        decode(what, &reply)
    }

    /// Sends a request with the bearer token, re-authenticating once on 401, and on 403 when
    /// the token is old enough that the 403 most likely means it expired.
    async fn call(
        &self,
        what: &'static str,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Reply, Error> {
        let token = self.token().await?;
        let reply = self.send_with(what, build, &token).await?;
        let status = reply.status;
        let reauthenticate = status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::FORBIDDEN && token.is_aged(self.inner.clock.now()));
        if !reauthenticate {
            return check_status(reply);
        }

        tracing::info!(
            status = status.as_u16(),
            "token rejected; re-authenticating once"
        );
        let token = self.replace_token(&token).await?;
        let reply = self.send_with(what, build, &token).await?;
        check_status(reply)
    }

    async fn send_with(
        &self,
        what: &'static str,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
        token: &CachedToken,
    ) -> Result<Reply, Error> {
        let with_token =
            |http: &reqwest::Client| build(http).bearer_auth(token.value.expose_secret());
        self.send(what, &with_token).await
    }

    async fn reporting_call(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<ODataPage, Error> {
        let config = &self.inner.config;
        let with_login = |http: &reqwest::Client| {
            build(http).basic_auth(
                &config.reporting_user,
                Some(config.reporting_password.expose_secret()),
            )
        };
        let reply = self.send("OData performance", &with_login).await?;
        let reply = check_status(reply)?;
        let envelope: ODataEnvelope = decode("OData performance", &reply)?;
        Ok(envelope.d)
    }

    /// Sends one request through the gate and retries its transient failures by the retry
    /// policy. Returns the reply of any status except 429 and 5xx, which become errors, so
    /// callers can still act on 401 and 403.
    async fn send(
        &self,
        what: &'static str,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Reply, Error> {
        let mut attempt: u32 = 1;
        loop {
            self.pass_gate().await?;
            let error = match self.send_once(build).await {
                Ok(reply) if reply.status == StatusCode::TOO_MANY_REQUESTS => {
                    let error = check_status(reply)
                        .err()
                        .unwrap_or(Error::RateLimited { retry_after: None });
                    if let (Error::RateLimited { retry_after }, Some(gate)) = (&error, &self.gate) {
                        gate.on_rate_limited(*retry_after);
                    }
                    return Err(error);
                }
                Ok(reply) if reply.status.is_server_error() => {
                    Error::from_response(reply.status, &reply.headers, &reply.body)
                }
                Ok(reply) => return Ok(reply),
                Err(error) if error.is_transient() => error,
                Err(error) => return Err(error),
            };
            if attempt > self.retry.max_retries {
                tracing::warn!(
                    ls_url = %self.inner.config.ls_url,
                    request = what,
                    attempts = attempt,
                    failure = transient_kind(&error),
                    "MindTickle request failed on every attempt; giving up"
                );
                return Err(error);
            }
            let delay = self.retry.backoff(attempt);
            // Only the status or error kind is logged: server messages and URLs may contain
            // learner emails.
            tracing::warn!(
                ls_url = %self.inner.config.ls_url,
                request = what,
                attempt,
                max_attempts = self.retry.max_retries.saturating_add(1),
                failure = transient_kind(&error),
                delay_ms = delay.as_millis() as u64,
                "MindTickle request failed transiently; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Waits for the request gate, if any, and turns its rejection into an error.
    async fn pass_gate(&self) -> Result<(), Error> {
        let Some(gate) = &self.gate else {
            return Ok(());
        };
        gate.acquire().await.map_err(|rejected| {
            tracing::info!(
                ls_url = %self.inner.config.ls_url,
                "request budget exhausted; MindTickle request not sent"
            );
            Error::BudgetExhausted {
                not_before: rejected.not_before,
            }
        })
    }

    /// Sends one attempt and reads its whole body within the request timeout. The timeout is
    /// enforced here instead of through `RequestBuilder::timeout`, which would replace the
    /// timeout of the shared `reqwest::Client` instead of adding to it.
    async fn send_once(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Reply, Error> {
        let exchange = async {
            let response = build(&self.inner.http)
                .send()
                .await
                .map_err(Error::from_reqwest)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(Error::from_reqwest)?;
            Ok(Reply {
                status,
                headers,
                body: body.into(),
            })
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .unwrap_or(Err(Error::Timeout))
    }

    /// Returns the cached token, fetching one when none is cached or it is due for refresh.
    async fn token(&self) -> Result<Arc<CachedToken>, Error> {
        let mut current = self.inner.token.current.lock().await;
        if let Some(token) = current.as_ref()
            && !token.is_due(self.inner.clock.now())
        {
            return Ok(Arc::clone(token));
        }
        let token = Arc::new(self.fetch_token().await?);
        *current = Some(Arc::clone(&token));
        Ok(token)
    }

    /// Replaces a token the server rejected. When another caller already replaced it, that
    /// newer token is returned, so a burst of rejections costs one token request.
    async fn replace_token(&self, rejected: &Arc<CachedToken>) -> Result<Arc<CachedToken>, Error> {
        let mut current = self.inner.token.current.lock().await;
        if let Some(token) = current.as_ref()
            && !Arc::ptr_eq(token, rejected)
            && !token.is_due(self.inner.clock.now())
        {
            return Ok(Arc::clone(token));
        }
        *current = None;
        let token = Arc::new(self.fetch_token().await?);
        *current = Some(Arc::clone(&token));
        Ok(token)
    }

    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url))]
    async fn fetch_token(&self) -> Result<CachedToken, Error> {
        let config = &self.inner.config;
        let body = json!({
            "api_key": config.api_key,
            "secret_key": config.secret_key.expose_secret(),
            "ls_url": config.ls_url,
        });
        let url = self.api_url("/services/data/auth_token");
        let issued_at = self.inner.clock.now();
        let reply = self
            .send("token", &|http: &reqwest::Client| {
                http.request(Method::POST, &url).json(&body)
            })
            .await?;
        let reply = match check_status(reply) {
            Err(Error::Api {
                status: 404,
                message,
                request_id,
            }) => {
                return Err(Error::Api {
                    status: 404,
                    message: format!(
                        "{message} (learning site {} on {}; a tenant hosted in another region \
                         needs that region's API host)",
                        config.ls_url, self.inner.api_base
                    ),
                    request_id,
                });
            }
            other => other?,
        };
        let token: TokenResponse = decode("token", &reply)?;
        tracing::debug!(expires_in = token.expires_in, "obtained MindTickle token");
        Ok(CachedToken {
            value: SecretString::from(token.token),
            issued_at,
            lifetime: Duration::from_secs(token.expires_in),
        })
    }
}

fn parse_process_state(id: &ProcessId, raw: &str) -> ProcessState {
    match raw {
        "QUEUED" => ProcessState::Queued,
        "IN_PROGRESS" => ProcessState::InProgress,
        "SUCCESS" => ProcessState::Success,
        "FAILED" => ProcessState::Failed,
        other => {
            // NOTE: only SUCCESS is confirmed for the live API; an unknown state is treated as
            // unfinished so callers keep polling within their own deadline.
            tracing::warn!(process_id = %id, state = other, "unknown process state; treating it as in progress");
            ProcessState::InProgress
        }
    }
}

/// Passes a success reply through, and turns any other into an [`Error`].
fn check_status(reply: Reply) -> Result<Reply, Error> {
    let status = reply.status;
    if status.is_success() {
        return Ok(reply);
    }
    let error = Error::from_response(status, &reply.headers, &reply.body);
    tracing::warn!(
        status = status.as_u16(),
        request_id = reply
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        "MindTickle request failed"
    );
    Err(error)
}

fn decode<T: DeserializeOwned>(what: &'static str, reply: &Reply) -> Result<T, Error> {
    serde_json::from_slice(&reply.body).map_err(|e| Error::decode(what, e))
}

/// Names a transient failure for logs without its message, which may quote request data.
fn transient_kind(error: &Error) -> String {
    match error {
        Error::Api { status, .. } => format!("status {status}"),
        Error::Timeout => "timeout".to_owned(),
        Error::Transport(error) if error.is_connect() => "connection failed".to_owned(),
        _ => "transport error".to_owned(),
    }
}

/// Percent-encodes an id for use as one path segment.
fn url_path_segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
