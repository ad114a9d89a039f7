//! The getaddrinfo cache: addresses by name and type, kept for their TTL,
//! bounded in entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::record::RecordType;

/// The default most entries.
pub(crate) const DEFAULT_MAX_ENTRIES: usize = 4096;

/// A TTL-respecting cache of addresses. Time is passed in (the base's
/// clock), so it is tested against a model without sleeping.
#[derive(Debug)]
pub(crate) struct Cache {
    map: HashMap<(String, RecordType), (Vec<IpAddr>, Instant)>,
    max: usize,
}

impl Default for Cache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_MAX_ENTRIES)
    }
}

impl Cache {
    pub(crate) fn with_capacity(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            max,
        }
    }

    fn key(name: &str, qtype: RecordType) -> (String, RecordType) {
        (name.trim_end_matches('.').to_ascii_lowercase(), qtype)
    }

    /// The cached addresses of `name`, if present and not expired at `now`.
    pub(crate) fn get(
        &mut self,
        name: &str,
        qtype: RecordType,
        now: Instant,
    ) -> Option<Vec<IpAddr>> {
        let k = Self::key(name, qtype);
        match self.map.get(&k) {
            Some((v, exp)) if *exp > now => Some(v.clone()),
            Some(_) => {
                self.map.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Stores addresses for `ttl` seconds (a TTL of 0 stores nothing).
    pub(crate) fn insert(
        &mut self,
        name: &str,
        qtype: RecordType,
        addrs: Vec<IpAddr>,
        ttl: u32,
        now: Instant,
    ) {
        if ttl == 0 || self.max == 0 {
            return;
        }
        if self.map.len() >= self.max {
            self.map.retain(|_, (_, exp)| *exp > now);
        }
        if self.map.len() >= self.max {
            // Still full: evict the entry closest to expiry.
            if let Some(k) = self
                .map
                .iter()
                .min_by_key(|(_, (_, exp))| *exp)
                .map(|(k, _)| k.clone())
            {
                self.map.remove(&k);
            }
        }
        let exp = now + Duration::from_secs(u64::from(ttl));
        self.map.insert(Self::key(name, qtype), (addrs, exp));
    }

    /// The number of entries (expired ones included until touched).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Empties the cache.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, bool, u8, u8),
        Get(u8, bool),
        Advance(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..6, any::<bool>(), 0u8..4, 0u8..30)
                .prop_map(|(n, t, a, ttl)| Op::Insert(n, t, a, ttl)),
            (0u8..6, any::<bool>()).prop_map(|(n, t)| Op::Get(n, t)),
            (0u16..20).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// The cache agrees with a plain map of (value, expiry), as long as
        /// it is big enough to hold every key.
        #[test]
        fn cache_matches_model(ops in proptest::collection::vec(op(), 0..200)) {
            let start = Instant::now();
            let mut now = start;
            let mut cache = Cache::with_capacity(64);
            let mut model: HashMap<(u8, bool), (Vec<IpAddr>, Instant)> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(n, t, a, ttl) => {
                        let name = if n % 2 == 0 { format!("N{n}.test.") } else { format!("n{n}.test") };
                        let qt = if t { RecordType::AAAA } else { RecordType::A };
                        let addrs = vec![IpAddr::from([10, 0, 0, a])];
                        cache.insert(&name, qt, addrs.clone(), u32::from(ttl), now);
                        if ttl > 0 {
                            model.insert((n, t), (addrs, now + Duration::from_secs(u64::from(ttl))));
                        }
                    }
                    Op::Get(n, t) => {
                        let qt = if t { RecordType::AAAA } else { RecordType::A };
                        let got = cache.get(&format!("n{n}.TEST"), qt, now);
                        let want = model.get(&(n, t)).filter(|(_, e)| *e > now).map(|(v, _)| v.clone());
                        prop_assert_eq!(got, want);
                    }
                    Op::Advance(s) => now += Duration::from_secs(u64::from(s)),
                }
            }
        }
    }

    #[test]
    fn a_full_cache_stays_bounded() {
        let now = Instant::now();
        let mut c = Cache::with_capacity(8);
        for i in 0..100u8 {
            c.insert(
                &format!("h{i}"),
                RecordType::A,
                vec![IpAddr::from([1, 1, 1, i])],
                60,
                now,
            );
            assert!(c.len() <= 8);
        }
        assert_eq!(
            c.get("h99", RecordType::A, now),
            Some(vec![IpAddr::from([1, 1, 1, 99])])
        );
        c.clear();
        assert_eq!(c.len(), 0);
    }
}
