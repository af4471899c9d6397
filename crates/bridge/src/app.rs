//! Application state and the HTTP router assembled from each module's routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::cache::TenantCache;
use crate::config::Config;
use crate::events::Bus;
use crate::gateway::{JwtKeys, request_context_layer};
use crate::scim_api::ScimTokenCache;
use crate::sync::MindTickleAccounts;

/// Everything a request handler, job or relay may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    config: Config,
    jwt: JwtKeys,
    cache: TenantCache,
    bus: Bus,
    mindtickle: MindTickleAccounts,
    scim_tokens: ScimTokenCache,
    scim_limiter: ScimRateLimiter,
    metrics: PrometheusHandle,
}

/// Per-tenant limiter of inbound SCIM requests (GCRA, from the `governor` crate).
pub type ScimRateLimiter = Arc<governor::DefaultKeyedRateLimiter<crate::tenancy::TenantId>>;

impl AppState {
    pub fn new(pool: PgPool, config: Config, jwt: JwtKeys, bus: Bus) -> anyhow::Result<AppState> {
        let mindtickle = MindTickleAccounts::new(
            Duration::from_secs(config.mindtickle.request_timeout_secs),
            crate::sync::budget::BudgetLimits {
                per_second: config.mindtickle.requests_per_second,
                per_minute: config.mindtickle.requests_per_minute,
            },
            Duration::from_millis(config.mindtickle.budget_max_wait_ms),
            config.mindtickle.credentials_key.as_ref(),
            config.redis.url.as_ref(),
        )?;
        let quota = governor::Quota::per_second(
            std::num::NonZeroU32::new(config.scim.requests_per_second)
                .ok_or_else(|| anyhow::anyhow!("scim.requests_per_second must be at least 1"))?,
        )
        .allow_burst(
            std::num::NonZeroU32::new(config.scim.burst)
                .ok_or_else(|| anyhow::anyhow!("scim.burst must be at least 1"))?,
        );
        let scim_limiter = Arc::new(governor::RateLimiter::keyed(quota));
        Ok(AppState {
            inner: Arc::new(Inner {
                pool,
                config,
                jwt,
                cache: TenantCache::in_process(),
                bus,
                mindtickle,
                scim_tokens: ScimTokenCache::default(),
                scim_limiter,
                metrics: crate::telemetry::metrics_handle(),
            }),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.inner.jwt
    }

    pub fn cache(&self) -> &TenantCache {
        &self.inner.cache
    }

    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    pub fn mindtickle(&self) -> &MindTickleAccounts {
        &self.inner.mindtickle
    }

    pub fn scim_tokens(&self) -> &ScimTokenCache {
        &self.inner.scim_tokens
    }

    pub fn scim_limiter(&self) -> &ScimRateLimiter {
        &self.inner.scim_limiter
    }
}

#[derive(OpenApi)]
#[openapi(info(
    title = "Enablement Bridge",
    description = "Tenant-scoped API: course progress, quiz results and readiness reports. SCIM 2.0 lives under /scim/v2/{tenant}."
))]
struct ApiDoc;

/// Request ids are UUIDv7, so they sort by time in logs.
#[derive(Clone, Copy)]
struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        uuid::Uuid::now_v7()
            .to_string()
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

pub fn router(state: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::progress::router())
        .merge(crate::readiness::router())
        .merge(crate::sync::router())
        .merge(crate::scim_api::router())
        .merge(crate::admin::router())
        .merge(crate::webhooks::router())
        .split_for_parts();
    let openapi = Arc::new(openapi);

    let request_id = HeaderName::from_static("x-request-id");
    let config = state.config();
    let layers = ServiceBuilder::new()
        .layer(SetSensitiveHeadersLayer::new([header::AUTHORIZATION]))
        .layer(SetRequestIdLayer::new(
            request_id.clone(),
            MakeRequestUuidV7,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id,
                    tenant_id = tracing::field::Empty,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_context_layer,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout(),
        ))
        .layer(RequestBodyLimitLayer::new(config.server.body_limit_bytes));

    api.route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .layer(layers)
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Checks every backend the service needs and responds 503 when one is down.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(state.pool())
        .await
        .is_ok();
    let cache = state.cache().ping().await;
    let redis = match state.mindtickle().shared_budget() {
        Some(shared) => Some(shared.ping().await),
        None => None,
    };
    let status = if database && cache && redis != Some(false) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let describe = |up: bool| if up { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({
            "database": describe(database),
            "cache": describe(cache),
            "redis": redis.map_or("not configured", describe),
            "bus": "ok",
        })),
    )
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.inner.metrics.render(),
    )
}
