//! Planning against a running cluster: one chain of steps in etcd's order
//! (repairs, dead members out, new members in, healthy members out, rolling
//! restarts, then phased changes), each membership step checked against the
//! simulated cluster and deferred, with the reason, when quorum rules forbid it.

use petgraph::graph::NodeIndex;

use super::prepare::{install_steps, write_step};
use super::sim::{Sim, SimMember};
use super::{Options, Step, graph, may_add, may_disrupt, may_promote, may_remove};
use crate::config::Desired;
use crate::diff::{Action, Blocker, Change, ChangeKind, DefragCause, Join};
use crate::live::{HostState, Live, LiveCluster};
use crate::model::{MemberId, MemberName, MinorVersion, Retention};

/// Plans the changes; returns those planned and those deferred. A snapshot
/// comes first when a membership change survives the quorum rules, or a
/// version change is made.
pub(super) fn plan(
    d: &Desired,
    live: &Live,
    opts: &Options,
    changes: Vec<Change>,
    b: &mut graph::Builder,
    notes: &mut Vec<String>,
    blockers: &mut Vec<Blocker>,
) -> (Vec<Change>, Vec<Change>) {
    // A first pass finds out whether any membership step survives the
    // quorum rules; only then does the plan start with a snapshot.
    let membership = {
        let mut dry = graph::Builder::default();
        let (mut n, mut bl) = (Vec::new(), Vec::new());
        let mut r = Running {
            d,
            live,
            opts,
            b: &mut dry,
            sim: Sim::from_live(d, live),
            prev: None,
            notes: &mut n,
            snapshot: false,
            led_by: None,
        };
        let (planned, _) = r.plan(changes.clone(), &mut bl);
        planned.iter().any(|c| {
            matches!(
                c.kind,
                ChangeKind::Add { .. } | ChangeKind::Remove { .. } | ChangeKind::Replace { .. }
            )
        })
    };
    let mut r = Running {
        d,
        live,
        opts,
        b,
        sim: Sim::from_live(d, live),
        prev: None,
        notes,
        snapshot: membership
            || changes.iter().any(|c| {
                matches!(
                    c.kind,
                    ChangeKind::Restart {
                        phase: Some(_),
                        binary: Some(_),
                        ..
                    }
                )
            }),
        led_by: None,
    };
    r.plan(changes, blockers)
}

/// Planning against a running cluster: one chain of steps, each checked
/// against the simulated cluster.
struct Running<'a> {
    d: &'a Desired,
    live: &'a Live,
    opts: &'a Options,
    b: &'a mut graph::Builder,
    sim: Sim,
    prev: Option<NodeIndex>,
    notes: &'a mut Vec<String>,
    /// Start with a snapshot (some membership change will be made).
    snapshot: bool,
    /// The member the plan's last leadership change hands over to (a move,
    /// or the expected pick of etcd's handover as the leader restarts): the
    /// leader by then (the one observed before any).
    led_by: Option<MemberName>,
}

impl Running<'_> {
    /// Adds a step after the previous one.
    fn then(&mut self, s: Step) -> NodeIndex {
        if let Step::MoveLeader { to, .. } = &s {
            self.led_by = Some(to.clone());
        }
        let n = self.b.add(s);
        self.b.edge_opt(self.prev, n);
        self.prev = Some(n);
        n
    }

    /// Leadership moved from `from` to `preferred`, else to the first
    /// healthy voter other than it (none: no step).
    fn hand_over(&mut self, from: &MemberName, preferred: Option<(MemberName, MemberId)>) {
        let target = preferred.or_else(|| {
            self.sim
                .members
                .iter()
                .find(|m| m.name != from.as_str() && !m.learner && m.healthy)
                .and_then(|m| Some((MemberName::parse(&m.name).ok()?, m.id?)))
        });
        if let Some((to, to_id)) = target {
            self.then(Step::MoveLeader {
                from: from.clone(),
                to,
                to_id,
            });
        }
    }

    /// Whom etcd's graceful stop of the leader `from` most likely hands
    /// leadership to: the voter whose peer connection to it has been up the
    /// longest (`longestConnected`). One this pass did not restart is older
    /// than any it did (the first in the etcdfile's order is a guess among
    /// them); else the member this pass restarted first. A wrong guess costs
    /// the next pass one more leader change, never safety: the executor
    /// reads who leads at run time.
    fn successor(
        &self,
        from: &MemberName,
        restarted: &[(MemberName, MemberId)],
    ) -> Option<MemberName> {
        let untouched = self
            .sim
            .healthy_voters(self.d)
            .into_iter()
            .find(|n| n != from && !restarted.iter().any(|(r, _)| r == n));
        untouched.or_else(|| restarted.first().map(|(n, _)| n.clone()))
    }

    fn defer(&mut self, c: Change, why: String, deferred: &mut Vec<Change>) {
        self.notes.push(format!(
            "{} of {} is deferred: {why}",
            verb(c.action()),
            c.member
        ));
        deferred.push(c);
    }

    fn plan(
        &mut self,
        changes: Vec<Change>,
        blockers: &mut Vec<Blocker>,
    ) -> (Vec<Change>, Vec<Change>) {
        let mut planned = Vec::new();
        let mut deferred = Vec::new();
        // The changes whose kind passes `f`, in file order.
        let of_kind =
            |f: fn(&ChangeKind) -> bool| changes.iter().filter(move |c| f(&c.kind)).cloned();

        // A majority removed in one file change is refused unless asked for.
        let voters = self.sim.voters().iter().filter(|v| !v.learner).count();
        let leaving = changes
            .iter()
            .filter(|c| matches!(&c.kind, ChangeKind::Remove { departing } if !departing.learner))
            .count();
        if voters > 0 && leaving * 2 > voters && !self.opts.allow_majority_removal {
            blockers.push(Blocker {
                member: None,
                message: format!("the etcdfile removes {leaving} of {voters} voters, a majority of the cluster"),
                help: "if that is what you want, pass --allow-majority-removal; members still leave one at a time".into(),
            });
        }

        // Releases uploaded before anything else: a bad upload stops the apply
        // before any member is touched.
        for s in install_steps(self.d, &changes) {
            self.then(s);
        }
        if self.snapshot {
            self.then(Step::Snapshot {
                dir: self.opts.snapshot_dir.clone(),
            });
        }

        // 1. Repairs: members of the cluster whose etcd is not running.
        for c in of_kind(|k| matches!(k, ChangeKind::Start { .. })) {
            let write = write_step(self.b, self.d, &c);
            let s = self.then(Step::Start {
                member: c.member.clone(),
            });
            self.b.edge_opt(write, s);
            self.then(Step::WaitHealthy {
                members: vec![c.member.clone()],
            });
            self.sim.set_healthy(c.member.as_str(), true);
            planned.push(c);
        }

        // Advertised peer URLs brought in line with what members listen on, and
        // certificates renewed in place.
        for c in of_kind(|k| matches!(k, ChangeKind::Update { phase: None, .. })) {
            self.update(c, &mut planned);
        }
        // 2. Dead members out (a replacement follows its removal at once).
        let dead = |c: &Change| c.departing().is_some_and(|dep| !dep.healthy);
        for c in changes.iter().filter(|c| dead(c)) {
            self.departure(c.clone(), &mut planned, &mut deferred);
        }
        // 3. New members in, one at a time, in file order.
        for c in of_kind(|k| matches!(k, ChangeKind::Add { .. })) {
            self.arrival(c, &mut planned, &mut deferred);
        }
        // 4. Healthy members replaced, then 5. healthy members out, the leader last.
        for c in changes.iter().filter(
            |c| matches!(&c.kind, ChangeKind::Replace { departing, .. } if departing.healthy),
        ) {
            self.departure(c.clone(), &mut planned, &mut deferred);
        }
        let mut leaving: Vec<Change> = changes
            .iter()
            .filter(|c| matches!(&c.kind, ChangeKind::Remove { departing } if departing.healthy))
            .cloned()
            .collect();
        leaving.sort_by_key(|c| c.leader);
        for c in leaving {
            self.departure(c, &mut planned, &mut deferred);
        }

        // 6. Rolling restarts: followers in file order, the leader last.
        self.restarts(
            of_kind(|k| {
                matches!(
                    k,
                    ChangeKind::Restart { phase: None, .. } | ChangeKind::Adopt { .. }
                )
            })
            .collect(),
            &mut planned,
            &mut deferred,
        );

        // 7. A TLS migration: its phases in order, each rolling over its members.
        let mut phases: Vec<u32> = changes.iter().filter_map(Change::phase).collect();
        phases.sort_unstable();
        phases.dedup();
        let mut version_passes = 0;
        let mut cancel = self.downgrade_to_cancel(&changes);
        for p in phases {
            let group: Vec<Change> = changes
                .iter()
                .filter(|c| c.phase() == Some(p))
                .cloned()
                .collect();
            if !deferred.is_empty() {
                // A phase never runs once an earlier one could not.
                deferred.extend(group);
                continue;
            }
            // Every pass of a version change starts from a snapshot from
            // the leader (upgrade::Check::SnapshotEachPass); the plan's
            // first snapshot serves the first pass.
            if group.iter().any(|c| c.binary().is_some()) {
                version_passes += 1;
                if version_passes > 1 {
                    self.then(Step::Snapshot {
                        dir: self.opts.snapshot_dir.clone(),
                    });
                }
            }
            // Before the first member runs 3.6: every member's v2 store
            // checked, one member at a time (upgrade::Check::V2CleanBefore).
            let onto_v2_free = group.iter().any(|c| {
                c.binary().is_some_and(|b| {
                    crate::diff::upgrade::needs_v2_check(b.to.minor())
                        && b.from.is_some_and(|f| f.minor() < b.to.minor())
                })
            });
            if onto_v2_free {
                let members: Vec<MemberName> = self
                    .d
                    .members
                    .iter()
                    .map(|m| m.name.clone())
                    .filter(|n| self.sim.members.iter().any(|s| s.name == n.as_str()))
                    .collect();
                for m in members {
                    self.then(Step::CheckV2Store { member: m.clone() });
                    self.then(Step::WaitHealthy { members: vec![m] });
                }
            }
            if let Some(target) = cancel.take() {
                self.then(Step::DowngradeCancel { target });
            }
            let downgrade = self.phase_downgrade(&group);
            if let Some(target) = downgrade {
                self.downgrade_start(target);
            }
            let (updates, restarts): (Vec<Change>, Vec<Change>) = group
                .into_iter()
                .partition(|c| matches!(c.kind, ChangeKind::Update { .. }));
            for c in updates {
                self.update(c, &mut planned);
            }
            let before = deferred.len();
            self.restarts(restarts, &mut planned, &mut deferred);
            if deferred.len() == before {
                if let Some(version) = crate::diff::pass_minor(&changes, p) {
                    self.then(Step::ClusterVersion { version });
                }
                if let Some(target) = downgrade {
                    self.then(Step::DowngradeFinished { target });
                }
            }
        }
        // 8. Maintenance: compaction, then defragmentations one member at
        // a time, the leader last; a NOSPACE repair ends with the disarm.
        if deferred.is_empty() {
            self.maintenance(
                of_kind(|k| matches!(k, ChangeKind::Defragment { .. })).collect(),
                &mut planned,
            );
        } else {
            for c in of_kind(|k| matches!(k, ChangeKind::Defragment { .. })) {
                self.defer(c, "an earlier change is deferred".into(), &mut deferred);
            }
        }
        (planned, deferred)
    }

    /// The API steps before a downgrade's restarts: validate and enable it,
    /// unless a downgrade to this target is found enabled already (an
    /// earlier apply stopped half way); then the wait for every member's
    /// storage version.
    fn downgrade_start(&mut self, target: MinorVersion) {
        if self.downgrade_enabled() == Some(target) {
            self.notes.push(format!(
                "a downgrade to {target} is in progress (enabled by an earlier apply): this plan continues it"
            ));
        } else {
            self.then(Step::DowngradeValidate { target });
            self.then(Step::DowngradeEnable { target });
        }
        self.then(Step::WaitStorageVersion { target });
    }

    /// The target of the downgrade the live cluster reports enabled, if any.
    fn downgrade_enabled(&self) -> Option<MinorVersion> {
        self.live
            .cluster
            .as_ref()
            .and_then(LiveCluster::downgrade_in_progress)
    }

    /// The target of a phase that downgrades through etcd's API: a pass the
    /// version rules route through it, or the binaries swapped back onto
    /// the target of a downgrade found enabled (the rest of it).
    fn phase_downgrade(&self, group: &[Change]) -> Option<MinorVersion> {
        let moves: Vec<&crate::diff::BinaryMove> =
            group.iter().filter_map(Change::binary).collect();
        let to = moves.first()?.to.minor();
        (moves.iter().any(|b| b.via_api) || self.downgrade_enabled() == Some(to)).then_some(to)
    }

    /// A downgrade found in progress that the plan's version passes leave
    /// (the etcdfile asks for the newer version again): it is cancelled
    /// before the first of them.
    fn downgrade_to_cancel(&mut self, changes: &[Change]) -> Option<MinorVersion> {
        let target = self.downgrade_enabled()?;
        let continues = changes
            .iter()
            .any(|c| c.binary().is_some_and(|b| b.to.minor() == target));
        let moves = changes
            .iter()
            .any(|c| c.phase().is_some() && c.binary().is_some());
        if continues || !moves {
            return None;
        }
        self.notes.push(format!(
            "a downgrade to {target} is in progress and the etcdfile asks for another version: it is cancelled first, then the members roll onto that version"
        ));
        Some(target)
    }

    /// An update in place: a MemberUpdate, new certificates, or both; each
    /// followed by a health gate.
    fn update(&mut self, c: Change, planned: &mut Vec<Change>) {
        if c.certificates {
            self.then(Step::IssueCertificates {
                member: c.member.clone(),
            });
        }
        if let Some(step) = super::prepare::auth_step(self.d, &c) {
            self.then(step);
        }
        let peer_update = match &c.kind {
            ChangeKind::Update { peer_update, .. } => peer_update.clone(),
            _ => None,
        };
        if let Some(url) = &peer_update {
            self.then(Step::UpdatePeerUrl {
                member: c.member.clone(),
                peer_url: url.clone(),
            });
        }
        if c.certificates || c.auth_files || peer_update.is_some() {
            self.then(Step::WaitHealthy {
                members: vec![c.member.clone()],
            });
        }
        planned.push(c);
    }

    /// Removal (and, for a replace, the fresh add that follows).
    fn departure(&mut self, c: Change, planned: &mut Vec<Change>, deferred: &mut Vec<Change>) {
        let (dep, replace) = match &c.kind {
            ChangeKind::Remove { departing } => (departing.clone(), false),
            ChangeKind::Replace { departing, .. } => (departing.clone(), true),
            _ => return,
        };
        let name = dep.name.as_str().to_owned();
        if let Err(why) = may_remove(&self.sim.voters(), &name) {
            self.defer(c, why, deferred);
            return;
        }
        if dep.leader && dep.healthy {
            self.hand_over(&dep.name, None);
        }
        self.then(Step::RemoveMember {
            departing: dep.clone(),
        });
        self.sim.remove(&name);
        let remaining = self.sim.healthy_voters(self.d);
        if !remaining.is_empty() {
            self.then(Step::WaitHealthy { members: remaining });
        }
        // A host that lost its data has nothing to stop or move aside.
        let lost_data = replace
            && self
                .d
                .member(&c.member)
                .is_some_and(|m| m.address == dep.host.address)
            && self
                .live
                .hosts
                .get(&c.member)
                .and_then(HostState::facts)
                .is_some_and(|f| {
                    matches!(
                        f.data,
                        crate::live::DataDir::Absent | crate::live::DataDir::Empty
                    )
                });
        if !lost_data {
            self.then(Step::StopDeparted {
                departing: dep.clone(),
            });
            self.then(Step::RetireData {
                member: dep.host.clone(),
                departed: true,
            });
        }
        if replace {
            // The new half joins fresh.
            self.join_steps(&c, Join::New, planned, deferred);
        } else {
            planned.push(c);
        }
    }

    /// A member joining (new, or resuming an earlier join).
    fn arrival(&mut self, c: Change, planned: &mut Vec<Change>, deferred: &mut Vec<Change>) {
        let join = match c.kind {
            ChangeKind::Add { join, .. } => join,
            _ => Join::New,
        };
        self.join_steps(&c, join, planned, deferred);
    }

    /// The steps of a join that got as far as `join` before this plan.
    fn join_steps(
        &mut self,
        c: &Change,
        join: Join,
        planned: &mut Vec<Change>,
        deferred: &mut Vec<Change>,
    ) {
        let Some(m) = self.d.member(&c.member).cloned() else {
            return;
        };
        let name = m.name.as_str().to_owned();
        let mut voters = self.sim.voters();
        // A learner of our own in progress is the one this join continues.
        voters.retain(|v| !(v.learner && v.name == name));
        if let Err(why) = may_add(&voters) {
            self.defer(c.clone(), why, deferred);
            return;
        }
        let facts = self.live.hosts.get(&m.name).and_then(HostState::facts);
        let running = self.live.hosts.get(&m.name).is_some_and(HostState::running);
        if join == Join::New && facts.is_some_and(|f| crate::diff::stale_data(self.d, &m, f)) {
            self.then(Step::RetireData {
                member: m.clone(),
                departed: false,
            });
        }
        let peer = m.peer_url(&self.d.tls);
        if join == Join::New {
            self.then(Step::AddLearner {
                member: m.name.clone(),
                peer_url: peer.clone(),
            });
            self.sim.members.push(SimMember {
                name: name.clone(),
                id: None,
                peer_urls: vec![peer],
                healthy: false,
                learner: true,
            });
        }
        let mut change = c.clone();
        if !running || join == Join::New {
            if c.certificates {
                self.then(Step::IssueCertificates {
                    member: m.name.clone(),
                });
            }
            if let Some(step) = super::prepare::auth_step(self.d, c) {
                self.then(step);
            }
            let files = crate::diff::join_files(self.d, &m, facts, self.sim.initial_cluster());
            change.files = files.clone();
            // A continued join whose host has its files already (an earlier
            // run wrote them and stopped) goes on with the next step:
            // writing them first on every rerun, a run stopped after each
            // step would never get to the start.
            if join == Join::New || !files.is_empty() {
                self.then(Step::WriteJoinFiles {
                    member: m.name.clone(),
                    files,
                    release: Some(crate::diff::start_release(self.d, facts)),
                });
            }
            if let Some(mv) = c.binary().filter(|mv| mv.link) {
                self.then(Step::UseBinary {
                    member: m.name.clone(),
                    version: mv.to,
                });
            }
            self.then(Step::Start {
                member: m.name.clone(),
            });
        }
        // A learner an earlier run started and saw catch up goes straight
        // to its promotion (which waits out "not ready" itself): waiting
        // first on every rerun, a run stopped after each step would never
        // get to the promotion.
        let caught_up = join != Join::New
            && running
            && self
                .live
                .cluster
                .as_ref()
                .is_some_and(|c| c.learner_caught_up(&m.name));
        if !caught_up {
            self.then(Step::WaitCaughtUp {
                member: m.name.clone(),
            });
        }
        self.sim.set_healthy(&name, true);
        if let Err(why) = may_promote(&self.sim.voters(), &name) {
            self.notes
                .push(format!("{name} stays a learner for now: {why}"));
            planned.push(change);
            return;
        }
        self.then(Step::Promote {
            member: m.name.clone(),
        });
        if let Some(sm) = self.sim.members.iter_mut().find(|x| x.name == name) {
            sm.learner = false;
            if sm.id.is_none() {
                sm.id = c.id;
            }
        }
        self.then(Step::WaitHealthy {
            members: vec![m.name.clone()],
        });
        planned.push(change);
    }

    /// Compaction, then each member's defragmentation, followers first and
    /// the leader last after leadership moved to a member already done; a
    /// NOSPACE repair then disarms the alarm and writes a test key. All of it
    /// waits when the quorum could not lose one member now.
    fn maintenance(&mut self, defrags: Vec<Change>, planned: &mut Vec<Change>) {
        if defrags.is_empty() {
            return;
        }
        let voters = self.sim.voters();
        if let Some(why) = defrags
            .iter()
            .find_map(|c| may_disrupt(&voters, c.member.as_str()).err())
        {
            self.notes.push(format!(
                "defragmentation waits: {why}; a member being defragmented serves nothing"
            ));
            return;
        }
        let nospace = defrags.iter().any(|c| {
            matches!(
                c.kind,
                ChangeKind::Defragment {
                    cause: DefragCause::NoSpace,
                    ..
                }
            )
        });
        match &self.d.etcd.compaction.retention {
            // Auto-compaction off keeps every revision: only the NOSPACE
            // repair compacts then (the history is what fills the backend).
            Retention::Revisions(0) if !nospace => self.notes.push(
                "auto-compaction is off (auto_compaction_retention = \"0\"): etcdplan does not compact the history it keeps, so the defragmentation gives back only what deletes and earlier compactions freed".into(),
            ),
            Retention::Revisions(0) => {
                self.notes.push(
                    "auto-compaction is off: the NOSPACE repair compacts the history to the current revision, as etcd's maintenance guide does (the history is what fills the backend)".into(),
                );
                self.then(Step::Compact { keep: 0 });
            }
            Retention::Revisions(keep) => {
                self.then(Step::Compact { keep: *keep });
            }
            Retention::Period(p) => self.notes.push(format!(
                "auto-compaction is periodic ({p}): etcdplan does not compact past the history it keeps, so the defragmentation gives back what etcd's compactor has compacted"
            )),
        }
        // The leader when the defragmentations start: where the plan's
        // restarts handed leadership, else the one observed.
        let leader = self.led_by.clone().or_else(|| {
            self.live
                .cluster
                .as_ref()
                .and_then(LiveCluster::leader)
                .and_then(|id| self.sim.members.iter().find(|m| m.id == Some(id)))
                .and_then(|m| MemberName::parse(&m.name).ok())
        });
        let mut ordered: Vec<Change> = defrags
            .into_iter()
            .map(|mut c| {
                c.leader = leader.as_ref() == Some(&c.member);
                c
            })
            .collect();
        ordered.sort_by_key(|c| c.leader);
        let mut done: Option<(MemberName, MemberId)> = None;
        for c in ordered {
            let ChangeKind::Defragment { figures, .. } = &c.kind else {
                continue;
            };
            if c.leader {
                self.hand_over(&c.member, done.clone());
            }
            self.then(Step::Defragment {
                member: c.member.clone(),
                db_size: figures.db_size,
                timeout_secs: defrag_timeout(figures.db_size),
            });
            self.then(Step::WaitHealthy {
                members: vec![c.member.clone()],
            });
            if done.is_none() {
                done = self
                    .sim
                    .id_of(c.member.as_str())
                    .map(|id| (c.member.clone(), id));
            }
            planned.push(c);
        }
        if nospace {
            self.then(Step::DisarmNoSpace {
                quota: crate::diff::maintenance::planned_quota(self.d),
            });
            self.then(Step::TestWrite);
        }
    }

    fn restarts(
        &mut self,
        restarts: Vec<Change>,
        planned: &mut Vec<Change>,
        deferred: &mut Vec<Change>,
    ) {
        if restarts.is_empty() {
            return;
        }
        let voters = self.sim.voters();
        let blocked = restarts
            .iter()
            .find_map(|c| may_disrupt(&voters, c.member.as_str()).err());
        if let Some(why) = blocked {
            let n = voters.iter().filter(|v| !v.learner).count();
            let none_down = voters.iter().filter(|v| !v.learner).all(|v| v.healthy);
            self.notes.push(if none_down {
                format!(
                    "restarts are deferred: a cluster of {n} voter{} has no fault tolerance, so restarting any member stops writes until it is back; grow the cluster to 3 members to change settings without downtime",
                    if n == 1 { "" } else { "s" }
                )
            } else {
                format!("restarts are deferred: {why}; this plan only repairs")
            });
            deferred.extend(restarts);
            return;
        }
        let mut ordered = restarts;
        // Who leads when this pass starts: the member an earlier pass of
        // this plan expects leadership went to, else the one observed.
        // Restarted last, it is the pass's one leader change; a follower
        // restarted earlier in the pass would otherwise be the leader by
        // then, and its restart a second one.
        if let Some(led) = &self.led_by {
            for c in &mut ordered {
                c.leader = c.member == *led;
            }
        }
        ordered.sort_by_key(|c| c.leader);
        let mut restarted: Vec<(MemberName, MemberId)> = Vec::new();
        for c in ordered {
            // A takeover writes its files in its own job on the host, after
            // moving what was there aside.
            let adopt = match &c.kind {
                ChangeKind::Adopt { foreign } => Some(foreign.clone()),
                _ => None,
            };
            let write = if adopt.is_some() {
                let issued = c.certificates.then(|| {
                    self.then(Step::IssueCertificates {
                        member: c.member.clone(),
                    })
                });
                super::prepare::auth_step(self.d, &c)
                    .map(|step| self.then(step))
                    .or(issued)
            } else {
                write_step(self.b, self.d, &c)
            };
            if c.leader && adopt.is_some() {
                // A takeover stops an etcd etcdplan did not start, in a job
                // of its own: leadership moves first, to a member that
                // already runs the new settings if there is one.
                self.hand_over(&c.member, restarted.first().cloned());
            }
            if let ChangeKind::Restart {
                peer_update: Some(url),
                ..
            } = &c.kind
            {
                self.then(Step::UpdatePeerUrl {
                    member: c.member.clone(),
                    peer_url: url.clone(),
                });
            }
            let r = self.then(match adopt {
                Some(foreign) => Step::Adopt {
                    member: c.member.clone(),
                    foreign,
                    files: c.files.clone(),
                },
                None => Step::Restart {
                    member: c.member.clone(),
                    leads: c.leader,
                    files: Vec::new(),
                },
            });
            if c.leader && matches!(c.kind, ChangeKind::Restart { .. }) {
                self.led_by = self.successor(&c.member, &restarted);
            }
            self.b.edge_opt(write, r);
            self.then(Step::WaitHealthy {
                members: vec![c.member.clone()],
            });
            if let Some(mv) = c.binary() {
                self.then(Step::CheckVersion {
                    member: c.member.clone(),
                    version: mv.to,
                });
            }
            if let Some(id) = self.sim.id_of(c.member.as_str()) {
                restarted.push((c.member.clone(), id));
            }
            planned.push(c);
        }
    }
}

/// How long a member's defragmentation may take: a minute, and a second
/// more for every 16 MiB of backend (bbolt rewrites the whole file).
#[must_use]
pub fn defrag_timeout(db_size: u64) -> u64 {
    60 + db_size / (16 * 1024 * 1024)
}

/// How a deferred change is named in its note.
fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "the bootstrap",
        Action::Start => "the start",
        Action::Restart => "the restart",
        Action::Add => "the add",
        Action::Remove => "the removal",
        Action::Replace => "the replacement",
        Action::Update => "the update",
        Action::Adopt => "the takeover",
        Action::Restore => "the restore",
        Action::Defragment => "the defragmentation",
    }
}
