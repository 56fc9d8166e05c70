//! Filling and reading a real etcd backend from a test, blocking, every call
//! under a deadline: puts that remember what etcd acknowledged (so a test can
//! prove no acknowledged value was lost by a repair), and each member's own
//! backend figures from its Status (dbSize, dbSizeInUse, leader).

use std::collections::BTreeMap;
use std::time::Duration;

/// The deadline of every call.
const DEADLINE: Duration = Duration::from_secs(10);

/// A blocking etcd client over one or more plain endpoints.
pub struct Kv {
    rt: tokio::runtime::Runtime,
    client: etcd_client::Client,
}

/// One member's backend as its own Status reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// The file's size (dbSize).
    pub db_size: u64,
    /// The pages in use (dbSizeInUse).
    pub in_use: u64,
    /// This member's id.
    pub member_id: u64,
    /// The leader's id, as this member sees it.
    pub leader: u64,
}

impl Backend {
    /// Whether this member is the leader.
    pub fn is_leader(&self) -> bool {
        self.member_id == self.leader
    }
}

/// What the fill loop saw: the last acknowledged value of every key, and the
/// error that stopped it.
#[derive(Debug, Default)]
pub struct Filled {
    /// Key → the last value etcd acknowledged for it.
    pub acked: BTreeMap<String, Vec<u8>>,
    /// How many puts were acknowledged.
    pub puts: usize,
    /// The error that ended the loop (None: it ran out of attempts).
    pub stopped_by: Option<String>,
    /// The put that error answered: key and value. etcd may have applied it
    /// all the same (a put refused with NOSPACE by the member's applier is
    /// applied before the error is returned), so its key may hold either
    /// value.
    pub refused: Option<(String, Vec<u8>)>,
}

impl Filled {
    /// The keys whose value read through `kv` is neither the acknowledged
    /// one nor, for the refused put's key, the refused value; and whether
    /// the refused put was found applied.
    pub fn lost(&self, kv: &mut Kv) -> (Vec<String>, bool) {
        let mut lost = Vec::new();
        let mut refused_applied = false;
        for (k, v) in &self.acked {
            let got = kv.get(k);
            if got.as_deref() == Some(v.as_slice()) {
                continue;
            }
            match &self.refused {
                Some((rk, rv)) if rk == k && got.as_deref() == Some(rv.as_slice()) => {
                    refused_applied = true;
                }
                _ => lost.push(k.clone()),
            }
        }
        if let Some((rk, rv)) = &self.refused
            && !self.acked.contains_key(rk)
            && kv.get(rk).as_deref() == Some(rv.as_slice())
        {
            refused_applied = true;
        }
        (lost, refused_applied)
    }
}

/// A value of `size` bytes that starts with `tag` and a colon, so that a
/// test can tell which write a value read back came from.
pub fn value(tag: &str, size: usize) -> Vec<u8> {
    let mut v = format!("{tag}:").into_bytes();
    // Not all one byte: nothing in etcd compresses, but keep it honest.
    let mut x: u32 = tag
        .bytes()
        .fold(7, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    while v.len() < size {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        v.push(b'a' + (x >> 16) as u8 % 26);
    }
    v
}

impl Kv {
    /// A client over `endpoints` (URLs); panics when no runtime can be built.
    pub fn connect(endpoints: &[String]) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(DEADLINE);
        let client = rt
            .block_on(etcd_client::Client::connect(endpoints, Some(opts)))
            .unwrap_or_else(|e| panic!("connect {endpoints:?}: {e}"));
        Self { rt, client }
    }

    /// Puts `key`; the error's text when etcd did not acknowledge it.
    pub fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), String> {
        let c = &mut self.client;
        self.rt.block_on(async {
            match tokio::time::timeout(DEADLINE, c.put(key, value, None)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {DEADLINE:?}")),
            }
        })
    }

    /// The value of `key`, None when absent; panics when etcd does not answer.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        let c = &mut self.client;
        self.rt.block_on(async {
            let r = tokio::time::timeout(DEADLINE, c.get(key, None))
                .await
                .unwrap_or_else(|_| panic!("get {key}: no answer within {DEADLINE:?}"))
                .unwrap_or_else(|e| panic!("get {key}: {e}"));
            r.kvs().first().map(|kv| kv.value().to_vec())
        })
    }

    /// Deletes every key under `prefix`; how many were deleted.
    pub fn delete_prefix(&mut self, prefix: &str) -> Result<i64, String> {
        let c = &mut self.client;
        self.rt.block_on(async {
            let opts = etcd_client::DeleteOptions::new().with_prefix();
            match tokio::time::timeout(DEADLINE, c.delete(prefix, Some(opts))).await {
                Ok(Ok(r)) => Ok(r.deleted()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {DEADLINE:?}")),
            }
        })
    }

    /// Compacts the history to the current revision, physically (every
    /// member has dropped it from its backend when this returns): the pages
    /// of deleted and overwritten values become free pages.
    pub fn compact_now(&mut self) -> Result<i64, String> {
        let c = &mut self.client;
        self.rt.block_on(async {
            let r = tokio::time::timeout(DEADLINE, c.get("compact-probe", None))
                .await
                .map_err(|_| format!("no answer within {DEADLINE:?}"))?
                .map_err(|e| e.to_string())?;
            let rev = r.header().map_or(0, |h| h.revision());
            let opts = etcd_client::CompactionOptions::new().with_physical();
            tokio::time::timeout(DEADLINE, c.compact(rev, Some(opts)))
                .await
                .map_err(|_| format!("no answer within {DEADLINE:?}"))?
                .map_err(|e| e.to_string())?;
            Ok(rev)
        })
    }

    /// Puts `keys` keys round-robin (`prefix/0` … `prefix/{keys-1}`), each
    /// value `size` bytes, over and over, until a put fails or `max_puts`
    /// were acknowledged: overwrites grow the history, not the live data.
    pub fn overwrite_until_refused(
        &mut self,
        prefix: &str,
        keys: usize,
        size: usize,
        max_puts: usize,
    ) -> Filled {
        let mut f = Filled::default();
        for n in 0..max_puts {
            let key = format!("{prefix}/{}", n % keys);
            let v = value(&format!("{key}#{n}"), size);
            match self.put(&key, v.clone()) {
                Ok(()) => {
                    f.acked.insert(key, v);
                    f.puts += 1;
                }
                Err(e) => {
                    f.stopped_by = Some(e);
                    f.refused = Some((key, v));
                    break;
                }
            }
        }
        f
    }

    /// Puts new keys `prefix/N` of `size` bytes until a put fails or
    /// `max_puts` were acknowledged: live data, nothing to compact.
    pub fn add_until_refused(&mut self, prefix: &str, size: usize, max_puts: usize) -> Filled {
        let mut f = Filled::default();
        for n in 0..max_puts {
            let key = format!("{prefix}/{n:06}");
            let v = value(&key, size);
            match self.put(&key, v.clone()) {
                Ok(()) => {
                    f.acked.insert(key, v);
                    f.puts += 1;
                }
                Err(e) => {
                    f.stopped_by = Some(e);
                    f.refused = Some((key, v));
                    break;
                }
            }
        }
        f
    }

    /// The keys of `want` whose value read back is not the one acknowledged
    /// (missing or older), by key.
    pub fn lost(&mut self, want: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
        want.iter()
            .filter(|(k, v)| self.get(k).as_deref() != Some(v.as_slice()))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The backend figures of the member at `endpoint` (a URL), asked of it
/// alone; None when it does not answer in time.
pub fn backend(endpoint: &str) -> Option<Backend> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(DEADLINE);
        let mut c = etcd_client::Client::connect([endpoint], Some(opts))
            .await
            .ok()?;
        let s = tokio::time::timeout(DEADLINE, c.status())
            .await
            .ok()?
            .ok()?;
        Some(Backend {
            db_size: u64::try_from(s.db_size()).unwrap_or(0),
            in_use: u64::try_from(s.raft_used_db_size()).unwrap_or(0),
            member_id: s.header().map_or(0, |h| h.member_id()),
            leader: s.leader(),
        })
    })
}

/// Every member's backend, in the order of `endpoints`; panics naming the
/// member that does not answer.
pub fn backends(endpoints: &[String]) -> Vec<Backend> {
    endpoints
        .iter()
        .map(|ep| backend(ep).unwrap_or_else(|| panic!("{ep}: no Status answer")))
        .collect()
}

/// The alarms `etcdctl alarm list` prints through `endpoint` (`host:port`
/// or URL), one line each ("memberID:… alarm:NOSPACE").
pub fn alarms(endpoint: &str) -> Vec<String> {
    let out = super::etcdctl(endpoint, &["alarm", "list"]);
    assert!(out.status.success(), "alarm list: {}", super::text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sizes in MiB with one decimal, for messages.
pub fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}
