//! The per-tenant MindTickle client.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::json;
use tokio::sync::Mutex;
use tracing::instrument;

use crate::{
    config::TenantConfig,
    error::Error,
    model::{
        CourseProgress, LearnerModulePerformance, Module, ProcessError, ProcessId, ProcessState,
        ProcessStatusReport, Series, Statement, User, UserUpsert, WireStatement,
    },
    progress::{self, Catalog},
    token::{CachedToken, Clock, SystemClock, TokenSlot},
};

/// Upper bound of every request, on top of whatever the shared `reqwest::Client` sets.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// MindTickle's bulk user calls take at most this many users or emails.
const MAX_BATCH: usize = 100;
/// MindTickle's default page of the user search; the maximum is not documented.
const USER_PAGE_SIZE: usize = 50;
/// MindTickle rejects larger statement pages with 400.
const STATEMENT_PAGE_SIZE: usize = 20;
/// Stops a listing whose continuation links never end.
const MAX_PAGES: usize = 1000;
/// How long the series and module catalog is reused by `learner_progress`.
const CATALOG_TTL: Duration = Duration::from_secs(15 * 60);

/// A MindTickle client for one tenant. Clones share the token and catalog caches.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
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
#[serde(rename_all = "camelCase")]
struct UserPage {
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    next_records_url: Option<String>,
}

#[derive(Deserialize)]
struct Hits<T> {
    #[serde(default = "Vec::new")]
    hits: Vec<T>,
}

#[derive(Deserialize)]
struct StatementPage {
    #[serde(default)]
    statements: Vec<WireStatement>,
    #[serde(default)]
    more: Option<String>,
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
        }
    }

    /// Creates or updates users keyed by email, in batches of at most 100. The changes apply
    /// asynchronously; poll [`Client::process_status`] with the returned ids.
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

    /// Finds users by email, following continuation pages.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url, emails = emails.len()))]
    pub async fn find_users_by_email(&self, emails: &[String]) -> Result<Vec<User>, Error> {
        let mut users = Vec::new();
        for batch in emails.chunks(MAX_BATCH) {
            let body = json!({ "emails": batch });
            let url = self.api_url("/services/data/v4.0/mtobjects/Users");
            let limit = USER_PAGE_SIZE.to_string();
            let mut page: UserPage = self
                .call_json("user search", |http| {
                    http.post(&url)
                        .query(&[("limit", limit.as_str())])
                        .json(&body)
                })
                .await?;
            let mut pages = 1;
            loop {
                users.append(&mut page.users);
                let Some(next) = page.next_records_url.filter(|u| !u.is_empty()) else {
                    break;
                };
                if pages >= MAX_PAGES {
                    return Err(Error::TooManyPages {
                        what: "user search",
                        pages,
                    });
                }
                let next = self.repoint(&next, &self.inner.api_base, "user search")?;
                page = self
                    .call_json("user search", |http| http.get(&next))
                    .await?;
                pages += 1;
            }
        }
        Ok(users)
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

    /// Reads a learner's whole xAPI history, following `more` links.
    #[instrument(skip_all, fields(ls_url = %self.inner.config.ls_url))]
    pub async fn learner_statements(&self, email: &str) -> Result<Vec<Statement>, Error> {
        let agent = json!({ "mbox": format!("mailto:{email}") }).to_string();
        let limit = STATEMENT_PAGE_SIZE.to_string();
        let url = self.api_url("/services/data/v4.0/xapi/statements");
        let mut page: StatementPage = self
            .call_json("xAPI statements", |http| {
                http.get(&url)
                    .query(&[("agent", agent.as_str()), ("limit", limit.as_str())])
            })
            .await?;

        let mut statements = Vec::new();
        let mut pages = 1;
        loop {
            statements.extend(page.statements.drain(..).map(Statement::from));
            let Some(more) = page.more.filter(|m| !m.is_empty()) else {
                break;
            };
            if pages >= MAX_PAGES {
                return Err(Error::TooManyPages {
                    what: "xAPI statements",
                    pages,
                });
            }
            let more = self.repoint(&more, &self.inner.api_base, "xAPI statements")?;
            page = self
                .call_json("xAPI statements", |http| http.get(&more))
                .await?;
            pages += 1;
        }
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
            if pages >= MAX_PAGES {
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

    fn api_url(&self, path: &str) -> String {
        format!("{}{}", self.inner.api_base, path)
    }

    /// Moves a continuation URL onto `base`, keeping its path and query. MindTickle returns
    /// these on the global host even for US tenants, and the global host fails them with 500.
    fn repoint(&self, link: &str, base: &str, what: &'static str) -> Result<String, Error> {
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
    async fn call_json<T: DeserializeOwned>(
        &self,
        what: &'static str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<T, Error> {
        let response = self.call(&build).await?;
        decode(what, response).await
    }

    /// Sends a request with the bearer token, re-authenticating once on 401, and on 403 when
    /// the token is old enough that the 403 most likely means it expired.
    async fn call(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let token = self.token().await?;
        let response = self.send_with(build, &token).await?;
        let status = response.status();
        let retry = status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::FORBIDDEN && token.is_aged(self.inner.clock.now()));
        if !retry {
            return check_status(response).await;
        }

        tracing::info!(
            status = status.as_u16(),
            "token rejected; re-authenticating once"
        );
        let token = self.replace_token(&token).await?;
        let response = self.send_with(build, &token).await?;
        check_status(response).await
    }

    async fn send_with(
        &self,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
        token: &CachedToken,
    ) -> Result<Response, Error> {
        build(&self.inner.http)
            .bearer_auth(token.value.expose_secret())
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(Error::from_reqwest)
    }

    async fn reporting_call(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<ODataPage, Error> {
        let config = &self.inner.config;
        let response = build(&self.inner.http)
            .basic_auth(
                &config.reporting_user,
                Some(config.reporting_password.expose_secret()),
            )
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(Error::from_reqwest)?;
        let response = check_status(response).await?;
        let envelope: ODataEnvelope = decode("OData performance", response).await?;
        Ok(envelope.d)
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
        let issued_at = self.inner.clock.now();
        let response = self
            .inner
            .http
            .request(Method::POST, self.api_url("/services/data/auth_token"))
            .json(&body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(Error::from_reqwest)?;
        let response = match check_status(response).await {
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
        let token: TokenResponse = decode("token", response).await?;
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

/// Passes a success response through, and turns any other into an [`Error`].
async fn check_status(response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(Error::from_reqwest)?;
    let error = Error::from_response(status, &headers, &body);
    tracing::warn!(
        status = status.as_u16(),
        request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        "MindTickle request failed"
    );
    Err(error)
}

async fn decode<T: DeserializeOwned>(what: &'static str, response: Response) -> Result<T, Error> {
    let body = response.bytes().await.map_err(Error::from_reqwest)?;
    serde_json::from_slice(&body).map_err(|e| Error::decode(what, e))
}

/// Percent-encodes an id for use as one path segment.
fn url_path_segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
