//! The [`EtcdApi`] of a [`FakeCluster`]: each call is logged, answered only
//! by a running member, and refused with etcd's own errors where etcd would.

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{FakeCluster, FakeMember, World, call_error};
use crate::io::etcd::ApiHashKv;
use crate::io::{
    ApiAlarm, ApiMember, ApiStatus, DowngradeAction, EtcdApi, EtcdError, EtcdErrorKind,
};
use crate::live::DowngradeInfo;
use crate::model::{ClusterId, Endpoint, EtcdVersion, MemberId, MinorVersion};

/// How many raft entries a learner may trail and still be promoted (etcd
/// allows 90% of the leader's progress; a small margin is enough here).
const PROMOTE_MARGIN: u64 = 5;
#[async_trait]
impl EtcdApi for FakeCluster {
    async fn member_list(&self, ep: &Endpoint) -> Result<Vec<ApiMember>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd member_list {ep}"));
        w.serving(ep)?;
        Ok(w.members.iter().map(World::api_member).collect())
    }

    async fn status(&self, ep: &Endpoint) -> Result<ApiStatus, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd status {ep}"));
        let i = w.serving(ep)?;
        let m = w.members[i].clone();
        let errors = w
            .alarms
            .iter()
            .map(|a| format!("memberID:{} alarm:{}", a.member.0, a.kind))
            .collect();
        let status = ApiStatus {
            cluster_id: ClusterId(w.cluster_id),
            member_id: m.id,
            version: m.version,
            db_size: w.db_of(m.id).0,
            db_size_in_use: w.db_of(m.id).1,
            db_quota: w.quota,
            leader: w.leader,
            raft_index: w.index,
            raft_applied_index: m.applied,
            raft_term: w.term,
            revision: i64::try_from(w.index).unwrap_or(i64::MAX),
            is_learner: m.learner,
            errors,
            // A 3.5 binary reports neither.
            storage_version: m.storage.filter(|_| reports_storage(m.version)),
            downgrade: reports_storage(m.version).then_some(DowngradeInfo {
                enabled: w.downgrade.is_some(),
                target: w.downgrade,
            }),
        };
        w.monitor();
        // A learner catches up between two looks.
        if w.leader.is_some() {
            w.members[i].applied = w.index;
        }
        Ok(status)
    }

    async fn alarms(&self, ep: &Endpoint) -> Result<Vec<ApiAlarm>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd alarms {ep}"));
        w.serving(ep)?;
        Ok(w.alarms.clone())
    }

    async fn quorum_read(&self, ep: &Endpoint) -> Result<(), EtcdError> {
        let waits = {
            let mut w = self.world();
            w.calls.push(format!("etcd quorum_read {ep}"));
            w.reads_wait_for_a_leader && w.serving(ep).is_ok() && w.leader.is_none()
        };
        if waits {
            std::future::pending::<()>().await;
        }
        let w = self.world();
        let i = w.serving_with_leader(ep)?;
        if w.members[i].learner {
            return Err(call_error(
                ep,
                EtcdErrorKind::Other,
                "etcdserver: rpc not supported for learner",
            ));
        }
        Ok(())
    }

    async fn move_leader(&self, ep: &Endpoint, to: MemberId) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd move_leader {ep} {to}"));
        let i = w.serving_with_leader(ep)?;
        if Some(w.members[i].id) != w.leader {
            return Err(call_error(
                ep,
                EtcdErrorKind::NotLeader,
                "etcdserver: not leader",
            ));
        }
        let Some(target) = w.members.iter().find(|m| m.id == to) else {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotFound,
                "etcdserver: member not found",
            ));
        };
        if target.learner || !w.answering(target) {
            return Err(call_error(
                ep,
                EtcdErrorKind::Other,
                "etcdserver: bad leader transferee",
            ));
        }
        w.leader = Some(to);
        w.term += 1;
        Ok(())
    }

    async fn add_learner(&self, ep: &Endpoint, peer_url: &Endpoint) -> Result<MemberId, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd add_learner {ep} {peer_url}"));
        w.serving_with_leader(ep)?;
        if w.members.iter().any(|m| !m.learner && !w.answering(m)) {
            return Err(call_error(
                ep,
                EtcdErrorKind::Unhealthy,
                "etcdserver: unhealthy cluster",
            ));
        }
        if w.members.iter().any(|m| m.learner) {
            return Err(call_error(
                ep,
                EtcdErrorKind::TooManyLearners,
                "etcdserver: too many learner members in cluster",
            ));
        }
        if w.members.iter().any(|m| m.peer_urls.contains(peer_url)) {
            return Err(call_error(
                ep,
                EtcdErrorKind::Other,
                "etcdserver: Peer URLs already exists",
            ));
        }
        let id = w.new_id();
        w.members.push(FakeMember {
            id,
            name: String::new(),
            peer_urls: vec![peer_url.clone()],
            client_urls: Vec::new(),
            learner: true,
            host: None,
            version: None,
            applied: 0,
            storage: None,
        });
        w.commit();
        Ok(id)
    }

    async fn promote(&self, ep: &Endpoint, id: MemberId) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd promote {ep} {id}"));
        w.serving_with_leader(ep)?;
        let index = w.index;
        let Some(i) = w.members.iter().position(|m| m.id == id) else {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotFound,
                "etcdserver: member not found",
            ));
        };
        let m = &w.members[i];
        if !m.learner {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotLearner,
                "etcdserver: can only promote a learner member",
            ));
        }
        if !w.answering(m) || m.applied + PROMOTE_MARGIN < index {
            return Err(call_error(
                ep,
                EtcdErrorKind::LearnerNotReady,
                "etcdserver: can only promote a learner member which is in sync with leader",
            ));
        }
        w.members[i].learner = false;
        w.commit();
        w.settle();
        Ok(())
    }

    async fn remove(&self, ep: &Endpoint, id: MemberId) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd remove {ep} {id}"));
        w.serving_with_leader(ep)?;
        let Some(i) = w.members.iter().position(|m| m.id == id) else {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotFound,
                "etcdserver: member not found",
            ));
        };
        let gone = w.members.remove(i);
        w.commit();
        // A removed member's etcd exits by itself.
        if let Some(h) = gone.host {
            if let Some(d) = w.hosts.get_mut(&h) {
                d.log
                    .push("the member has been permanently removed from the cluster".into());
            }
            w.stop(&h);
        }
        if w.leader == Some(id) {
            w.leader = None;
        }
        w.settle();
        Ok(())
    }

    async fn update_peer(
        &self,
        ep: &Endpoint,
        id: MemberId,
        peer_url: &Endpoint,
    ) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls
            .push(format!("etcd update_peer {ep} {id} {peer_url}"));
        w.serving_with_leader(ep)?;
        let Some(m) = w.members.iter_mut().find(|m| m.id == id) else {
            return Err(call_error(
                ep,
                EtcdErrorKind::MemberNotFound,
                "etcdserver: member not found",
            ));
        };
        m.peer_urls = vec![peer_url.clone()];
        w.commit();
        Ok(())
    }

    async fn create_leased(
        &self,
        ep: &Endpoint,
        key: &str,
        value: &str,
        _ttl: Duration,
    ) -> Result<Result<i64, String>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd create_leased {ep} {key}"));
        w.serving_with_leader(ep)?;
        if let Some((held, _)) = w.kv.get(key) {
            return Ok(Err(held.clone()));
        }
        w.next_lease += 1;
        let lease = w.next_lease;
        w.kv.insert(key.to_owned(), (value.to_owned(), Some(lease)));
        w.commit();
        Ok(Ok(lease))
    }

    async fn keep_alive(&self, ep: &Endpoint, lease: i64) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd keep_alive {ep} {lease}"));
        w.serving_with_leader(ep)?;
        Ok(())
    }

    async fn delete_if(
        &self,
        ep: &Endpoint,
        key: &str,
        value: &str,
        _lease: Option<i64>,
    ) -> Result<bool, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd delete_if {ep} {key}"));
        w.serving_with_leader(ep)?;
        let holds = w.kv.get(key).is_some_and(|(v, _)| v == value);
        if holds {
            w.kv.remove(key);
            w.commit();
        }
        Ok(holds)
    }

    async fn range_page(
        &self,
        ep: &Endpoint,
        from: &[u8],
        _revision: i64,
        limit: i64,
    ) -> Result<crate::io::etcd::RangePage, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd range {ep}"));
        w.serving_with_leader(ep)?;
        let mut kvs: Vec<(Vec<u8>, Vec<u8>)> =
            w.kv.iter()
                .filter(|(k, _)| k.as_bytes() >= from)
                .map(|(k, (v, _))| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
        kvs.sort();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
        let more = kvs.len() > limit;
        kvs.truncate(limit);
        Ok(crate::io::etcd::RangePage {
            kvs,
            more,
            header_revision: i64::try_from(w.index).unwrap_or(i64::MAX),
        })
    }

    async fn get_value(&self, ep: &Endpoint, key: &str) -> Result<Option<String>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd get_value {ep} {key}"));
        w.serving_with_leader(ep)?;
        Ok(w.kv.get(key).map(|(v, _)| v.clone()))
    }

    async fn snapshot(&self, ep: &Endpoint, _deadline: Duration) -> Result<Vec<u8>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd snapshot {ep}"));
        w.serving(ep)?;
        let mut data = format!("fake etcd backend at index {}", w.index).into_bytes();
        let trailer = Sha256::digest(&data);
        data.extend_from_slice(&trailer);
        Ok(data)
    }

    async fn cluster_version(&self, ep: &Endpoint) -> Result<Option<MinorVersion>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd cluster_version {ep}"));
        w.serving(ep)?;
        Ok(w.cluster_version())
    }

    async fn downgrade(
        &self,
        ep: &Endpoint,
        action: DowngradeAction,
        target: MinorVersion,
    ) -> Result<Option<MinorVersion>, EtcdError> {
        let mut w = self.world();
        w.calls
            .push(format!("etcd downgrade {} {target} {ep}", action.word()));
        w.serving_with_leader(ep)?;
        if let Some((message, kind)) = &w.fail_downgrade {
            return Err(call_error(ep, *kind, message));
        }
        let cv = w.cluster_version();
        let in_progress = || {
            call_error(
                ep,
                EtcdErrorKind::DowngradeInProgress,
                "etcdserver: cluster has a downgrade job in progress",
            )
        };
        let one_below =
            cv.is_some_and(|cv| cv.major == target.major && cv.minor == target.minor + 1);
        match action {
            DowngradeAction::Validate | DowngradeAction::Enable => {
                if w.downgrade.is_some() {
                    return Err(in_progress());
                }
                if !one_below {
                    return Err(call_error(
                        ep,
                        EtcdErrorKind::InvalidDowngradeTarget,
                        "etcdserver: invalid downgrade target version",
                    ));
                }
                if action == DowngradeAction::Enable {
                    w.downgrade = Some(target);
                    w.storage_lag = 2;
                    w.commit();
                }
            }
            DowngradeAction::Cancel => {
                if w.downgrade.take().is_none() {
                    return Err(call_error(
                        ep,
                        EtcdErrorKind::NoDowngradeInProgress,
                        "etcdserver: no inflight downgrade job",
                    ));
                }
                w.commit();
            }
        }
        Ok(cv)
    }

    async fn compact(
        &self,
        ep: &Endpoint,
        revision: i64,
        _deadline: Duration,
    ) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd compact {ep} {revision}"));
        w.serving_with_leader(ep)?;
        if revision <= w.compacted {
            return Err(call_error(
                ep,
                EtcdErrorKind::Compacted,
                "etcdserver: mvcc: required revision has been compacted",
            ));
        }
        w.compacted = revision;
        w.commit();
        Ok(())
    }

    async fn defragment(&self, ep: &Endpoint, deadline: Duration) -> Result<(), EtcdError> {
        let stalls = {
            let mut w = self.world();
            w.calls.push(format!("etcd defragment {ep}"));
            let i = w.serving(ep)?;
            let m = w.members[i].clone();
            if m.learner {
                return Err(call_error(
                    ep,
                    EtcdErrorKind::Other,
                    "etcdserver: rpc not supported for learner",
                ));
            }
            if w.defrag_stalls.contains(&m.name) {
                true
            } else {
                let (_, used) = w.db_of(m.id);
                w.db.insert(m.id, (used, used));
                false
            }
        };
        if stalls {
            tokio::time::sleep(deadline).await;
            return Err(EtcdError::Timeout {
                endpoint: ep.to_string(),
                timeout: deadline,
            });
        }
        Ok(())
    }

    async fn alarm_disarm(&self, ep: &Endpoint, alarm: &ApiAlarm) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!(
            "etcd alarm_disarm {ep} {} {}",
            alarm.member, alarm.kind
        ));
        w.serving_with_leader(ep)?;
        w.alarms.retain(|a| a != alarm);
        w.commit();
        Ok(())
    }

    async fn put(&self, ep: &Endpoint, key: &str, value: &str) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd put {ep} {key}"));
        w.serving_with_leader(ep)?;
        if w.alarms.iter().any(|a| a.kind == "NOSPACE") {
            return Err(call_error(
                ep,
                EtcdErrorKind::NoSpace,
                "etcdserver: mvcc: database space exceeded",
            ));
        }
        w.kv.insert(key.to_owned(), (value.to_owned(), None));
        w.commit();
        Ok(())
    }

    async fn prefix_values(
        &self,
        ep: &Endpoint,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd prefix_values {ep} {prefix}"));
        w.serving_with_leader(ep)?;
        let mut kvs: Vec<(String, String)> =
            w.kv.iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, (v, _))| (k.clone(), v.clone()))
                .collect();
        kvs.sort();
        if limit > 0 {
            kvs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        Ok(kvs)
    }

    async fn delete_key(&self, ep: &Endpoint, key: &str) -> Result<(), EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd delete_key {ep} {key}"));
        w.serving_with_leader(ep)?;
        // etcd's capped applier under NOSPACE refuses puts, not deletes.
        if w.kv.remove(key).is_some() {
            w.commit();
        }
        Ok(())
    }

    async fn hash_kv(&self, ep: &Endpoint, revision: i64) -> Result<ApiHashKv, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd hash_kv {ep} {revision}"));
        let i = w.serving(ep)?;
        let m = &w.members[i];
        if m.learner {
            return Err(call_error(
                ep,
                EtcdErrorKind::Other,
                "etcdserver: rpc not supported for learner",
            ));
        }
        let current = i64::try_from(w.index).unwrap_or(i64::MAX);
        if revision > current {
            return Err(call_error(
                ep,
                EtcdErrorKind::Other,
                "etcdserver: mvcc: required revision is a future revision",
            ));
        }
        let digest = Sha256::digest(format!("{:?}", w.kv).as_bytes());
        let hash = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
            ^ w.hash_skew.get(&m.name).copied().unwrap_or(0);
        Ok(ApiHashKv {
            hash,
            compact_revision: w.compact_of.get(&m.name).copied().unwrap_or(0),
            hash_revision: reports_storage(m.version).then_some(revision),
            header_revision: current,
        })
    }

    async fn auth_enabled(&self, ep: &Endpoint) -> Result<bool, EtcdError> {
        self.auth_enabled_at(ep)
    }

    async fn auth_users(&self, ep: &Endpoint) -> Result<Vec<(String, Vec<String>)>, EtcdError> {
        self.auth_users_at(ep)
    }

    async fn auth_roles(&self, ep: &Endpoint) -> Result<Vec<crate::live::LiveRole>, EtcdError> {
        self.auth_roles_at(ep)
    }

    async fn login_accepted(
        &self,
        ep: &Endpoint,
        user: &str,
        password: &str,
    ) -> Result<bool, EtcdError> {
        self.login_at(ep, user, password)
    }

    async fn auth_change(
        &self,
        ep: &Endpoint,
        call: &crate::io::AuthCall<'_>,
    ) -> Result<(), EtcdError> {
        self.auth_change_at(ep, call)
    }

    async fn metrics(&self, ep: &Endpoint) -> Result<String, EtcdError> {
        let mut w = self.world();
        w.calls.push(format!("etcd metrics {ep}"));
        let i = w.serving(ep)?;
        match w.metrics_of.get(&w.members[i].name) {
            Some(Some(body)) => Ok(body.clone()),
            Some(None) => Err(call_error(
                ep,
                EtcdErrorKind::Unavailable,
                "GET /metrics: connection refused",
            )),
            None => Ok(format!(
                "etcd_server_quota_backend_bytes {}\netcd_disk_defrag_inflight 0\n",
                crate::model::DEFAULT_QUOTA
            )),
        }
    }
}

/// Whether a binary reports a storage version and the downgrade state
/// (etcd 3.6 and later).
fn reports_storage(version: Option<EtcdVersion>) -> bool {
    version.is_some_and(|v| (v.major, v.minor) >= (3, 6))
}
#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap_or_else(|| unreachable!())
    }

    fn three() -> (FakeCluster, Vec<Endpoint>) {
        three_on("3.5.17")
    }

    fn three_on(version: &str) -> (FakeCluster, Vec<Endpoint>) {
        let mut d = String::from("[cluster]\nname = \"main\"\n[hosts]\ntransport = \"ssh\"\n");
        for i in 1..=3 {
            d.push_str(&format!(
                "[[member]]\nname = \"etcd-{i}\"\naddress = \"10.0.0.{}\"\n",
                10 + i
            ));
        }
        let ctx = crate::config::Context {
            base_dir: PathBuf::from("/srv"),
            home: None,
            file_hash: crate::config::hash(&d),
            ..Default::default()
        };
        let Ok(loaded) = crate::config::parse("etcdfile.toml", d, &ctx) else {
            panic!("etcdfile");
        };
        let fake = FakeCluster::running(&loaded.desired, version, 0);
        let eps = (11..=13)
            .map(|i| ep(&format!("http://10.0.0.{i}:2379")))
            .collect();
        (fake, eps)
    }

    #[tokio::test]
    async fn an_auth_change_made_to_fail_is_refused_logged_and_leaves_the_store() {
        use crate::io::AuthCall;
        let (fake, eps) = three();
        fake.fail_auth("role add app", EtcdErrorKind::Other, "etcdserver: injected");
        let add = AuthCall::UserAdd {
            user: "app",
            password: Some("pw-Xy71"),
        };
        let role = AuthCall::RoleAdd { role: "app" };
        assert!(fake.auth_change(&eps[0], &add).await.is_ok());
        let e = fake.auth_change(&eps[0], &role).await.err();
        assert_eq!(e.as_ref().map(EtcdError::kind), Some(EtcdErrorKind::Other));
        assert!(e.is_some_and(|e| e.to_string().contains("etcdserver: injected")));
        assert!(
            fake.auth().roles.is_empty(),
            "a refused change changes nothing"
        );
        let pw = AuthCall::UserPassword {
            user: "app",
            password: "pw-Qr52",
        };
        assert!(fake.auth_change(&eps[1], &pw).await.is_ok());
        fake.heal_auth();
        assert!(fake.auth_change(&eps[0], &role).await.is_ok());
        assert_eq!(
            fake.auth_calls(),
            [
                "user add app (password)",
                "role add app",
                "user passwd app",
                "role add app"
            ]
        );
        assert_eq!(fake.auth_passwords(), ["pw-Xy71", "pw-Qr52"]);
        let shown = format!("{fake:?}");
        assert!(
            !shown.contains("pw-Xy71") && !shown.contains("pw-Qr52"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_stopped_member_stops_answering_and_leadership_moves() {
        let (fake, eps) = three();
        assert_eq!(fake.leader().as_deref(), Some("etcd-1"));
        fake.kill("etcd-1");
        let e = fake.status(&eps[0]).await.err().map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::Unavailable));
        assert_eq!(fake.leader().as_deref(), Some("etcd-2"));
        fake.kill("etcd-2");
        assert_eq!(fake.leader(), None, "one of three has no quorum");
        let s = fake.status(&eps[2]).await.ok().and_then(|s| s.leader);
        assert_eq!(s, None);
    }

    #[tokio::test]
    async fn an_added_member_is_a_nameless_learner_until_promoted() {
        let (fake, eps) = three();
        let peer = ep("http://10.0.0.14:2380");
        let id = match fake.add_learner(&eps[0], &peer).await {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        };
        let list = fake.member_list(&eps[1]).await.unwrap_or_default();
        let added = list.iter().find(|m| m.id == id);
        assert!(added.is_some_and(|m| m.is_learner
            && m.name == crate::live::LiveName::NotStarted
            && m.client_urls.is_empty()));
        // Never started: not in sync, so promote is refused.
        let e = fake.promote(&eps[0], id).await.err().map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::LearnerNotReady));
        // A second learner is refused.
        let e = fake
            .add_learner(&eps[0], &ep("http://10.0.0.15:2380"))
            .await
            .err()
            .map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::TooManyLearners));
    }

    #[tokio::test]
    async fn add_is_refused_while_a_voter_is_down_and_promote_of_a_voter_too() {
        let (fake, eps) = three();
        fake.kill("etcd-3");
        let e = fake
            .add_learner(&eps[0], &ep("http://10.0.0.14:2380"))
            .await
            .err()
            .map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::Unhealthy));
        let voter = fake.members()[0].id;
        let e = fake.promote(&eps[0], voter).await.err().map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::MemberNotLearner));
    }

    #[tokio::test]
    async fn move_leader_must_go_to_the_leader() {
        let (fake, eps) = three();
        let to = fake.members()[2].id;
        let e = fake.move_leader(&eps[1], to).await.err().map(|e| e.kind());
        assert_eq!(e, Some(EtcdErrorKind::NotLeader));
        assert!(fake.move_leader(&eps[0], to).await.is_ok());
        assert_eq!(fake.leader().as_deref(), Some("etcd-3"));
    }

    fn minor(s: &str) -> MinorVersion {
        MinorVersion::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn the_downgrade_api_checks_its_target_lowers_the_cluster_version_and_migrates_the_data()
    {
        use DowngradeAction::{Cancel, Enable, Validate};
        let (fake, eps) = three_on("3.7.1");
        let kind = |r: Result<Option<MinorVersion>, EtcdError>| r.err().map(|e| e.kind());
        // Only one minor version below the cluster version.
        for bad in ["3.5", "3.7", "3.8"] {
            let r = fake.downgrade(&eps[0], Validate, minor(bad)).await;
            assert_eq!(
                kind(r),
                Some(EtcdErrorKind::InvalidDowngradeTarget),
                "{bad}"
            );
        }
        let r = fake.downgrade(&eps[0], Validate, minor("3.6")).await;
        assert_eq!(r.ok(), Some(Some(minor("3.7"))));
        let r = fake.downgrade(&eps[1], Cancel, minor("3.6")).await;
        assert_eq!(kind(r), Some(EtcdErrorKind::NoDowngradeInProgress));
        // Enable: the cluster version drops at once, the data follows after
        // a few looks, and a second enable is refused.
        assert!(fake.downgrade(&eps[0], Enable, minor("3.6")).await.is_ok());
        assert_eq!(fake.cluster_version(), Some(minor("3.6")));
        let r = fake.downgrade(&eps[0], Enable, minor("3.6")).await;
        assert_eq!(kind(r), Some(EtcdErrorKind::DowngradeInProgress));
        let first = fake.status(&eps[0]).await.ok();
        assert_eq!(
            first.as_ref().and_then(|s| s.storage_version),
            Some(minor("3.7"))
        );
        assert_eq!(
            first.and_then(|s| s.downgrade),
            Some(DowngradeInfo {
                enabled: true,
                target: Some(minor("3.6"))
            })
        );
        for _ in 0..3 {
            let _ = fake.status(&eps[1]).await;
        }
        let s = fake.status(&eps[2]).await.ok();
        assert_eq!(s.and_then(|s| s.storage_version), Some(minor("3.6")));
        // Cancel with every member still on 3.7.1: the version is back up.
        assert!(fake.downgrade(&eps[2], Cancel, minor("3.6")).await.is_ok());
        assert_eq!(fake.downgrade_enabled(), None);
        assert_eq!(fake.cluster_version(), Some(minor("3.7")));
        let _ = fake.status(&eps[0]).await;
        assert!(
            fake.storage_versions()
                .iter()
                .all(|(_, s)| *s == Some(minor("3.7"))),
            "{:?}",
            fake.storage_versions()
        );
    }

    #[tokio::test]
    async fn a_3_5_member_reports_no_storage_version_nor_downgrade_state() {
        let (fake, eps) = three();
        let s = fake.status(&eps[0]).await.ok();
        assert!(s.is_some_and(|s| s.storage_version.is_none() && s.downgrade.is_none()));
    }
}
