//! The steps a plan is made of: what each does, its one line for people, and
//! whether it disturbs a member (runs alone, then a gate).

use std::path::PathBuf;

use crate::config::DesiredMember;
use crate::diff::{Departing, FileChange};
use crate::model::{Endpoint, EtcdVersion, MemberId, MemberName, MinorVersion};

/// What the text of a leader's restart says happens to leadership: etcd's
/// graceful stop (`EtcdServer.Stop` → `TransferLeadership`, in 3.4 to 3.7)
/// moves it to the longest-connected voter, after the executor waited for
/// every voter to catch up. Counted as a leader change by the test harness.
pub const LEADER_RESTART: &str = "etcd hands leadership over as it stops";

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Step {
    /// Stop the member, run `etcdutl check v2store` on its data dir (the
    /// tool of the release it runs, 3.5.32 or later; etcd wants the data
    /// dir not in use), and start it again on the same binary: before the
    /// first member runs 3.6, every member's v2 store must hold nothing but
    /// membership (3.6 panics on custom v2 content, etcd #20809).
    CheckV2Store {
        /// The member.
        member: MemberName,
    },
    /// Take a snapshot through the Maintenance API and check it.
    Snapshot {
        /// Local folder it is written to.
        dir: PathBuf,
    },
    /// Write the member's changed files (disturbs nothing: etcd reads them at start).
    WriteFiles {
        /// The member.
        member: MemberName,
        /// The files.
        files: Vec<FileChange>,
    },
    /// Issue the member's server and peer certificates from the local CA
    /// and write them, with the CA certificate, to its host (keys 0600).
    IssueCertificates {
        /// The member.
        member: MemberName,
    },
    /// Place this machine's JWT key pair (`[auth] key_dir`; the private key
    /// 0600 in a 0700 folder) and client CRL (`[tls] crl_file`) on the
    /// member's host. The plan names the member only: the executor reads the
    /// files when it runs, so no key material is in a plan or its JSON.
    PlaceAuthFiles {
        /// The member.
        member: MemberName,
        /// The JWT key pair is placed.
        jwt: bool,
        /// The CRL is placed.
        crl: bool,
    },
    /// Upload an etcd release from this machine to `<binary>-<version>` on the
    /// member's host: to a temporary file, checked by sha256 and `--version`,
    /// made executable, then renamed. Disturbs nothing.
    InstallBinary {
        /// The member whose host gets it.
        member: MemberName,
        /// The release.
        version: EtcdVersion,
        /// The local file.
        source: PathBuf,
        /// Its sha256, as the plan saw it.
        sha256: String,
        /// The release's `etcdutl`, uploaded beside it as
        /// `etcdutl-<version>` when the release has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etcdutl: Option<crate::config::ReleaseTool>,
    },
    /// Point `binary` on the member's host at `<binary>-<version>` (a symlink
    /// swapped atomically; a plain file there is kept as `<binary>-<its
    /// version>`). A running etcd is not disturbed: its next start runs it.
    UseBinary {
        /// The member.
        member: MemberName,
        /// The release.
        version: EtcdVersion,
    },
    /// Check that the member's etcd reports this version (Status).
    CheckVersion {
        /// The member.
        member: MemberName,
        /// The version it must run.
        version: EtcdVersion,
    },
    /// Wait until the cluster version (the leader raises it once every member
    /// runs the new minor version) reaches this one.
    ClusterVersion {
        /// The minor version.
        version: MinorVersion,
    },
    /// Ask the cluster whether it can downgrade to `target` (etcd's
    /// `downgrade validate`: one minor below the cluster version, no other
    /// downgrade in progress). Changes nothing.
    DowngradeValidate {
        /// The minor version the cluster goes to.
        target: MinorVersion,
    },
    /// Enable the downgrade (`downgrade enable`): the cluster version drops
    /// to `target` at once and every member migrates its data to it. From
    /// here until every member runs `target`, a stop is undone with
    /// `downgrade cancel` (the executor sends it when a later step fails).
    DowngradeEnable {
        /// The minor version the cluster goes to.
        target: MinorVersion,
    },
    /// Wait until every member reports `target` as its storage version: only
    /// then may an older binary open the data.
    WaitStorageVersion {
        /// The storage version every member must report.
        target: MinorVersion,
    },
    /// Cancel a downgrade found in progress (`downgrade cancel`), before the
    /// members roll back onto the newer release the etcdfile asks for again.
    DowngradeCancel {
        /// The target of the downgrade that is cancelled.
        target: MinorVersion,
    },
    /// Check that the downgrade has completed: no member reports it enabled
    /// any more (etcd resets it once every member runs the target).
    DowngradeFinished {
        /// The minor version the cluster went to.
        target: MinorVersion,
    },
    /// Start the member's etcd.
    Start {
        /// The member.
        member: MemberName,
    },
    /// Stop and start the member's etcd so it reads new settings.
    Restart {
        /// The member.
        member: MemberName,
        /// It leads when the plan expects to reach this step. No MoveLeader
        /// goes before it: etcd's graceful stop drains its client RPCs and
        /// then hands leadership to a voter itself, which fails fewer
        /// client writes than a transfer under load (issue 21).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        leads: bool,
        /// The member's files, written (each checked and renamed into place)
        /// in the same host command as the stop and start, after the quorum
        /// check: a write step right before a restart of the same member is
        /// folded in, which saves a round trip per member (issue 21).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<FileChange>,
    },
    /// Take a running member over from the unit or process that runs it now:
    /// one job on the host puts etcdplan's files in place (what was there
    /// moved aside), stops the old etcd, moves its unit, drop-ins and
    /// environment files aside, and starts etcdplan's service; it puts the
    /// old one back if that start fails. It runs on even if etcdplan or its
    /// connection dies, so the member is never left stopped.
    Adopt {
        /// The member.
        member: MemberName,
        /// The etcd that runs it now, as the plan saw it.
        foreign: crate::live::Listener,
        /// etcdplan's files for it.
        files: Vec<FileChange>,
    },
    /// Hand leadership to another voter before the leader leaves or is
    /// defragmented (a restart leaves it to etcd's graceful stop).
    MoveLeader {
        /// The current leader.
        from: MemberName,
        /// The new leader.
        to: MemberName,
        /// Its id.
        to_id: MemberId,
    },
    /// Wait until these members are healthy, follow one leader and have caught up.
    WaitHealthy {
        /// The members.
        members: Vec<MemberName>,
    },
    /// MemberAdd as a learner.
    AddLearner {
        /// The member.
        member: MemberName,
        /// Its peer URL.
        peer_url: Endpoint,
    },
    /// Write a joining member's files; the initial-cluster is taken from
    /// MemberList when the step runs (`files` is what the plan predicts).
    WriteJoinFiles {
        /// The member.
        member: MemberName,
        /// The predicted files.
        files: Vec<FileChange>,
        /// The release the joiner starts, which its config is rendered for
        /// (`diff::start_release` on its host); absent in plans saved before
        /// it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release: Option<crate::model::MinorVersion>,
    },
    /// Wait until a learner has applied what the leader committed.
    WaitCaughtUp {
        /// The learner.
        member: MemberName,
    },
    /// MemberPromote, retried while etcd says the learner is not in sync.
    Promote {
        /// The learner.
        member: MemberName,
    },
    /// MemberUpdate of a member's advertised peer URL, through the leader.
    UpdatePeerUrl {
        /// The member.
        member: MemberName,
        /// Its new peer URL.
        peer_url: Endpoint,
    },
    /// MemberRemove, through the leader.
    RemoveMember {
        /// The member that leaves.
        departing: Departing,
    },
    /// Stop etcd where a removed member ran (it also exits by itself).
    StopDeparted {
        /// The member that left.
        departing: Departing,
    },
    /// Move a data dir and config aside (never deleted), so the member cannot
    /// come back under its old identity.
    RetireData {
        /// The member whose files move.
        member: DesiredMember,
        /// A member that left (a failure is reported, not fatal: its host may be gone).
        departed: bool,
    },
    /// Restore: check, before anything is stopped, that the member's host has
    /// the restore tool of the member's release (next to its etcd binary) and
    /// that it takes `--bump-revision` when the plan bumps.
    CheckRestoreTool {
        /// The member.
        member: MemberName,
        /// The tool and its flags.
        tool: RestoreTool,
        /// The release the member runs (the tool must be of its minor version).
        version: EtcdVersion,
    },
    /// Restore: upload the snapshot to the member's host (0600 in a 0700
    /// folder of its state dir), checked there by sha256. Disturbs nothing.
    UploadSnapshot {
        /// The member whose host gets it.
        member: MemberName,
        /// The snapshot on this machine.
        source: PathBuf,
        /// Where it goes on the host.
        dest: PathBuf,
        /// Its sha256, as the plan saw it.
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
    /// Restore: stop the member's etcd, whatever the quorum (the operator
    /// named the restore; every member stops).
    StopForRestore {
        /// The member.
        member: MemberName,
    },
    /// Restore: move the member's data (and WAL) aside (never deleted) and
    /// restore the uploaded snapshot in its place as a member of the new
    /// cluster, owned like a normal member's data.
    RestoreData {
        /// The member.
        member: MemberName,
        /// The uploaded snapshot on the host.
        snapshot: PathBuf,
        /// The tool and its flags.
        tool: RestoreTool,
        /// The full `--initial-cluster`.
        initial_cluster: String,
        /// The new cluster's token.
        token: String,
        /// The time in the names of what is moved aside.
        stamp: String,
    },
    /// Restore: check the restored cluster: its revision is the snapshot's
    /// plus the bump, and its keys and values are the manifest's.
    VerifyRestore {
        /// The revision it must have reached (snapshot's + bump), when known.
        revision: Option<i64>,
        /// The manifest's content digest, when there is a manifest.
        content: Option<crate::backup::ContentDigest>,
    },
    /// Compact the key-value history to the current revision less `keep`
    /// (what revision-mode auto-compaction keeps), physically, so that the
    /// defragmentations after it give the space back. Compaction is
    /// replicated; a history already compacted that far is left as it is.
    Compact {
        /// Revisions kept below the current one.
        keep: u64,
    },
    /// Defragment one member's backend: it serves nothing meanwhile, so the
    /// quorum is checked first and a gate follows. The step fails when etcd
    /// does not answer within `timeout_secs` (scaled to the file's size) or
    /// the file did not shrink.
    Defragment {
        /// The member.
        member: MemberName,
        /// Its backend's size when the plan was made.
        db_size: u64,
        /// How long the defragmentation may take.
        timeout_secs: u64,
    },
    /// Disarm every raised NOSPACE alarm, once no member's backend takes more
    /// than 90% of its quota: disarming while the condition holds only
    /// raises it again at the next write.
    DisarmNoSpace {
        /// The quota the members enforce by then (the etcdfile's; Status's
        /// own where a member reports one).
        quota: u64,
    },
    /// Write and delete a key of etcdplan's own, to show the cluster takes
    /// writes again.
    TestWrite,
    /// Quorum-loss recovery: stop the survivor's etcd and copy its data dir's
    /// `member` (and a separate WAL folder) to `member.recovery-copy-<time>`
    /// next to it, kept, before anything rewrites its membership.
    CopyData {
        /// The survivor.
        member: MemberName,
    },
    /// Quorum-loss recovery: fence a member lost with the quorum, where its
    /// host answers: etcd stopped, its unit disabled and moved aside (a
    /// killed etcd under `Restart=on-failure` would come back), its data dir
    /// and config moved aside (never deleted). A host that does not answer is
    /// reported, not fatal.
    Fence {
        /// The lost member, where it lived.
        member: DesiredMember,
    },
    /// Quorum-loss recovery: start the survivor once with
    /// `--force-new-cluster` on that start's command line only (a transient
    /// systemd unit, or the process started with the extra flag), after
    /// checking that no other member answers; wait until it is a healthy
    /// one-member cluster.
    ForceNewCluster {
        /// The survivor.
        member: MemberName,
        /// Its member id (kept by `--force-new-cluster`).
        id: MemberId,
    },
    /// Quorum-loss recovery: stop the forced start and start the survivor
    /// normally (no flag), then wait until it is a healthy one-member cluster.
    EndForcedStart {
        /// The survivor.
        member: MemberName,
        /// Its member id.
        id: MemberId,
    },
    /// Quorum-loss recovery: check the survivor is a healthy one-member
    /// cluster of itself whose revision is not lower than before.
    VerifyRecovered {
        /// The survivor.
        member: MemberName,
        /// Its member id.
        id: MemberId,
        /// Its revision when the plan was made.
        revision: i64,
    },
    /// One change of etcd's authentication (`[auth]`) through one voter,
    /// read back after. Disturbs nothing; carries no password (only where
    /// it is read from, on this machine, when the step runs).
    Auth {
        /// The change.
        change: crate::diff::AuthOp,
    },
}

pub use super::restore::RestoreTool;

/// The one line of an auth step: etcdctl's words for it, never a password.
fn auth_line(op: &crate::diff::AuthOp) -> String {
    use crate::diff::AuthOp;
    match op {
        AuthOp::Enable => "auth enable (etcdplan logs in as root from here on)".into(),
        AuthOp::Disable => "auth disable".into(),
        AuthOp::AddRole { role } => format!("role add {role}"),
        AuthOp::DeleteRole { role } => format!("role delete {role}"),
        AuthOp::Grant { role, permission } => format!(
            "role grant-permission {role} {}",
            crate::diff::auth::shown(&crate::live::LivePermission::of(permission))
        ),
        AuthOp::Revoke { role, permission } => format!(
            "role revoke-permission {role} {}",
            crate::diff::auth::shown(permission)
        ),
        AuthOp::AddUser { user, password } => match password {
            Some(src) => format!("user add {user} (password from {src})"),
            None => format!("user add {user} (no password: certificate login)"),
        },
        AuthOp::DeleteUser { user } => format!("user delete {user}"),
        AuthOp::GrantRole { user, role } => format!("user grant-role {user} {role}"),
        AuthOp::RevokeRole { user, role } => format!("user revoke-role {user} {role}"),
        AuthOp::SetPassword { user, source } => {
            format!("user passwd {user} (password from {source})")
        }
    }
}

impl Step {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Self::Snapshot { dir } => {
                format!("take a snapshot into {} and check it", dir.display())
            }
            Self::CheckV2Store { member } => {
                format!(
                    "stop {member}, check its v2 store with `etcdutl check v2store`, start it again"
                )
            }
            Self::WriteFiles { member, files } => {
                format!(
                    "write {} file{} for {member}",
                    files.len(),
                    if files.len() == 1 { "" } else { "s" }
                )
            }
            Self::IssueCertificates { member } => {
                format!("issue {member}'s server and peer certificates from the CA")
            }
            Self::PlaceAuthFiles { member, jwt, crl } => {
                let what = match (jwt, crl) {
                    (true, true) => "the JWT signing key pair and the CRL",
                    (true, false) => "the JWT signing key pair",
                    (false, _) => "the CRL",
                };
                format!("place {what} on {member}'s host")
            }
            Self::InstallBinary {
                member,
                version,
                sha256,
                ..
            } => format!(
                "upload etcd {version} to {member}'s host (sha256 {})",
                &sha256[..12.min(sha256.len())]
            ),
            Self::UseBinary { member, version } => {
                format!("point {member}'s binary at etcd {version}")
            }
            Self::CheckVersion { member, version } => {
                format!("check {member} runs etcd {version}")
            }
            Self::ClusterVersion { version } => {
                format!("wait until the cluster version is {version}")
            }
            Self::DowngradeValidate { target } => {
                format!(
                    "ask etcd whether the cluster can downgrade to {target} (downgrade validate)"
                )
            }
            Self::DowngradeEnable { target } => format!(
                "enable the downgrade to {target} (downgrade enable): the cluster version drops to {target}"
            ),
            Self::WaitStorageVersion { target } => {
                format!("wait until every member's storage version is {target}")
            }
            Self::DowngradeCancel { target } => {
                format!("cancel the downgrade to {target} (downgrade cancel)")
            }
            Self::DowngradeFinished { target } => {
                format!("check the downgrade to {target} has completed (no longer enabled)")
            }
            Self::Start { member } => format!("start {member}"),
            Self::Restart {
                member,
                leads,
                files,
            } => {
                let write = match files.len() {
                    0 => String::new(),
                    1 => "write 1 file and ".to_owned(),
                    n => format!("write {n} files and "),
                };
                let leader = if *leads {
                    format!(" (leader: {LEADER_RESTART})")
                } else {
                    String::new()
                };
                format!("{write}restart {member}{leader}")
            }
            Self::Adopt {
                member,
                foreign,
                files,
            } => format!(
                "take {member} over from {} ({} file{}, one job on its host)",
                foreign.describe(),
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            ),
            Self::MoveLeader { from, to, .. } => format!("move leader {from} → {to}"),
            Self::WaitHealthy { members } => {
                let names: Vec<&str> = members.iter().map(MemberName::as_str).collect();
                format!("wait until {} healthy", names.join(", "))
            }
            Self::AddLearner { member, peer_url } => {
                format!("add {member} as a learner ({peer_url})")
            }
            Self::WriteJoinFiles { member, .. } => {
                format!("write {member}'s config (initial-cluster from the member list)")
            }
            Self::WaitCaughtUp { member } => format!("wait until learner {member} has caught up"),
            Self::Promote { member } => format!("promote {member} to voter"),
            Self::UpdatePeerUrl { member, peer_url } => {
                format!("advertise {member}'s peer URL as {peer_url} (MemberUpdate)")
            }
            Self::RemoveMember { departing } => format!(
                "remove {} ({}) from the cluster",
                departing.name, departing.id
            ),
            Self::StopDeparted { departing } => {
                format!(
                    "stop etcd of {} on {}",
                    departing.name, departing.host.address
                )
            }
            Self::RetireData { member, .. } => format!(
                "move {}'s data ({}/member{}) and config aside on {}",
                member.name,
                member.data_dir.display(),
                member
                    .wal_dir
                    .as_ref()
                    .map_or_else(String::new, |w| format!(", WAL {}", w.display())),
                member.address
            ),
            Self::CheckRestoreTool {
                member,
                tool,
                version,
            } => format!(
                "check {member}'s host has {} of etcd {}.{}{}",
                tool.program(),
                version.major,
                version.minor,
                if tool.bump().is_some() {
                    " with --bump-revision"
                } else {
                    ""
                }
            ),
            Self::UploadSnapshot {
                member,
                dest,
                sha256,
                ..
            } => format!(
                "upload the snapshot to {member}'s host as {} (sha256 {})",
                dest.display(),
                &sha256[..12.min(sha256.len())]
            ),
            Self::StopForRestore { member } => {
                format!("stop {member} (no quorum check: every member stops for the restore)")
            }
            Self::RestoreData {
                member,
                tool,
                stamp,
                ..
            } => format!(
                "move {member}'s data aside (member.restored-aside-{stamp}) and restore the snapshot with {}",
                tool.describe()
            ),
            Self::VerifyRestore { revision, content } => {
                let mut s = String::from("verify the restored cluster");
                if let Some(r) = revision {
                    s.push_str(&format!(": revision {r}"));
                }
                if let Some(c) = content {
                    s.push_str(&format!(
                        "{} {} keys with the manifest's content digest",
                        if revision.is_some() { "," } else { ":" },
                        c.keys
                    ));
                }
                s
            }
            Self::Compact { keep } => {
                if *keep == 0 {
                    "compact the history to the current revision".to_owned()
                } else {
                    format!("compact the history to the current revision less {keep}")
                }
            }
            Self::Defragment {
                member, db_size, ..
            } => format!(
                "defragment {member} (backend {})",
                crate::model::ByteSize(*db_size).human()
            ),
            Self::DisarmNoSpace { quota } => format!(
                "disarm the NOSPACE alarm once every member's backend is below 90% of its {} quota",
                crate::model::ByteSize(*quota).human()
            ),
            Self::TestWrite => "write and delete a test key".to_owned(),
            Self::CopyData { member } => format!(
                "stop {member} and copy its data to member.recovery-copy-<time> beside it (kept)"
            ),
            Self::Fence { member } => format!(
                "fence {} on {}: stop etcd, disable its unit, move its data ({}/member) and config aside",
                member.name,
                member.address,
                member.data_dir.display()
            ),
            Self::ForceNewCluster { member, .. } => format!(
                "start {member} once with --force-new-cluster (this start only) and wait until it is a healthy one-member cluster"
            ),
            Self::EndForcedStart { member, .. } => {
                format!("stop the forced start of {member} and start it normally, without the flag")
            }
            Self::VerifyRecovered {
                member, revision, ..
            } => format!(
                "check {member} is a healthy one-member cluster with revision {revision} or later"
            ),
            Self::Auth { change } => auth_line(change),
        }
    }

    /// Whether the step disturbs a member or changes membership (it runs alone,
    /// then a gate).
    pub fn disruptive(&self) -> bool {
        matches!(
            self,
            Self::Restart { .. }
                | Self::CheckV2Store { .. }
                | Self::Adopt { .. }
                | Self::MoveLeader { .. }
                | Self::AddLearner { .. }
                | Self::Promote { .. }
                | Self::UpdatePeerUrl { .. }
                | Self::RemoveMember { .. }
                | Self::Defragment { .. }
                | Self::StopForRestore { .. }
                | Self::RestoreData { .. }
                | Self::CopyData { .. }
                | Self::Fence { .. }
                | Self::ForceNewCluster { .. }
                | Self::EndForcedStart { .. }
        )
    }
}
