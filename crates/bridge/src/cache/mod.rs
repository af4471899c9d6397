//! The tenant cache. Keys are `tenant:{<id>}:<resource>:<generation>:<key>`; the braces are a
//! Redis Cluster hash tag, so one tenant's keys share a slot. Invalidating a tenant bumps its
//! generation, which orphans every old key in O(1) with no key scan.

mod in_process;

use std::time::Duration;

use crate::tenancy::TenantId;

pub use in_process::InProcessCache;

/// Resources that may be cached. Quiz results are deliberately absent, because they are never cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheResource {
    Roster,
    CourseCatalog,
}

impl CacheResource {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResource::Roster => "roster",
            CacheResource::CourseCatalog => "catalog",
        }
    }

    /// Time to live: roster 10 minutes, course catalog 30 minutes.
    pub fn ttl(self) -> Duration {
        match self {
            CacheResource::Roster => Duration::from_secs(10 * 60),
            CacheResource::CourseCatalog => Duration::from_secs(30 * 60),
        }
    }
}

/// Builds the key of one cached value. `TenantId` admits no `{`, `}` or `:`, so no key of one
/// tenant can be spelled from another tenant's id.
pub fn cache_key(tenant: &TenantId, resource: CacheResource, generation: u64, key: &str) -> String {
    format!(
        "tenant:{{{tenant}}}:{}:{generation}:{key}",
        resource.as_str()
    )
}

/// The cache port. A closed enum, because the set of backends is closed: in-process now, Redis
/// where configured.
#[derive(Clone)]
pub enum TenantCache {
    InProcess(InProcessCache),
}

impl TenantCache {
    pub fn in_process() -> TenantCache {
        TenantCache::InProcess(InProcessCache::default())
    }

    pub async fn get(
        &self,
        tenant: &TenantId,
        resource: CacheResource,
        key: &str,
    ) -> Option<Vec<u8>> {
        match self {
            TenantCache::InProcess(cache) => cache.get(tenant, resource, key),
        }
    }

    pub async fn set(&self, tenant: &TenantId, resource: CacheResource, key: &str, value: Vec<u8>) {
        match self {
            TenantCache::InProcess(cache) => cache.set(tenant, resource, key, value),
        }
    }

    pub async fn invalidate_tenant(&self, tenant: &TenantId) {
        match self {
            TenantCache::InProcess(cache) => cache.invalidate_tenant(tenant),
        }
    }

    /// Returns true when the backend responds.
    pub async fn ping(&self) -> bool {
        match self {
            TenantCache::InProcess(_) => true,
        }
    }
}
