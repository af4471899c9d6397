//! Per-tenant connection settings.

use secrecy::SecretString;

/// Connection settings and credentials of one tenant's MindTickle.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// REST host of the tenant's region, such as `https://api.mindtickle.com` or
    /// `https://api.prod-us.mindtickle.com`.
    pub api_base: String,
    /// Host of the OData reporting feed, such as `https://admin.mindtickle.com`.
    pub admin_base: String,
    /// Bare learning-site host, such as `acme.mindtickle.com`.
    pub ls_url: String,
    pub api_key: String,
    pub secret_key: SecretString,
    /// HTTP Basic login of the reporting API, separate from the key pair.
    pub reporting_user: String,
    pub reporting_password: SecretString,
}
