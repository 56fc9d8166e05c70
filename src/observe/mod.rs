//! Stage 2: the live state, read from the etcd API and from every member's host.
//!
//! Observing never changes anything and never fails as a whole: an unreachable
//! host or member is a fact of the live state, recorded for the planner.

mod host;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::join_all;

use crate::config::{AuthName, Desired, Secrets};
use crate::io::{EtcdApi, EtcdError, EtcdErrorKind, Host, HostMap};
use crate::model::{ClusterId, Endpoint, MemberId};

pub use etcdplan_core::live::*;
pub(crate) use host::UNIT_OF_LP;
pub use host::{ProbeOutputError, parse_probe, probe_script};

/// Reads the live state: hosts and etcd in parallel, each call under its
/// deadline. `secrets` are the passwords `[auth]` declares (read by the
/// caller, so observing reads nothing from this machine's environment): each
/// is tried with a login to tell whether etcd holds it.
pub async fn observe(d: &Desired, hosts: &HostMap, etcd: &dyn EtcdApi, secrets: &Secrets) -> Live {
    let host_probe = join_all(d.members.iter().map(|m| {
        let host: Option<Arc<dyn Host>> = hosts.get(&m.address);
        async move {
            let state = match host {
                Some(h) => host::probe(h.as_ref(), d, m).await,
                None => HostState::Unreachable {
                    reason: "no host for this member".into(),
                    advice: "this is a bug in etcdplan".into(),
                },
            };
            (m.name.clone(), state)
        }
    }));
    let timed = |label: &'static str| {
        let start = std::time::Instant::now();
        move || {
            tracing::debug!(
                "observe: {label} took {:.3}s",
                start.elapsed().as_secs_f64()
            )
        }
    };
    let hosts_done = timed("host probes");
    let etcd_done = timed("etcd API");
    let (host_states, (mut cluster, mut unreachable, mut metrics, mut refused, mut auth)) = tokio::join!(
        async {
            let r = host_probe.await;
            hosts_done();
            r
        },
        async {
            let r = observe_cluster(d, etcd, secrets, d.client_urls()).await;
            etcd_done();
            r
        }
    );
    if cluster.is_none() {
        // The etcdfile may name client ports the members do not listen on yet
        // (a port change not applied): ask where they say they listen.
        let advertised: Vec<Endpoint> = host_states
            .iter()
            .filter_map(|(name, h)| {
                let m = d.member(name)?;
                let text = h.facts()?.file(&m.config_file())?;
                crate::hostfiles::read_value(text, "advertise-client-urls")
            })
            .flat_map(|v| v.split(',').filter_map(Endpoint::parse).collect::<Vec<_>>())
            .filter(|u| !d.client_urls().contains(u))
            .collect();
        if !advertised.is_empty() {
            (cluster, unreachable, metrics, refused, auth) =
                observe_cluster(d, etcd, secrets, advertised).await;
        }
    }
    let (local_ca, previous_ca) = if let Some(x) = d.tls.external().filter(|_| d.tls.any()) {
        // The operator's CA: what the members' certificates must verify against.
        (std::fs::read_to_string(&x.ca_file).ok(), None)
    } else if d.tls.any() {
        crate::pki::local_cas(&d.tls.ca_dir)
    } else {
        (None, None)
    };
    let mut live = Live {
        cluster,
        hosts: host_states.into_iter().collect(),
        unreachable,
        local_ca,
        previous_ca,
        observed_at: crate::pki::now(),
        auth,
        local_auth: crate::pki::local_auth_files(d),
        auth_refused: refused,
    };
    with_config_quotas(d, &mut live, &metrics);
    live
}

/// The auth store as the member at `ep` (one that answered) has it: whether
/// auth is on, the users and roles (or why they could not be read), and for
/// each declared user with a password (root too) whether etcd accepts it.
/// The logins run in parallel, each under the client's deadline; while auth
/// is off etcd checks no password, so none is tried.
async fn observe_auth(
    d: &Desired,
    etcd: &dyn EtcdApi,
    secrets: &Secrets,
    ep: &Endpoint,
) -> LiveAuth {
    let enabled = match etcd.auth_enabled(ep).await {
        Ok(on) => on,
        Err(e) => {
            return LiveAuth {
                enabled: false,
                store: Err(format!("whether auth is on: {}", short(&e.to_string(), ep))),
            };
        }
    };
    let (users, roles) = tokio::join!(etcd.auth_users(ep), etcd.auth_roles(ep));
    let (users, roles) = match (users, roles) {
        (Ok(u), Ok(r)) => (u, r),
        (Err(e), _) | (_, Err(e)) => {
            return LiveAuth {
                enabled,
                store: Err(short(&e.to_string(), ep)),
            };
        }
    };
    let checks = join_all(users.iter().map(|(name, _)| async move {
        if !enabled {
            return PasswordCheck::NotChecked;
        }
        let password = d.auth.as_ref().and_then(|a| {
            let n = AuthName::parse(name).ok()?;
            secrets.of_user(a, &n)
        });
        let Some(password) = password else {
            return PasswordCheck::NotChecked;
        };
        match etcd.login_accepted(ep, name, password.expose()).await {
            Ok(true) => PasswordCheck::Accepted,
            Ok(false) => PasswordCheck::Refused,
            Err(e) => {
                if e.kind() != EtcdErrorKind::AuthNotEnabled {
                    tracing::info!("login of {name}: {e}");
                }
                PasswordCheck::NotChecked
            }
        }
    }))
    .await;
    let users = users
        .into_iter()
        .zip(checks)
        .map(|((name, roles), password)| LiveUser {
            name,
            roles,
            password,
        })
        .collect();
    LiveAuth {
        enabled,
        store: Ok(AuthStore { users, roles }),
    }
}

/// What a member's `/metrics` said, by member, until the hosts' config files
/// are known (the quota's third source).
type MetricsByMember = BTreeMap<MemberId, MetricsFigures>;

/// The cluster as the first member to answer MemberList lists it, each
/// member's Status (with its linearizable read and `/metrics`), the alarms
/// and the auth store, all asked side by side once the list is in; the
/// members that did not answer; the metrics by member; and the first
/// refusal for want of a login.
async fn observe_cluster(
    d: &Desired,
    etcd: &dyn EtcdApi,
    secrets: &Secrets,
    urls: Vec<Endpoint>,
) -> (
    Option<LiveCluster>,
    Vec<(Endpoint, String)>,
    MetricsByMember,
    Option<String>,
    Option<LiveAuth>,
) {
    let lists = join_all(urls.iter().map(|u| etcd.member_list(u))).await;
    let mut unreachable = Vec::new();
    let mut refused = None;
    let mut found: Option<(Endpoint, Vec<ApiMember>)> = None;
    for (u, r) in urls.iter().zip(lists) {
        match r {
            Ok(list) if found.is_none() => found = Some((u.clone(), list)),
            Ok(_) => {}
            Err(e) => {
                if e.kind().is_auth_refusal() {
                    refused.get_or_insert_with(|| format!("MemberList: {e}"));
                }
                unreachable.push((u.clone(), short(&e.to_string(), u)));
            }
        }
    }
    let Some((answered_by, list)) = found else {
        return (None, unreachable, MetricsByMember::new(), refused, None);
    };
    // Side by side. The alarm list and the auth store go through raft: once
    // every member that answers says it knows no leader (a lost quorum),
    // they are dropped rather than waited out to their deadline, with what
    // their failure would have given (no alarm listed, the store unread).
    let (statuses, (alarms, auth)) = unless_leaderless(
        join_all(list.iter().map(|m| member_status(d, etcd, m))),
        async {
            tokio::join!(
                etcd.alarms(&answered_by),
                observe_auth(d, etcd, secrets, &answered_by)
            )
        },
        |statuses| knows_no_leader(statuses),
        || {
            let auth = LiveAuth {
                enabled: false,
                store: Err(format!("not asked: {NO_LEADER}")),
            };
            (Ok(Vec::new()), auth)
        },
    )
    .await;
    let alarms = alarms.unwrap_or_default();
    let id = statuses
        .iter()
        .find_map(|s| s.as_ref().ok().map(|(cid, _, _)| *cid))
        .unwrap_or(ClusterId(0));
    let mut metrics = MetricsByMember::new();
    let members: Vec<LiveMember> = list
        .into_iter()
        .zip(statuses)
        .map(|(m, s)| {
            let (status, db) = match s {
                Ok((_, st, figures)) => {
                    let db = db_state(&st.reported, figures.as_ref(), None);
                    if let Some(f) = figures {
                        metrics.insert(m.id, f);
                    }
                    (Ok(st), Some(db))
                }
                Err((e, auth_refusal)) => {
                    if auth_refusal {
                        refused.get_or_insert_with(|| format!("Status of {}: {e}", m.name));
                    }
                    (Err(e), None)
                }
            };
            LiveMember {
                id: m.id,
                name: m.name,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: m.is_learner,
                status,
                db,
            }
        })
        .collect();
    (
        Some(LiveCluster {
            id,
            answered_by,
            members,
            alarms,
            // Asked for by `status` only (check_hashes): it reads every key.
            hash_check: None,
        }),
        unreachable,
        metrics,
        refused,
        Some(auth),
    )
}

/// Adds the voters' HashKV comparison to an observed cluster. HashKV hashes
/// every key and value of each voter's backend, so only `status` asks for it
/// (not every plan, nor watch's drift loop).
pub async fn check_hashes(d: &Desired, etcd: &dyn EtcdApi, live: &mut Live) {
    if let Some(c) = live.cluster.as_mut() {
        c.hash_check = hash_check(d, etcd, &c.members).await;
    }
}

/// The voters' HashKV at the lowest revision their Status reports (one every
/// voter has applied), judged by [`HashCheck::judge`]; None when no voter
/// answered Status. Learners are not asked: they refuse unary calls.
async fn hash_check(d: &Desired, etcd: &dyn EtcdApi, members: &[LiveMember]) -> Option<HashCheck> {
    let voters: Vec<(&LiveMember, Endpoint, i64)> = members
        .iter()
        .filter(|m| !m.is_learner)
        .filter_map(|m| {
            let s = m.status.as_ref().ok()?;
            let ep = endpoint_of(d, m.client_urls.first(), &m.name)?;
            (!s.reported.is_learner).then_some((m, ep, s.reported.revision))
        })
        .collect();
    let revision = voters.iter().map(|(_, _, r)| *r).min()?;
    if revision <= 0 {
        return Some(HashCheck {
            revision,
            members: Vec::new(),
            compact_revision: None,
            verdict: HashVerdict::NotComparable {
                reason: "no voter reported a revision".into(),
            },
        });
    }
    let answers = join_all(
        voters
            .iter()
            .map(|(_, ep, _)| async move { etcd.hash_kv(ep, revision).await }),
    )
    .await;
    let asked = voters
        .iter()
        .zip(answers)
        .map(|((m, ep, _), a)| MemberHash {
            id: m.id,
            name: m.name.clone(),
            answer: a.map_err(|e| short(&e.to_string(), ep)),
        })
        .collect();
    Some(HashCheck::judge(revision, asked))
}

/// Each member's backend with the third source of its quota filled in: the
/// `quota-backend-bytes` of its config file as its host shows it.
fn with_config_quotas(d: &Desired, live: &mut Live, metrics: &MetricsByMember) {
    let Some(c) = live.cluster.as_mut() else {
        return;
    };
    for m in &mut c.members {
        let Ok(st) = &m.status else { continue };
        let config = m
            .name
            .member_name()
            .and_then(|n| {
                let dm = d.member(&n)?;
                let facts = live.hosts.get(&n)?.facts()?;
                facts.file(&dm.config_file())
            })
            .and_then(config_quota);
        m.db = Some(db_state(&st.reported, metrics.get(&m.id), config));
    }
}

/// The endpoint to reach a member on: what it advertises, else what the file says.
fn member_endpoint(d: &Desired, m: &ApiMember) -> Option<Endpoint> {
    endpoint_of(d, m.client_urls.first(), &m.name)
}

fn endpoint_of(d: &Desired, advertised: Option<&Endpoint>, name: &LiveName) -> Option<Endpoint> {
    advertised.cloned().or_else(|| {
        d.members
            .iter()
            .find(|dm| name.is(&dm.name))
            .map(|dm| dm.client_url(&d.tls))
    })
}

/// Where a member serves `/metrics`: its first plain-http
/// `listen-metrics-urls` (a wildcard address read as the member's own),
/// else its client URL (with the client TLS the member needs).
fn metrics_endpoint(d: &Desired, m: &ApiMember, client: &Endpoint) -> Endpoint {
    d.members
        .iter()
        .find(|dm| m.name.is(&dm.name))
        .and_then(|dm| {
            dm.settings
                .listen_metrics_urls
                .iter()
                .filter_map(|u| Endpoint::parse(u))
                .find(|u| u.scheme == crate::model::Scheme::Http)
                .map(|mut u| {
                    if matches!(&u.host, crate::model::Address::Ip(ip) if ip.is_unspecified()) {
                        u.host = dm.address.clone();
                    }
                    u
                })
        })
        .unwrap_or_else(|| client.clone())
}

/// What [`member_status`] gives: the cluster, the status and the metrics,
/// or why not and whether etcd refused it for want of a login.
type StatusAnswer = Result<(ClusterId, MemberStatus, Option<MetricsFigures>), (String, bool)>;

async fn member_status(d: &Desired, etcd: &dyn EtcdApi, m: &ApiMember) -> StatusAnswer {
    let Some(ep) = member_endpoint(d, m) else {
        return Err(("not started: no client URL yet".into(), false));
    };
    let metrics_at = metrics_endpoint(d, m, &ep);
    let ((status, read), metrics) = tokio::join!(
        status_and_read(etcd, &ep, m.is_learner),
        etcd.metrics(&metrics_at)
    );
    // An error says why, and whether etcd refused it for want of a login.
    let s: ApiStatus =
        status.map_err(|e| (short(&e.to_string(), &ep), e.kind().is_auth_refusal()))?;
    if let Err(e) = &metrics {
        tracing::debug!("observe: no metrics from {metrics_at}: {e}");
    }
    Ok((
        s.cluster_id,
        MemberStatus {
            reported: s,
            quorum_read: read,
        },
        metrics.ok().map(|t| MetricsFigures::parse(&t)),
    ))
}

/// Why a call through raft was not sent, or not waited for.
const NO_LEADER: &str = "every member that answers knows no leader";

/// Whether some member answered Status and none that did knows a leader.
fn knows_no_leader(statuses: &[StatusAnswer]) -> bool {
    let answered: Vec<&ApiStatus> = statuses
        .iter()
        .filter_map(|s| s.as_ref().ok().map(|(_, st, _)| &st.reported))
        .collect();
    !answered.is_empty() && answered.iter().all(|s| s.leader.is_none())
}

/// A member's Status and a quorum read through it, sent side by side; the
/// read is dropped once Status says the member knows no leader: etcd would
/// hold it to its deadline, and a plan against a cluster that lost its
/// quorum would wait that out for an answer Status already gave.
async fn status_and_read(
    etcd: &dyn EtcdApi,
    ep: &Endpoint,
    learner: bool,
) -> (Result<ApiStatus, EtcdError>, Result<(), String>) {
    if learner {
        // Learners refuse linearizable reads by design.
        return (etcd.status(ep).await, Ok(()));
    }
    unless_leaderless(
        etcd.status(ep),
        async {
            etcd.quorum_read(ep)
                .await
                .map_err(|e| short(&e.to_string(), ep))
        },
        |status| matches!(status, Ok(s) if s.leader.is_none()),
        || Err("not tried: it knows no leader".into()),
    )
    .await
}

/// Runs `status` and `through_raft` (calls etcd answers only through a
/// leader) side by side. Once `status` is in and `leaderless` says it shows
/// no leader, `through_raft` is dropped for `instead`: etcd would hold it
/// to its deadline for an answer Status already gave.
async fn unless_leaderless<S, R>(
    status: impl Future<Output = S>,
    through_raft: impl Future<Output = R>,
    leaderless: impl FnOnce(&S) -> bool,
    instead: impl FnOnce() -> R,
) -> (S, R) {
    let status = std::pin::pin!(status);
    let through_raft = std::pin::pin!(through_raft);
    match futures::future::select(status, through_raft).await {
        futures::future::Either::Left((status, through_raft)) => {
            if leaderless(&status) {
                let r = instead();
                return (status, r);
            }
            (status, through_raft.await)
        }
        futures::future::Either::Right((r, status)) => (status.await, r),
    }
}

/// Drops the endpoint prefix an error already carries, for compact tables.
fn short(msg: &str, ep: &Endpoint) -> String {
    msg.strip_prefix(&format!("{ep}: "))
        .unwrap_or(msg)
        .to_owned()
}

/// The file paths etcdplan owns for a member, in probe order.
pub fn owned_paths(d: &Desired, m: &crate::config::DesiredMember) -> Vec<PathBuf> {
    // The paths are the same whatever release the files are rendered for.
    let release = crate::diff::start_release(d, None);
    crate::hostfiles::member_files(d, m, &crate::hostfiles::Initial::bootstrap(d), release)
        .into_iter()
        .map(|f| f.path)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::io::fake::FakeCluster;

    /// Three members on etcd 3.5 with a 3 GiB quota in their config files.
    fn three() -> (Desired, FakeCluster) {
        let mut text = String::from(
            "[cluster]\nname = \"main\"\n[etcd]\nquota_backend_bytes = \"3GiB\"\n[hosts]\ntransport = \"ssh\"\n",
        );
        for i in 1..=3 {
            text.push_str(&format!(
                "[[member]]\nname = \"etcd-{i}\"\naddress = \"10.0.0.{}\"\n",
                10 + i
            ));
        }
        let ctx = crate::config::Context {
            base_dir: PathBuf::from("/srv"),
            home: None,
            file_hash: crate::config::hash(&text),
            ..Default::default()
        };
        let Ok(loaded) = crate::config::parse("etcdfile.toml", text, &ctx) else {
            panic!("etcdfile");
        };
        let d = loaded.desired;
        let fake = FakeCluster::running(&d, "3.5.17", 0);
        (d, fake)
    }

    #[test]
    fn metrics_are_read_on_a_plain_metrics_listener_else_on_the_client_url() {
        let (d, _) = three();
        let m = |i: usize| ApiMember {
            id: MemberId(1),
            name: LiveName::Started(format!("etcd-{i}")),
            peer_urls: Vec::new(),
            client_urls: Vec::new(),
            is_learner: false,
        };
        let client = d.members[0].client_url(&d.tls);
        assert_eq!(metrics_endpoint(&d, &m(1), &client), client);
        let mut d = d;
        d.members[0].settings.listen_metrics_urls = vec![
            "https://10.0.0.11:2382".into(),
            "http://0.0.0.0:2381".into(),
        ];
        assert_eq!(
            metrics_endpoint(&d, &m(1), &client).to_string(),
            "http://10.0.0.11:2381"
        );
        assert_eq!(
            metrics_endpoint(&d, &m(2), &d.members[1].client_url(&d.tls)).to_string(),
            "http://10.0.0.12:2379"
        );
    }

    /// Without a quorum etcd holds a linearizable read to its deadline; the
    /// survivor's Status already says it knows no leader, so the read is
    /// dropped and the observation ends (the fake's read never answers:
    /// without the drop this test never returns).
    #[tokio::test]
    async fn a_member_that_knows_no_leader_is_not_held_to_its_read() {
        let (d, fake) = three();
        fake.reads_wait_for_a_leader();
        fake.kill("etcd-2");
        fake.kill("etcd-3");
        let observed = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            observe(&d, &fake.hosts(&d), &fake, &Secrets::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("the observation waited for a read no leader answers"));
        let c = observed.cluster.unwrap_or_else(|| panic!("no cluster"));
        let survivor = c
            .members
            .iter()
            .find(|m| m.name.as_started() == Some("etcd-1"))
            .unwrap_or_else(|| panic!("no etcd-1"));
        let status = survivor.status.as_ref().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status.reported.leader, None);
        assert_eq!(
            status.quorum_read,
            Err("not tried: it knows no leader".to_owned())
        );
        assert!(
            fake.calls()
                .iter()
                .any(|c| c.starts_with("etcd quorum_read ")),
            "the read went out beside Status"
        );
    }

    async fn look(d: &Desired, fake: &FakeCluster) -> LiveCluster {
        let mut live = observe(d, &fake.hosts(d), fake, &Secrets::default()).await;
        check_hashes(d, fake, &mut live).await;
        live.cluster.unwrap_or_else(|| panic!("no cluster"))
    }

    fn id_of(c: &LiveCluster, name: &str) -> MemberId {
        c.members
            .iter()
            .find(|m| m.name.as_started() == Some(name))
            .map_or_else(|| panic!("no {name}"), |m| m.id)
    }

    #[tokio::test]
    async fn equal_data_agrees_at_the_lowest_revision_and_a_skewed_member_is_named() {
        let (d, fake) = three();
        let c = look(&d, &fake).await;
        let h = c.hash_check.clone().unwrap_or_else(|| panic!("no check"));
        assert!(
            matches!(&h.verdict, HashVerdict::Agree { members } if members.len() == 3),
            "{h:?}"
        );
        let lowest = c
            .members
            .iter()
            .filter_map(|m| Some(m.status.as_ref().ok()?.reported.revision))
            .min();
        assert_eq!(Some(h.revision), lowest);
        let asked: Vec<String> = fake
            .calls()
            .into_iter()
            .filter(|l| l.starts_with("etcd hash_kv "))
            .collect();
        assert_eq!(asked.len(), 3, "{asked:?}");
        assert!(
            asked
                .iter()
                .all(|l| l.ends_with(&format!(" {}", h.revision)))
        );

        fake.skew_hash("etcd-2");
        let c = look(&d, &fake).await;
        let h = c.hash_check.clone().unwrap_or_else(|| panic!("no check"));
        assert_eq!(
            h.verdict,
            HashVerdict::Disagree {
                majority: vec![id_of(&c, "etcd-1"), id_of(&c, "etcd-3")],
                differing: vec![id_of(&c, "etcd-2")],
            }
        );
    }

    #[tokio::test]
    async fn unequal_compact_revisions_are_not_compared_and_learners_are_not_asked() {
        let (d, fake) = three();
        fake.set_compact_revision("etcd-1", 5);
        fake.set_compact_revision("etcd-2", 7);
        let c = look(&d, &fake).await;
        let h = c.hash_check.unwrap_or_else(|| panic!("no check"));
        assert!(
            matches!(&h.verdict, HashVerdict::NotComparable { reason } if reason.contains("compact revisions differ")),
            "{h:?}"
        );
        assert_eq!(h.compact_revision, None);

        // A learner (added, then started by hand) is left out.
        let (d, fake) = three();
        let leader = d.members[0].client_url(&d.tls);
        let peer = Endpoint::parse("http://10.0.0.14:2380").unwrap_or_else(|| unreachable!());
        assert!(fake.add_learner(&leader, &peer).await.is_ok());
        let c = look(&d, &fake).await;
        assert_eq!(c.members.len(), 4);
        let h = c.hash_check.unwrap_or_else(|| panic!("no check"));
        assert_eq!(h.members.len(), 3, "{h:?}");
        assert!(
            !fake
                .calls()
                .iter()
                .any(|l| l.contains("hash_kv http://10.0.0.14"))
        );
    }

    #[tokio::test]
    async fn the_quota_comes_from_metrics_else_the_config_file() {
        let (d, fake) = three();
        fake.set_metrics(
            "etcd-1",
            Some("etcd_server_quota_backend_bytes 4e+09\netcd_disk_defrag_inflight 1\n"),
        );
        fake.set_metrics("etcd-2", None);
        let c = look(&d, &fake).await;
        let db = |name: &str| {
            c.members
                .iter()
                .find(|m| m.name.as_started() == Some(name))
                .and_then(|m| m.db)
                .unwrap_or_else(|| panic!("no db for {name}"))
        };
        let one = db("etcd-1");
        assert_eq!(
            (one.figures.db_quota, one.quota_from, one.defragmenting),
            (4_000_000_000, QuotaSource::Metrics, Some(true))
        );
        // No metrics: the config file on its host says 3 GiB.
        let two = db("etcd-2");
        assert_eq!(
            (two.figures.db_quota, two.quota_from, two.defragmenting),
            (3 << 30, QuotaSource::Config, None)
        );
        let three = db("etcd-3");
        assert_eq!(
            (three.quota_from, three.defragmenting),
            (QuotaSource::Metrics, Some(false))
        );
        let m = &c.members[0];
        assert_eq!(m.db_figures().map(|f| f.db_quota), Some(4_000_000_000));
        assert!(
            m.db_figures()
                .is_some_and(|f| f.db_size >= f.db_size_in_use)
        );

        // A member down has no figures.
        fake.kill("etcd-3");
        let c = look(&d, &fake).await;
        assert!(c.members[2].db_figures().is_none());
    }

    /// `d` with `[auth]`: root and "app" log in by the passwords in these
    /// files, "cert" by its certificate.
    fn with_auth(d: &mut Desired, root_pw: &std::path::Path, app_pw: &std::path::Path) {
        use crate::config::{Auth, DesiredUser, Login, SecretSource, TokenKind};
        let name = |s: &str| AuthName::parse(s).unwrap_or_else(|_| unreachable!());
        d.auth = Some(Auth {
            enabled: true,
            root: Login::Password(SecretSource::File(root_pw.to_owned())),
            token: TokenKind::Simple,
            token_ttl: std::time::Duration::from_secs(300),
            prune: false,
            roles: Vec::new(),
            users: vec![
                DesiredUser {
                    name: name("app"),
                    login: Login::Password(SecretSource::File(app_pw.to_owned())),
                    roles: Vec::new(),
                },
                DesiredUser {
                    name: name("cert"),
                    login: Login::Certificate,
                    roles: Vec::new(),
                },
            ],
        });
    }

    #[tokio::test]
    async fn the_auth_store_is_read_and_each_declared_password_tried_only_while_auth_is_on() {
        use crate::io::fake::{FakeAuth, FakeUser};
        let (mut d, fake) = three();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (root_pw, app_pw) = (dir.path().join("root"), dir.path().join("app"));
        std::fs::write(&root_pw, "root-pw\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&app_pw, "new-app-pw\n").unwrap_or_else(|e| panic!("{e}"));
        with_auth(&mut d, &root_pw, &app_pw);
        let user = |pw: Option<&str>, roles: &[&str]| FakeUser {
            password: pw.map(str::to_owned),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        let mut store = FakeAuth::default();
        store
            .users
            .insert("root".into(), user(Some("root-pw"), &["root"]));
        store
            .users
            .insert("app".into(), user(Some("old-app-pw"), &["app"]));
        store.users.insert("cert".into(), user(None, &[]));
        store.users.insert("stranger".into(), user(Some("x"), &[]));
        store.roles.insert("app".into(), Vec::new());
        fake.set_auth(store.clone());
        let secrets = Secrets::read(&d);

        let off = observe(&d, &fake.hosts(&d), &fake, &secrets).await;
        let Some(LiveAuth {
            enabled: false,
            store: Ok(s),
        }) = off.auth
        else {
            panic!("auth off: {:?}", off.auth);
        };
        assert!(
            s.users
                .iter()
                .all(|u| u.password == PasswordCheck::NotChecked)
        );
        assert!(!fake.calls().iter().any(|c| c.starts_with("etcd login")));

        store.enabled = true;
        fake.set_auth(store.clone());
        let on = observe(&d, &fake.hosts(&d), &fake, &secrets).await;
        let Some(LiveAuth {
            enabled: true,
            store: Ok(s),
        }) = on.auth
        else {
            panic!("auth on: {:?}", on.auth);
        };
        let check = |n: &str| s.user(n).map(|u| u.password);
        assert_eq!(check("root"), Some(PasswordCheck::Accepted));
        assert_eq!(check("app"), Some(PasswordCheck::Refused));
        assert_eq!(check("cert"), Some(PasswordCheck::NotChecked));
        assert_eq!(check("stranger"), Some(PasswordCheck::NotChecked));
        assert_eq!(
            s.user("app").map(|u| u.roles.clone()),
            Some(vec!["app".into()])
        );
        assert_eq!(s.role("app").map(|r| r.permissions.len()), Some(0));
        // No password reaches the call log.
        let log = fake.calls().join("\n");
        assert!(!log.contains("root-pw") && !log.contains("app-pw"), "{log}");

        // A client that is not root cannot read the store: said, not fatal.
        store.caller = Some("app".into());
        fake.set_auth(store);
        let denied = observe(&d, &fake.hosts(&d), &fake, &secrets).await;
        match denied.auth {
            Some(LiveAuth {
                enabled: true,
                store: Err(why),
            }) => assert!(why.contains("permission denied"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
