//! Tenant identity and the tenant-scoped transaction.

mod registry;
mod tenant_id;
mod transaction;

pub use registry::{Tenant, TenantRegistry, TenantRegistryError};
pub use tenant_id::{TenantId, TenantIdError};
pub use transaction::{SystemRole, SystemTx, TENANT_ROLE, TenantTx};
