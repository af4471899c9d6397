use uuid::Uuid;

use crate::app::AppState;
use crate::tenancy::{SystemRole, SystemTx};

/// The kinds of refused attempt kept in the security audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEventKind {
    /// A token issued for one tenant was used on another tenant's path.
    CrossTenantToken,
    /// PostgreSQL refused a statement under a row-level security policy.
    PolicyViolation,
    /// An HR webhook event named a tenant other than the one whose secret signed the request.
    CrossTenantWebhook,
}

impl SecurityEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityEventKind::CrossTenantToken => "cross_tenant_token",
            SecurityEventKind::PolicyViolation => "policy_violation",
            SecurityEventKind::CrossTenantWebhook => "cross_tenant_webhook",
        }
    }
}

/// Records a refused attempt three ways: an audit row, a metric and a warning in the log.
///
/// A failure to write the audit row is logged at error level and does not change the answer
/// to the request, which is already a refusal.
pub async fn record_security_event(
    state: &AppState,
    kind: SecurityEventKind,
    request_id: Option<&str>,
    principal_tenant: Option<&str>,
    target_tenant: Option<&str>,
    detail: &str,
) {
    metrics::counter!("bridge_security_events_total", "kind" => kind.as_str()).increment(1);
    tracing::warn!(
        security_event = kind.as_str(),
        principal_tenant,
        target_tenant,
        request_id,
        detail,
        "refused cross-tenant attempt"
    );

    // PostgreSQL text cannot hold NUL, which a request path can carry percent-encoded; without
    // this the audit row would be lost exactly for such a request.
    let clean = |value: Option<&str>| value.map(|text| text.replace('\0', "\u{fffd}"));
    let (request_id, principal_tenant, target_tenant) = (
        clean(request_id),
        clean(principal_tenant),
        clean(target_tenant),
    );
    let detail = detail.replace('\0', "\u{fffd}");
    let insert = async {
        let mut tx = SystemTx::begin(state.pool(), SystemRole::Anonymous).await?;
        sqlx::query(
            "INSERT INTO security_events (event_id, kind, request_id, principal_tenant, target_tenant, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(kind.as_str())
        .bind(&request_id)
        .bind(&principal_tenant)
        .bind(&target_tenant)
        .bind(&detail)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    };
    if let Err(error) = insert.await {
        tracing::error!(%error, security_event = kind.as_str(), request_id = request_id.as_deref(), "failed to write the security audit row");
    }
}
