//! The real etcd API through etcd-client: one cached connection per member
//! endpoint, the client identity chosen per member during a CA rotation, and
//! every call under the deadlines of [`Timeouts`].
//!
//! With credentials ([`EtcdClient::with_user`]) a connection behaves as
//! etcd's Go client (clientv3) does: it logs in when it connects, carries on
//! without a token when the login is answered "authentication is not
//! enabled", and when a call is refused for its token before apply ("user
//! name is empty", "invalid auth token", "revision of auth store is old":
//! clientv3's `shouldRefreshToken`) it reconnects with a fresh login and
//! sends that call once more. So an apply that enables auth mid-run goes on
//! as root.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    AlarmAction, AlarmType, Client, Compare, CompareOp, ConnectOptions, DowngradeOptions,
    MemberAddOptions, PermissionType, PutOptions, RoleRevokePermissionOptions, Txn, TxnOp,
    TxnOpResponse, UserAddOptions,
};
use tokio::sync::Mutex;

use super::error::call_error;
use super::{
    ApiAlarm, ApiHashKv, ApiMember, ApiStatus, AuthCall, ClientIdentity, ClientTls,
    DowngradeAction, EtcdApi, EtcdError, EtcdErrorKind, Timeouts,
};
use crate::config::Access;
use crate::live::{DowngradeInfo, LiveName};
use crate::live::{LivePermission, LiveRole};
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
    /// Held only to look up, insert or drop: never across a connect.
    clients: Mutex<HashMap<Endpoint, (Client, usize)>>,
    /// One gate per endpoint, held while connecting to it: two calls to one
    /// member make one connection, while connections to different members
    /// are made side by side (an observe connects to every member at once).
    connecting: std::sync::Mutex<HashMap<Endpoint, Arc<Mutex<()>>>>,
    /// Bumped when the identity changes ([`Self::set_tls`]): a connection
    /// made under the old one while it changed is not kept.
    generation: AtomicU64,
    /// etcd auth: the user and password sent when connecting (never shown).
    user: Option<(String, String)>,
    /// Why etcd last refused that login, by endpoint: such a connection goes
    /// on without a token (calls that need none still work, as MemberList
    /// for observe), and a call refused for want of one says this instead.
    login_refused: std::sync::Mutex<HashMap<Endpoint, String>>,
    /// Whether a refused login leaves a connection without a token instead
    /// of failing it ([`Self::going_on_when_login_refused`]).
    lenient_login: bool,
}

impl EtcdClient {
    /// A client set with these deadlines.
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            tls: std::sync::RwLock::new(None),
            clients: Mutex::new(HashMap::new()),
            connecting: std::sync::Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            user: None,
            login_refused: std::sync::Mutex::new(HashMap::new()),
            lenient_login: false,
        }
    }

    /// The same, authenticating as `user` with `password` (etcd auth).
    #[must_use]
    pub fn with_user(mut self, user: String, password: String) -> Self {
        self.user = Some((user, password));
        self
    }

    /// The same, but a login etcd refuses (a wrong password) leaves the
    /// connection without a token instead of failing it, as etcdplan's own
    /// client needs: the membership and status read without one, so observe
    /// sees the cluster, and a call that needs the login fails naming the
    /// refusal. Without this, a refused login fails the connection, as
    /// clientv3's dial does (`import --user` with a wrong password stops).
    #[must_use]
    pub fn going_on_when_login_refused(mut self) -> Self {
        self.lenient_login = true;
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
        let mut map = self.clients.lock().await;
        self.generation.fetch_add(1, Ordering::SeqCst);
        map.clear();
    }

    fn options(
        &self,
        identity: Option<&(String, Option<ClientIdentity>)>,
        timeout: Duration,
        user: Option<(&str, &str)>,
    ) -> ConnectOptions {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(self.timeouts.connect)
            .with_timeout(timeout);
        if let Some((user, password)) = user {
            opts = opts.with_user(user, password);
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

    /// The gate held while connecting to `ep`.
    fn connect_gate(&self, ep: &Endpoint) -> Arc<Mutex<()>> {
        self.connecting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(ep.clone())
            .or_default()
            .clone()
    }

    /// The cached client for `ep`, else a new connection (made under the
    /// endpoint's own gate, so other members' connections go on meanwhile).
    async fn client(&self, ep: &Endpoint) -> Result<Client, EtcdError> {
        if let Some((c, _)) = self.clients.lock().await.get(ep) {
            return Ok(c.clone());
        }
        let gate = self.connect_gate(ep);
        let _connecting = gate.lock().await;
        // Another call may have connected while this one waited at the gate.
        if let Some((c, _)) = self.clients.lock().await.get(ep) {
            return Ok(c.clone());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        // A connection with a login is a network call of its own (and a
        // second one when the login is refused): one deadline over both, so
        // an endpoint whose port drops packets never holds its gate for long.
        let connect = |chosen| async move {
            let id = self.identity(ep, chosen);
            let deadline = self.timeouts.connect + 2 * self.timeouts.request;
            tokio::time::timeout(
                deadline,
                self.connect_as_user(ep, id.as_ref(), self.timeouts.request),
            )
            .await
            .unwrap_or_else(|_| {
                Err(EtcdError::Timeout {
                    endpoint: ep.to_string(),
                    timeout: deadline,
                })
            })
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
                    let mut map = self.clients.lock().await;
                    if self.generation.load(Ordering::SeqCst) == generation {
                        map.insert(ep.clone(), (c.clone(), chosen));
                    }
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

    /// A new connection to `ep` presenting `identity`, logged in as the
    /// configured user as clientv3 logs in: a login answered "authentication
    /// is not enabled" leaves the connection without a token (auth is off,
    /// etcd checks nothing). With [`Self::going_on_when_login_refused`] a
    /// refused login (a wrong password) does too, remembered for
    /// [`Self::with`] to report: reading the membership needs no token, and
    /// observe must not take a wrong password for a cluster that does not
    /// answer.
    async fn connect_as_user(
        &self,
        ep: &Endpoint,
        identity: Option<&(String, Option<ClientIdentity>)>,
        timeout: Duration,
    ) -> Result<Client, EtcdError> {
        let user = self.user.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let opts = self.options(identity, timeout, user);
        match Client::connect([ep.to_string()], Some(opts)).await {
            Ok(c) => {
                self.refused_logins().remove(ep);
                Ok(c)
            }
            Err(e) => {
                let e = call_error(ep, &e);
                match e.kind() {
                    EtcdErrorKind::AuthNotEnabled if user.is_some() => {}
                    EtcdErrorKind::AuthFailed if user.is_some() && self.lenient_login => {
                        tracing::warn!("{e}: going on without a token");
                        let why = match &e {
                            EtcdError::Call { message, .. } => message.clone(),
                            EtcdError::Timeout { .. } => e.to_string(),
                        };
                        self.refused_logins().insert(ep.clone(), why);
                    }
                    _ => return Err(e),
                }
                let opts = self.options(identity, timeout, None);
                Client::connect([ep.to_string()], Some(opts))
                    .await
                    .map_err(|e| call_error(ep, &e))
            }
        }
    }

    /// Whether a failed call is one to resend after a fresh login: etcd
    /// refused it for its token before applying it, and this client has
    /// credentials to log in with.
    fn resend_after_login(&self, e: &EtcdError) -> bool {
        self.user.is_some() && e.kind().wants_fresh_login()
    }

    /// Runs one call with the client for `ep`, under the overall deadline;
    /// a call refused for its token is sent once more on a connection with a
    /// fresh login (see the module doc).
    async fn with<T, F, Fut>(&self, ep: &Endpoint, f: F) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut + Send + Clone,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>> + Send,
    {
        match self.with_once(ep, f.clone()).await {
            Err(e) if self.resend_after_login(&e) => {
                tracing::debug!("{e}: logging in again and resending");
                self.clients.lock().await.remove(ep);
                match self.with_once(ep, f).await {
                    Err(e) if self.resend_after_login(&e) => Err(self.login_error(ep).unwrap_or(e)),
                    r => r,
                }
            }
            r => r,
        }
    }

    /// The endpoints whose login etcd refused, and why.
    fn refused_logins(&self) -> std::sync::MutexGuard<'_, HashMap<Endpoint, String>> {
        self.login_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why the configured login is refused at `ep`, as the error of a call
    /// that needed it.
    fn login_error(&self, ep: &Endpoint) -> Option<EtcdError> {
        let why = self.refused_logins().get(ep).cloned()?;
        let user = self.user.as_ref().map_or("", |(u, _)| u.as_str());
        Some(EtcdError::Call {
            endpoint: ep.to_string(),
            kind: EtcdErrorKind::AuthFailed,
            message: format!("etcd refuses the login of {user}: {why}"),
        })
    }

    /// One call with the client for `ep`, under the overall deadline.
    async fn with_once<T, F, Fut>(&self, ep: &Endpoint, f: F) -> Result<T, EtcdError>
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
        F: FnOnce(Client) -> Fut + Send + Clone,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>> + Send,
    {
        match self.with_deadline_once(ep, deadline, f.clone()).await {
            // Its connection logs in afresh each time: only a store that
            // changed under the call ("revision of auth store is old") or a
            // token gone meanwhile lands here.
            Err(e) if self.resend_after_login(&e) => {
                tracing::debug!("{e}: logging in again and resending");
                self.with_deadline_once(ep, deadline, f).await
            }
            r => r,
        }
    }

    /// One call of [`Self::with_deadline`].
    async fn with_deadline_once<T, F, Fut>(
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
        let endpoint = ep.to_string();
        let run = async {
            let c = self.connect_as_user(ep, id.as_ref(), deadline).await?;
            f(c).await.map_err(|e| call_error(ep, &e))
        };
        match tokio::time::timeout(deadline, run).await {
            Err(_) => Err(EtcdError::Timeout {
                endpoint,
                timeout: deadline,
            }),
            Ok(r) => r,
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

    async fn auth_enabled(&self, ep: &Endpoint) -> Result<bool, EtcdError> {
        // etcd-client has no AuthStatus call (and etcd 3.4 no such RPC): a
        // login as a user no one has tells, on every release. etcd checks
        // "enabled" first; with auth on the name is simply not found.
        let probe = self
            .with(ep, |c| async move {
                c.auth_client()
                    .authenticate(AUTH_PROBE_USER.to_owned(), AUTH_PROBE_USER.to_owned())
                    .await
                    .map(|_| ())
            })
            .await;
        match probe {
            Err(e) if e.kind() == EtcdErrorKind::AuthNotEnabled => Ok(false),
            Err(e) if e.kind() == EtcdErrorKind::AuthFailed => Ok(true),
            // Someone made the probe user with this password: auth is on.
            Ok(()) => Ok(true),
            Err(e) => Err(e),
        }
    }

    async fn auth_users(&self, ep: &Endpoint) -> Result<Vec<(String, Vec<String>)>, EtcdError> {
        let mut users = self
            .with(ep, |mut c| async move {
                let names = c.user_list().await?.users().to_vec();
                let mut out = Vec::with_capacity(names.len());
                for name in names {
                    let mut roles = c.user_get(name.clone()).await?.roles().to_vec();
                    roles.sort();
                    out.push((name, roles));
                }
                Ok(out)
            })
            .await?;
        users.sort();
        Ok(users)
    }

    async fn auth_roles(&self, ep: &Endpoint) -> Result<Vec<LiveRole>, EtcdError> {
        let mut roles = self
            .with(ep, |mut c| async move {
                let names = c.role_list().await?.roles().to_vec();
                let mut out = Vec::with_capacity(names.len());
                for name in names {
                    let permissions = c
                        .role_get(name.clone())
                        .await?
                        .permissions()
                        .iter()
                        .filter_map(|p| {
                            Some(LivePermission {
                                key: p.key().to_vec(),
                                range_end: p.range_end().to_vec(),
                                access: access_of(p.get_type())?,
                            })
                        })
                        .collect();
                    out.push(LiveRole { name, permissions });
                }
                Ok(out)
            })
            .await?;
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roles)
    }

    async fn login_accepted(
        &self,
        ep: &Endpoint,
        user: &str,
        password: &str,
    ) -> Result<bool, EtcdError> {
        // A connection of its own: the shared one keeps its login, and this
        // one's token is dropped with it.
        self.client(ep).await?;
        let chosen = self.clients.lock().await.get(ep).map_or(0, |(_, i)| *i);
        let id = self.identity(ep, chosen);
        let opts = self.options(id.as_ref(), self.timeouts.request, Some((user, password)));
        let deadline = self.timeouts.connect + self.timeouts.request;
        match tokio::time::timeout(deadline, Client::connect([ep.to_string()], Some(opts))).await {
            Err(_) => Err(EtcdError::Timeout {
                endpoint: ep.to_string(),
                timeout: deadline,
            }),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) => {
                let e = call_error(ep, &e);
                if e.kind() == EtcdErrorKind::AuthFailed {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn auth_change(&self, ep: &Endpoint, call: &AuthCall<'_>) -> Result<(), EtcdError> {
        // Owned copies: a call refused for its token is sent again.
        let owned = OwnedAuthCall::of(call);
        self.with(ep, |mut c| async move {
            match owned {
                OwnedAuthCall::UserAdd(user, Some(password)) => {
                    c.user_add(user, password, None).await.map(|_| ())
                }
                OwnedAuthCall::UserAdd(user, None) => c
                    .user_add(
                        user,
                        String::new(),
                        Some(UserAddOptions::new().with_no_pwd()),
                    )
                    .await
                    .map(|_| ()),
                OwnedAuthCall::UserDelete(user) => c.user_delete(user).await.map(|_| ()),
                OwnedAuthCall::UserPassword(user, password) => {
                    c.user_change_password(user, password).await.map(|_| ())
                }
                OwnedAuthCall::UserGrant(user, role) => {
                    c.user_grant_role(user, role).await.map(|_| ())
                }
                OwnedAuthCall::UserRevoke(user, role) => {
                    c.user_revoke_role(user, role).await.map(|_| ())
                }
                OwnedAuthCall::RoleAdd(role) => c.role_add(role).await.map(|_| ()),
                OwnedAuthCall::RoleDelete(role) => c.role_delete(role).await.map(|_| ()),
                OwnedAuthCall::RoleGrant(role, p) => {
                    let perm = etcd_client::Permission::new(permission_type(p.access), p.key)
                        .with_range_end(p.range_end);
                    c.role_grant_permission(role, perm).await.map(|_| ())
                }
                OwnedAuthCall::RoleRevoke(role, p) => c
                    .role_revoke_permission(
                        role,
                        p.key,
                        Some(RoleRevokePermissionOptions::new().with_range_end(p.range_end)),
                    )
                    .await
                    .map(|_| ()),
                OwnedAuthCall::Enable => c.auth_enable().await.map(|_| ()),
                OwnedAuthCall::Disable => c.auth_disable().await.map(|_| ()),
            }
        })
        .await
    }
}

/// The user name [`EtcdApi::auth_enabled`] logs in as to learn whether auth
/// is on: "not enabled" or "not found" both answer, and no one has it.
const AUTH_PROBE_USER: &str = "etcdplan-auth-probe";

/// etcd's permission type (`authpb.Permission.Type`) as an [`Access`].
fn access_of(t: i32) -> Option<Access> {
    match PermissionType::try_from(t).ok()? {
        PermissionType::Read => Some(Access::Read),
        PermissionType::Write => Some(Access::Write),
        PermissionType::Readwrite => Some(Access::ReadWrite),
    }
}

/// An [`Access`] as etcd's permission type.
fn permission_type(a: Access) -> PermissionType {
    match a {
        Access::Read => PermissionType::Read,
        Access::Write => PermissionType::Write,
        Access::ReadWrite => PermissionType::Readwrite,
    }
}

/// An [`AuthCall`] with owned strings, so the call can be sent twice. Not
/// `Debug`: it holds passwords.
#[derive(Clone)]
enum OwnedAuthCall {
    UserAdd(String, Option<String>),
    UserDelete(String),
    UserPassword(String, String),
    UserGrant(String, String),
    UserRevoke(String, String),
    RoleAdd(String),
    RoleDelete(String),
    RoleGrant(String, LivePermission),
    RoleRevoke(String, LivePermission),
    Enable,
    Disable,
}

impl OwnedAuthCall {
    fn of(call: &AuthCall<'_>) -> Self {
        let o = |s: &str| s.to_owned();
        match *call {
            AuthCall::UserAdd { user, password } => Self::UserAdd(o(user), password.map(o)),
            AuthCall::UserDelete { user } => Self::UserDelete(o(user)),
            AuthCall::UserPassword { user, password } => Self::UserPassword(o(user), o(password)),
            AuthCall::UserGrant { user, role } => Self::UserGrant(o(user), o(role)),
            AuthCall::UserRevoke { user, role } => Self::UserRevoke(o(user), o(role)),
            AuthCall::RoleAdd { role } => Self::RoleAdd(o(role)),
            AuthCall::RoleDelete { role } => Self::RoleDelete(o(role)),
            AuthCall::RoleGrant { role, permission } => {
                Self::RoleGrant(o(role), permission.clone())
            }
            AuthCall::RoleRevoke { role, permission } => {
                Self::RoleRevoke(o(role), permission.clone())
            }
            AuthCall::Enable => Self::Enable,
            AuthCall::Disable => Self::Disable,
        }
    }
}
