use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;

use super::{CacheResource, cache_key};
use crate::tenancy::TenantId;

/// Upper bound on entries. When it is reached, expired entries are dropped, and if that is not
/// enough the whole map is cleared; a cache may always forget.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (Instant, Vec<u8>)>,
    generations: HashMap<TenantId, u64>,
}

/// The in-process backend, with the same keys, TTLs and generation rule as the Redis one.
#[derive(Clone, Default)]
pub struct InProcessCache {
    inner: Arc<Mutex<Inner>>,
}

impl InProcessCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves only cache entries behind, which are safe to reuse.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, tenant: &TenantId, resource: CacheResource, key: &str) -> Option<Vec<u8>> {
        let mut inner = self.lock();
        let generation = inner.generations.get(tenant).copied().unwrap_or(0);
        let full_key = cache_key(tenant, resource, generation, key);
        match inner.entries.get(&full_key) {
            Some((expires, value)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                inner.entries.remove(&full_key);
                None
            }
            None => None,
        }
    }

    pub fn set(&self, tenant: &TenantId, resource: CacheResource, key: &str, value: Vec<u8>) {
        let mut inner = self.lock();
        let generation = inner.generations.get(tenant).copied().unwrap_or(0);
        if inner.entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            inner.entries.retain(|_, (expires, _)| *expires > now);
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
        }
        let expires = Instant::now() + jittered(resource.ttl());
        inner.entries.insert(
            cache_key(tenant, resource, generation, key),
            (expires, value),
        );
    }

    pub fn invalidate_tenant(&self, tenant: &TenantId) {
        let mut inner = self.lock();
        *inner.generations.entry(tenant.clone()).or_insert(0) += 1;
    }
}

/// Shortens a TTL by up to 10% at random, so entries written together do not expire together.
fn jittered(ttl: Duration) -> Duration {
    let tenth = ttl.as_millis() as u64 / 10;
    ttl - Duration::from_millis(rand::rng().random_range(0..=tenth))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(raw: &str) -> TenantId {
        TenantId::parse(raw).unwrap()
    }

    #[test]
    fn tenants_do_not_share_entries() {
        let cache = InProcessCache::default();
        cache.set(
            &tenant("acme"),
            CacheResource::Roster,
            "all",
            b"acme".to_vec(),
        );
        assert_eq!(
            cache.get(&tenant("globex"), CacheResource::Roster, "all"),
            None
        );
        assert_eq!(
            cache.get(&tenant("acme"), CacheResource::Roster, "all"),
            Some(b"acme".to_vec())
        );
    }

    #[test]
    fn invalidation_is_per_tenant() {
        let cache = InProcessCache::default();
        cache.set(&tenant("acme"), CacheResource::Roster, "all", b"a".to_vec());
        cache.set(
            &tenant("globex"),
            CacheResource::Roster,
            "all",
            b"g".to_vec(),
        );
        cache.invalidate_tenant(&tenant("acme"));
        assert_eq!(
            cache.get(&tenant("acme"), CacheResource::Roster, "all"),
            None
        );
        assert_eq!(
            cache.get(&tenant("globex"), CacheResource::Roster, "all"),
            Some(b"g".to_vec())
        );
    }

    #[test]
    fn key_carries_hash_tag() {
        assert_eq!(
            cache_key(&tenant("acme"), CacheResource::CourseCatalog, 3, "series"),
            "tenant:{acme}:catalog:3:series"
        );
    }
}
