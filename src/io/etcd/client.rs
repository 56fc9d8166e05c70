//! The real etcd API through etcd-client: one cached connection per member
//! endpoint, the client identity chosen per member during a CA rotation, and
//! every call under the deadlines of [`Timeouts`].

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    AlarmAction, AlarmType, Client, Compare, CompareOp, ConnectOptions, DowngradeOptions,
    MemberAddOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use tokio::sync::Mutex;

use super::error::call_error;
use super::{
    ApiAlarm, ApiHashKv, ApiMember, ApiStatus, ClientIdentity, ClientTls, DowngradeAction, EtcdApi,
    EtcdError, EtcdErrorKind, Timeouts,
};
use crate::live::{DowngradeInfo, LiveName};
use crate::model::{ClusterId, Endpoint, EtcdVersion, MemberId, MinorVersion};

/// The body of `GET /version`.
#[derive(serde::Deserialize)]
struct VersionDoc {
    /// "3.5.0", or "not_decided".
    etcdcluster: Option<String>,
}

/// The real etcd API through etcd-client, one client per member endpoint.
pub struct EtcdClient {
    timeouts: Timeouts,
    tls: std::sync::RwLock<Option<ClientTls>>,
    /// One client per endpoint, with the index of the identity it presents.
    clients: Mutex<HashMap<Endpoint, (Client, usize)>>,
    /// etcd auth: the user and password sent when connecting (never shown).
    user: Option<(String, String)>,
}

impl EtcdClient {
    /// A client set with these deadlines.
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            tls: std::sync::RwLock::new(None),
            clients: Mutex::new(HashMap::new()),
            user: None,
        }
    }

    /// The same, authenticating as `user` with `password` (etcd auth).
    #[must_use]
    pub fn with_user(mut self, user: String, password: String) -> Self {
        self.user = Some((user, password));
        self
    }

    /// The same, presenting this identity to members that serve https (each
    /// endpoint's own scheme decides, so a cluster mid-migration works).
    #[must_use]
    pub fn with_tls(self, tls: ClientTls) -> Self {
        if let Ok(mut t) = self.tls.write() {
            *t = Some(tls);
        }
        self
    }

    /// Presents this identity from now on (an apply that just created the CA);
    /// connections made before are dropped.
    pub async fn set_tls(&self, tls: ClientTls) {
        if let Ok(mut t) = self.tls.write() {
            *t = Some(tls);
        }
        self.clients.lock().await.clear();
    }

    fn options(
        &self,
        identity: Option<&(String, Option<ClientIdentity>)>,
        timeout: Duration,
    ) -> ConnectOptions {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(self.timeouts.connect)
            .with_timeout(timeout);
        if let Some((user, password)) = &self.user {
            opts = opts.with_user(user.clone(), password.clone());
        }
        match identity {
            Some((ca, id)) => {
                let tls = etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(ca.as_str()));
                // Without client-cert auth, the CA alone is enough.
                opts.with_tls(match id {
                    Some(id) => tls.identity(etcd_client::Identity::from_pem(
                        id.cert_pem.clone(),
                        id.key_pem.clone(),
                    )),
                    None => tls,
                })
            }
            None => opts,
        }
    }

    /// How many identities etcdplan may present: more than one during a CA
    /// rotation, when a new connection tries each in turn (a member takes the
    /// first from a CA it trusts) and one that fails is dropped, so the next
    /// call tries again.
    fn identities(&self) -> usize {
        self.tls
            .read()
            .ok()
            .and_then(|t| t.as_ref().map(|t| t.identities.len()))
            .unwrap_or(0)
    }

    /// The identity to present to `ep`: none over http; over https the first,
    /// or the one a probe found it accepts (`chosen`).
    fn identity(&self, ep: &Endpoint, chosen: usize) -> Option<(String, Option<ClientIdentity>)> {
        let tls = self.tls.read().ok().and_then(|t| t.clone())?;
        (ep.scheme == crate::model::Scheme::Https).then(|| {
            let id = tls.identities.get(chosen).cloned();
            (tls.ca_pem, id)
        })
    }

    async fn client(&self, ep: &Endpoint) -> Result<Client, EtcdError> {
        let mut map = self.clients.lock().await;
        if let Some((c, _)) = map.get(ep) {
            return Ok(c.clone());
        }
        let connect = |chosen| async move {
            let id = self.identity(ep, chosen);
            let opts = self.options(id.as_ref(), self.timeouts.request);
            Client::connect([ep.to_string()], Some(opts))
                .await
                .map_err(|e| call_error(ep, &e))
        };
        let tried = if ep.scheme == crate::model::Scheme::Https {
            self.identities().max(1)
        } else {
            1
        };
        let mut last = None;
        for chosen in 0..tried {
            let attempt = async {
                let mut c = connect(chosen).await?;
                if tried > 1 {
                    // The member's handshake accepts only a certificate from a
                    // CA it trusts: a cheap call tells whether this one is.
                    match tokio::time::timeout(self.timeouts.request, c.status()).await {
                        Err(_) => {
                            return Err(EtcdError::Timeout {
                                endpoint: ep.to_string(),
                                timeout: self.timeouts.request,
                            });
                        }
                        Ok(r) => {
                            r.map_err(|e| call_error(ep, &e))?;
                        }
                    }
                }
                Ok(c)
            };
            match attempt.await {
                Ok(c) => {
                    map.insert(ep.clone(), (c.clone(), chosen));
                    return Ok(c);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| EtcdError::Timeout {
            endpoint: ep.to_string(),
            timeout: self.timeouts.connect,
        }))
    }

    /// Runs one call with the client for `ep`, under the overall deadline.
    async fn with<T, F, Fut>(&self, ep: &Endpoint, f: F) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>> + Send,
    {
        let deadline = self.timeouts.connect + self.timeouts.request;
        let c = self.client(ep).await?;
        let result = match tokio::time::timeout(deadline, f(c)).await {
            Err(_) => Err(EtcdError::Timeout {
                endpoint: ep.to_string(),
                timeout: deadline,
            }),
            Ok(r) => r.map_err(|e| call_error(ep, &e)),
        };
        if result.is_err() && self.identities() > 1 {
            // A member restarted mid-rotation may no longer accept the
            // identity this connection presents.
            self.clients.lock().await.remove(ep);
        }
        result
    }

    /// One call on a connection of its own whose requests may take up to
    /// `deadline` (the shared connection's per-request timeout would cut a
    /// long defragmentation or compaction short).
    async fn with_deadline<T, F, Fut>(
        &self,
        ep: &Endpoint,
        deadline: Duration,
        f: F,
    ) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>> + Send,
    {
        self.client(ep).await?;
        let chosen = self.clients.lock().await.get(ep).map_or(0, |(_, i)| *i);
        let id = self.identity(ep, chosen);
        let opts = self.options(id.as_ref(), deadline);
        let endpoint = ep.to_string();
        let run = async {
            let c = Client::connect([endpoint.clone()], Some(opts)).await?;
            f(c).await
        };
        match tokio::time::timeout(deadline, run).await {
            Err(_) => Err(EtcdError::Timeout {
                endpoint,
                timeout: deadline,
            }),
            Ok(r) => r.map_err(|e| call_error(ep, &e)),
        }
    }
}

impl EtcdClient {
    /// `GET {ep}{path}` over http(s) under the deadlines: over https with
    /// the CA and each client identity in turn (a member takes the first
    /// from a CA it trusts), over http with none (a plain
    /// `listen-metrics-urls` listener). The body, when the status is 2xx.
    async fn http_text(&self, ep: &Endpoint, path: &str) -> Result<String, EtcdError> {
        let fail = |message: String| EtcdError::other(ep, message);
        let https = ep.scheme == crate::model::Scheme::Https;
        let tls = self.tls.read().ok().and_then(|t| t.clone());
        let identities: Vec<Option<ClientIdentity>> = match &tls {
            Some(t) if https && !t.identities.is_empty() => {
                t.identities.iter().cloned().map(Some).collect()
            }
            _ => vec![None],
        };
        let mut last = fail("no attempt".into());
        for id in identities {
            let mut b = reqwest::Client::builder()
                .connect_timeout(self.timeouts.connect)
                .timeout(self.timeouts.request)
                .tls_built_in_root_certs(false)
                .use_rustls_tls();
            if let Some(t) = tls.as_ref().filter(|_| https) {
                for c in reqwest::Certificate::from_pem_bundle(t.ca_pem.as_bytes())
                    .map_err(|e| fail(format!("CA bundle: {e}")))?
                {
                    b = b.add_root_certificate(c);
                }
            }
            if let Some(id) = id {
                let pem = format!("{}\n{}", id.cert_pem, id.key_pem);
                b = b.identity(
                    reqwest::Identity::from_pem(pem.as_bytes())
                        .map_err(|e| fail(format!("client certificate: {e}")))?,
                );
            }
            let client = b.build().map_err(|e| fail(e.to_string()))?;
            let url = format!("{ep}{path}");
            let got = async {
                let r = client.get(&url).send().await?.error_for_status()?;
                r.text().await
            }
            .await;
            match got {
                Ok(body) => return Ok(body),
                Err(e) if e.is_timeout() => {
                    last = EtcdError::Timeout {
                        endpoint: ep.to_string(),
                        timeout: self.timeouts.request,
                    };
                }
                Err(e) if e.is_connect() => {
                    last = EtcdError::Call {
                        endpoint: ep.to_string(),
                        kind: EtcdErrorKind::Unavailable,
                        message: e.to_string(),
                    };
                }
                Err(e) => last = fail(format!("GET {path}: {e}")),
            }
        }
        Err(last)
    }
}

/// The minor version of a version string etcd reports ("3.6.0"); none when
/// empty or not a version.
fn minor_of(s: &str) -> Option<MinorVersion> {
    EtcdVersion::parse(s)
        .map(EtcdVersion::minor)
        .or_else(|| MinorVersion::parse(s).ok())
}

fn parse_urls(urls: &[String]) -> Vec<Endpoint> {
    urls.iter().filter_map(|u| Endpoint::parse(u)).collect()
}

#[async_trait]
impl EtcdApi for EtcdClient {
    async fn member_list(&self, ep: &Endpoint) -> Result<Vec<ApiMember>, EtcdError> {
        let resp = self
            .with(ep, |mut c| async move { c.member_list().await })
            .await?;
        Ok(resp
            .members()
            .iter()
            .map(|m| ApiMember {
                id: MemberId(m.id()),
                name: LiveName::from_api(m.name()),
                peer_urls: parse_urls(m.peer_urls()),
                client_urls: parse_urls(m.client_urls()),
                is_learner: m.is_learner(),
            })
            .collect())
    }

    async fn status(&self, ep: &Endpoint) -> Result<ApiStatus, EtcdError> {
        let s = self
            .with(ep, |mut c| async move { c.status().await })
            .await?;
        let header = s.header();
        let non_neg = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(ApiStatus {
            cluster_id: ClusterId(header.map_or(0, |h| h.cluster_id())),
            member_id: MemberId(header.map_or(0, |h| h.member_id())),
            version: EtcdVersion::parse(s.version()),
            db_size: non_neg(s.db_size()),
            db_size_in_use: non_neg(s.raft_used_db_size()),
            db_quota: Some(s.db_size_quota()).filter(|q| *q > 0).map(non_neg),
            leader: (s.leader() != 0).then_some(MemberId(s.leader())),
            raft_index: s.raft_index(),
            raft_applied_index: s.raft_applied_index(),
            raft_term: s.raft_term(),
            revision: header.map_or(0, |h| h.revision()),
            is_learner: s.is_learner(),
            errors: s.errors().to_vec(),
            // Empty from 3.5, which reports neither.
            storage_version: minor_of(s.storage_version()),
            downgrade: s.downgrade_info().map(|d| DowngradeInfo {
                enabled: d.enabled(),
                target: minor_of(d.target_version()),
            }),
        })
    }

    async fn downgrade(
        &self,
        ep: &Endpoint,
        action: DowngradeAction,
        target: MinorVersion,
    ) -> Result<Option<MinorVersion>, EtcdError> {
        // etcd takes "major.minor" and keeps only that of a longer version.
        let v = target.to_string();
        let opts = match action {
            DowngradeAction::Validate => DowngradeOptions::Validate(v),
            DowngradeAction::Enable => DowngradeOptions::Enable(v),
            DowngradeAction::Cancel => DowngradeOptions::Cancel,
        };
        let r = self
            .with(ep, |c| async move {
                c.maintenance_client().downgrade(opts).await
            })
            .await?;
        Ok(minor_of(r.version()))
    }

    async fn alarms(&self, ep: &Endpoint) -> Result<Vec<ApiAlarm>, EtcdError> {
        let r = self
            .with(ep, |mut c| async move {
                c.alarm(AlarmAction::Get, AlarmType::None, None).await
            })
            .await?;
        Ok(r.alarms()
            .iter()
            .map(|a| ApiAlarm {
                member: MemberId(a.member_id()),
                kind: format!("{:?}", a.alarm()).to_uppercase(),
            })
            .collect())
    }

    async fn quorum_read(&self, ep: &Endpoint) -> Result<(), EtcdError> {
        self.with(ep, |mut c| async move {
            c.get("etcdplan-health", None).await.map(|_| ())
        })
        .await
    }

    async fn move_leader(&self, ep: &Endpoint, to: MemberId) -> Result<(), EtcdError> {
        self.with(
            ep,
            |mut c| async move { c.move_leader(to.0).await.map(|_| ()) },
        )
        .await
    }

    async fn add_learner(&self, ep: &Endpoint, peer_url: &Endpoint) -> Result<MemberId, EtcdError> {
        // The scheme is always explicit: etcd-client would prefix a bare host with http://.
        let url = peer_url.to_string();
        let resp = self
            .with(ep, |mut c| async move {
                c.member_add([url], Some(MemberAddOptions::new().with_is_learner()))
                    .await
            })
            .await?;
        resp.member()
            .map(|m| MemberId(m.id()))
            .ok_or_else(|| EtcdError::other(ep, "MemberAdd answered without the new member".into()))
    }

    async fn promote(&self, ep: &Endpoint, id: MemberId) -> Result<(), EtcdError> {
        self.with(ep, |mut c| async move {
            c.member_promote(id.0).await.map(|_| ())
        })
        .await
    }

    async fn remove(&self, ep: &Endpoint, id: MemberId) -> Result<(), EtcdError> {
        self.with(ep, |mut c| async move {
            c.member_remove(id.0).await.map(|_| ())
        })
        .await
    }

    async fn update_peer(
        &self,
        ep: &Endpoint,
        id: MemberId,
        peer_url: &Endpoint,
    ) -> Result<(), EtcdError> {
        let urls = vec![peer_url.to_string()];
        self.with(ep, |mut c| async move {
            c.member_update(id.0, urls).await.map(|_| ())
        })
        .await
    }

    async fn create_leased(
        &self,
        ep: &Endpoint,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Result<i64, String>, EtcdError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(60).max(5);
        self.with(ep, |mut c| async move {
            let lease = c.lease_grant(ttl, None).await?.id();
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.clone(),
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key, None)]);
            let resp = c.txn(txn).await?;
            if resp.succeeded() {
                return Ok(Ok(lease));
            }
            let _ = c.lease_revoke(lease).await;
            let held = resp
                .op_responses()
                .into_iter()
                .find_map(|r| match r {
                    TxnOpResponse::Get(g) => g
                        .kvs()
                        .first()
                        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
                    _ => None,
                })
                .unwrap_or_default();
            Ok(Err(held))
        })
        .await
    }

    async fn keep_alive(&self, ep: &Endpoint, lease: i64) -> Result<(), EtcdError> {
        self.with(ep, |mut c| async move {
            let (mut keeper, mut stream) = c.lease_keep_alive(lease).await?;
            keeper.keep_alive().await?;
            stream.message().await.map(|_| ())
        })
        .await
    }

    async fn delete_if(
        &self,
        ep: &Endpoint,
        key: &str,
        value: &str,
        lease: Option<i64>,
    ) -> Result<bool, EtcdError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.with(ep, |mut c| async move {
            let txn = Txn::new()
                .when([Compare::value(key.clone(), CompareOp::Equal, value)])
                .and_then([TxnOp::delete(key, None)]);
            let deleted = c.txn(txn).await?.succeeded();
            if let Some(l) = lease {
                let _ = c.lease_revoke(l).await;
            }
            Ok(deleted)
        })
        .await
    }

    async fn range_page(
        &self,
        ep: &Endpoint,
        from: &[u8],
        revision: i64,
        limit: i64,
    ) -> Result<super::RangePage, EtcdError> {
        let from = if from.is_empty() {
            vec![0]
        } else {
            from.to_vec()
        };
        self.with(ep, |mut c| async move {
            let opts = etcd_client::GetOptions::new()
                .with_from_key()
                .with_revision(revision)
                .with_limit(limit);
            let r = c.get(from, Some(opts)).await?;
            Ok(super::RangePage {
                kvs: r
                    .kvs()
                    .iter()
                    .map(|kv| (kv.key().to_vec(), kv.value().to_vec()))
                    .collect(),
                more: r.more(),
                header_revision: r.header().map_or(0, |h| h.revision()),
            })
        })
        .await
    }

    async fn get_value(&self, ep: &Endpoint, key: &str) -> Result<Option<String>, EtcdError> {
        let key = key.to_owned();
        self.with(ep, |mut c| async move {
            let r = c.get(key, None).await?;
            Ok(r.kvs()
                .first()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
        })
        .await
    }

    async fn cluster_version(&self, ep: &Endpoint) -> Result<Option<MinorVersion>, EtcdError> {
        let body = self.http_text(ep, "/version").await?;
        let doc: VersionDoc = serde_json::from_str(&body)
            .map_err(|e| EtcdError::other(ep, format!("GET /version: {e}")))?;
        Ok(doc
            .etcdcluster
            .as_deref()
            .and_then(EtcdVersion::parse)
            .map(EtcdVersion::minor)
            .filter(|v| v.major > 0))
    }

    async fn snapshot(&self, ep: &Endpoint, deadline: Duration) -> Result<Vec<u8>, EtcdError> {
        self.snapshot_with_progress(ep, deadline, &crate::io::Progress::new(|_, _| {}))
            .await
    }

    async fn snapshot_with_progress(
        &self,
        ep: &Endpoint,
        deadline: Duration,
        progress: &crate::io::Progress,
    ) -> Result<Vec<u8>, EtcdError> {
        // Its own client: the shared one's per-request timeout would cut a large stream.
        self.with_deadline(ep, deadline, |mut c| async move {
            let mut stream = c.snapshot().await?;
            let mut out = Vec::new();
            while let Some(msg) = stream.message().await? {
                out.extend_from_slice(msg.blob());
                let done = out.len() as u64;
                progress.report(done, Some(done + msg.remaining_bytes()));
            }
            Ok::<_, etcd_client::Error>(out)
        })
        .await
    }

    async fn compact(
        &self,
        ep: &Endpoint,
        revision: i64,
        deadline: Duration,
    ) -> Result<(), EtcdError> {
        self.with_deadline(ep, deadline, |mut c| async move {
            c.compact(
                revision,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            )
            .await
        })
        .await
        .map(|_| ())
    }

    async fn defragment(&self, ep: &Endpoint, deadline: Duration) -> Result<(), EtcdError> {
        self.with_deadline(ep, deadline, |mut c| async move { c.defragment().await })
            .await
            .map(|_| ())
    }

    async fn alarm_disarm(&self, ep: &Endpoint, alarm: &ApiAlarm) -> Result<(), EtcdError> {
        let kind = match alarm.kind.as_str() {
            "NOSPACE" => AlarmType::Nospace,
            "CORRUPT" => AlarmType::Corrupt,
            other => {
                return Err(EtcdError::Call {
                    endpoint: ep.to_string(),
                    kind: EtcdErrorKind::Other,
                    message: format!("no such alarm kind: {other}"),
                });
            }
        };
        let member = alarm.member.0;
        self.with(ep, |mut c| async move {
            let mut opts = etcd_client::AlarmOptions::new();
            opts.with_member(member);
            c.alarm(AlarmAction::Deactivate, kind, Some(opts)).await
        })
        .await
        .map(|_| ())
    }

    async fn put(&self, ep: &Endpoint, key: &str, value: &str) -> Result<(), EtcdError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.with(ep, |mut c| async move { c.put(key, value, None).await })
            .await
            .map(|_| ())
    }

    async fn prefix_values(
        &self,
        ep: &Endpoint,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, EtcdError> {
        let prefix = prefix.to_owned();
        self.with(ep, |mut c| async move {
            let opts = etcd_client::GetOptions::new()
                .with_prefix()
                .with_limit(limit);
            let r = c.get(prefix, Some(opts)).await?;
            Ok(r.kvs()
                .iter()
                .map(|kv| {
                    (
                        String::from_utf8_lossy(kv.key()).into_owned(),
                        String::from_utf8_lossy(kv.value()).into_owned(),
                    )
                })
                .collect())
        })
        .await
    }

    async fn delete_key(&self, ep: &Endpoint, key: &str) -> Result<(), EtcdError> {
        let key = key.to_owned();
        self.with(ep, |mut c| async move { c.delete(key, None).await })
            .await
            .map(|_| ())
    }

    async fn hash_kv(&self, ep: &Endpoint, revision: i64) -> Result<ApiHashKv, EtcdError> {
        let r = self
            .with(ep, |mut c| async move { c.hash_kv(revision).await })
            .await?;
        Ok(ApiHashKv {
            hash: r.hash(),
            compact_revision: r.compact_version(),
            // 0 from releases before 3.6, which do not fill it.
            hash_revision: Some(r.hash_revision()).filter(|h| *h > 0),
            header_revision: r.header().map_or(0, |h| h.revision()),
        })
    }

    async fn metrics(&self, ep: &Endpoint) -> Result<String, EtcdError> {
        self.http_text(ep, "/metrics").await
    }
}
