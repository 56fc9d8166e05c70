//! The content digest of a live cluster: a paged range read of every key and
//! value at one revision, hashed as [`ContentHasher`] does.

use std::time::{Duration, Instant};

use etcdplan_core::backup::{ContentDigest, ContentHasher};

use crate::io::{EtcdApi, EtcdError};
use crate::model::Endpoint;

/// Pairs per page: small enough for etcd's default 1.5 MiB request limit
/// with ordinary values, large enough to read a big keyspace in few calls.
const PAGE: i64 = 500;

/// Why the content could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A page failed (a compacted revision is among these).
    #[error("reading the keyspace at revision {revision}: {source}")]
    Etcd {
        /// The revision being read.
        revision: i64,
        /// What etcd said.
        #[source]
        source: EtcdError,
    },
    /// The whole read took longer than its deadline.
    #[error("reading the keyspace took longer than {0:?}")]
    Deadline(Duration),
}

/// Reads every key and value at `revision` (0: the member's current one)
/// from `endpoint`, page by page, all pages at the same revision, and
/// returns their digest and the revision read.
pub async fn content_digest(
    etcd: &dyn EtcdApi,
    endpoint: &Endpoint,
    revision: i64,
    deadline: Duration,
) -> Result<(ContentDigest, i64), ContentError> {
    let start = Instant::now();
    let mut hasher = ContentHasher::new();
    let mut revision = revision;
    let mut from: Vec<u8> = Vec::new();
    loop {
        if start.elapsed() > deadline {
            return Err(ContentError::Deadline(deadline));
        }
        let page = etcd
            .range_page(endpoint, &from, revision, PAGE)
            .await
            .map_err(|source| ContentError::Etcd { revision, source })?;
        if revision == 0 {
            revision = page.header_revision;
        }
        for (k, v) in &page.kvs {
            hasher.add(k, v);
        }
        match (page.more, page.kvs.last()) {
            (true, Some((last, _))) => {
                // The next key after `last`: `last` followed by a zero byte.
                from = last.clone();
                from.push(0);
            }
            _ => break,
        }
    }
    Ok((hasher.finish(), revision))
}
