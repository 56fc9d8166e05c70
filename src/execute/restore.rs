//! The restore's steps on the hosts (`etcdplan restore SNAPSHOT`): find the
//! restore tool of each member's release, upload the snapshot, stop every
//! member, move its data aside and restore the snapshot in its place, and
//! verify the new cluster against what the snapshot is known to hold.
//!
//! Every host records the restore it is part of in a marker file in its
//! state dir ([`PENDING`]) from the moment its data is moved aside until the
//! restored cluster is verified: `plan` reads it and explains a restore that
//! stopped half way instead of planning around it.

use std::path::Path;
use std::time::Duration;

use super::{Context, StepError, StepOutcome, member, run_checked};
use crate::backup::content_digest;
use crate::config::DesiredMember;
use crate::io::{Script, shell_quote};
use crate::model::{EtcdVersion, MemberName};
use crate::plan::restore::{RestoreTool, aside_path, upload_dir};
use crate::service;

pub use etcdplan_core::live::RESTORE_PENDING as PENDING;

/// How long an upload of a snapshot (up to a few GB) may take.
const UPLOAD_DEADLINE: Duration = Duration::from_secs(1800);

/// How long one member's restore (a copy of its backend, and the hash
/// check) may take.
const RESTORE_DEADLINE: Duration = Duration::from_secs(1800);

/// How long the verification's read of every key may take.
const VERIFY_DEADLINE: Duration = Duration::from_secs(600);

fn q(p: &Path) -> String {
    shell_quote(&p.display().to_string())
}

/// Shell that sets `$t` to the member's tool `p` (etcdutl, etcdctl): the one
/// etcdplan installed with the release the member runs (`<p>-<version>`
/// beside `<binary>-<version>`), else the one next to the etcd binary it runs
/// (the link's target's folder first, then the link's), else the one on
/// PATH; it fails naming where it looked.
pub(super) fn find_tool(binary: &Path, p: &str) -> String {
    format!(
        "bin={b}\nr=$(readlink -f \"$bin\" 2>/dev/null || echo \"$bin\")\nt=\n\
for c in \"$(dirname \"$r\")/{p}-${{r##*/etcd-}}\" \"$(dirname \"$r\")/{p}\" \"$(dirname \"$bin\")/{p}\"; do if [ -x \"$c\" ]; then t=$c; break; fi; done\n\
if [ -z \"$t\" ]; then t=$(command -v {p} 2>/dev/null || true); fi\n\
if [ -z \"$t\" ]; then echo \"no {p} next to $bin ($(dirname \"$r\")) or on PATH: install the etcd client tools of the member's release there\" >&2; exit 3; fi\n",
        b = q(binary),
    )
}

/// Checks, before anything is stopped, that the host has the restore tool
/// of the member's minor version, taking `--bump-revision` when the plan bumps.
pub(super) async fn check_tool(
    ctx: &Context<'_>,
    name: &MemberName,
    tool: &RestoreTool,
    version: EtcdVersion,
) -> Result<StepOutcome, StepError> {
    let (_, host) = member(ctx, name)?;
    let p = tool.program();
    let minor = format!("{}.{}", version.major, version.minor);
    let mut s = format!(
        "set -e\n{}",
        find_tool(&ctx.desired.etcd.binary, tool.program())
    );
    s.push_str(&format!(
        "v=$(ETCDCTL_API=3 timeout 10 \"$t\" version 2>&1 | sed -n 's/^{p} version: //p' | head -n 1)\n\
case \"$v\" in {minor}.*) ;; *) echo \"$t is of etcd '$v', not {minor} as the member's etcd\" >&2; exit 4;; esac\n"
    ));
    if tool.bump().is_some() {
        s.push_str(
            "if ! timeout 10 \"$t\" snapshot restore --help 2>&1 | grep -q -- --bump-revision; then echo \"$t has no --bump-revision\" >&2; exit 5; fi\n",
        );
    }
    s.push_str("printf '%s (etcd %s)\\n' \"$t\" \"$v\"\n");
    let out = run_checked(
        host.as_ref(),
        &Script::new(format!("find {p} for {name}"), s).timeout(Duration::from_secs(30)),
    )
    .await?;
    Ok(StepOutcome::from(format!("{name}: {}", out.trim())))
}

/// Uploads the snapshot to `dest` on the member's host (0600, its folder
/// 0700), unless it is there with that sha256 already; checked there by
/// sha256 before it is renamed into place. The file on this machine must
/// still be the one the plan checked.
pub(super) async fn upload(
    ctx: &Context<'_>,
    transfers: &super::transfer::Transfers,
    name: &MemberName,
    source: &Path,
    dest: &Path,
    sha256: &str,
) -> Result<StepOutcome, StepError> {
    let (_, host) = member(ctx, name)?;
    let done = super::upload::upload(
        host.as_ref(),
        transfers,
        super::upload::Upload {
            what: "the snapshot".into(),
            source,
            sha256,
            dest,
            mode: 0o600,
            check: String::new(),
            deadline: UPLOAD_DEADLINE,
        },
    )
    .await?;
    Ok(StepOutcome::from(done))
}

/// Stops the member's etcd; no quorum check (every member stops). Under systemd
/// its unit is disabled until the restore starts it again.
pub(super) async fn stop(ctx: &Context<'_>, name: &MemberName) -> Result<StepOutcome, StepError> {
    let (m, host) = member(ctx, name)?;
    run_checked(
        host.as_ref(),
        &service::stop(ctx.desired, m, super::membership::stop_grace(ctx)),
    )
    .await?;
    // A reboot before the restore's start must not start it on a data dir
    // being replaced; the restore's start enables it again.
    let hold = service::hold_fragment(ctx.desired);
    if !hold.is_empty() {
        run_checked(
            host.as_ref(),
            &Script::new(format!("hold {name} stopped"), hold).timeout(Duration::from_secs(30)),
        )
        .await?;
    }
    Ok(StepOutcome::default())
}

/// What a member's restore needs besides the member.
pub(super) struct RestoreData<'a> {
    /// The uploaded snapshot on the host.
    pub snapshot: &'a Path,
    /// The tool and its flags.
    pub tool: &'a RestoreTool,
    /// `--initial-cluster`.
    pub initial_cluster: &'a str,
    /// The new token.
    pub token: &'a str,
    /// The time in the moved-aside names.
    pub stamp: &'a str,
}

/// The script that moves a member's data aside and restores the snapshot in
/// its place: into a fresh folder inside the data dir first, then renamed to
/// `member` (and the WAL folder to `wal_dir`), so a failed restore leaves no
/// half-written `member`; then the data aside is put back, and the host is
/// as it was before this step.
fn restore_script(ctx: &Context<'_>, m: &DesiredMember, r: &RestoreData<'_>) -> String {
    let d = &ctx.desired;
    let data = &m.data_dir;
    let member_dir = data.join("member");
    let tmp = data.join(format!("restoring-{}", r.stamp));
    let pending = m.state_dir.join(PENDING);
    let mut s = format!("set -e\n{}", find_tool(&d.etcd.binary, r.tool.program()));
    s.push_str(&format!(
        "snap={snap}\n[ -f \"$snap\" ] || {{ echo \"the uploaded snapshot $snap is not there\" >&2; exit 3; }}\n\
mkdir -p {data} {state}\nprintf '%s\\t%s\\n' {stamp} {token} > {pending}.tmp && mv -f {pending}.tmp {pending}\n\
tmp={tmp}\nif [ -e \"$tmp\" ]; then mv \"$tmp\" \"$tmp.failed-$$\"; fi\n",
        snap = q(r.snapshot),
        data = q(data),
        state = q(&m.state_dir),
        stamp = shell_quote(r.stamp),
        token = shell_quote(r.token),
        pending = q(&pending),
        tmp = q(&tmp),
    ));
    // Moved aside, never deleted; an earlier restore's aside folder of the
    // same name (a rerun) is never overwritten.
    let mut moves = vec![(member_dir.clone(), aside_path(&member_dir, r.stamp))];
    if let Some(w) = &m.wal_dir {
        moves.push((w.clone(), aside_path(w, r.stamp)));
    }
    let mut undo = String::new();
    for (from, to) in &moves {
        s.push_str(&format!(
            "if [ -e {f} ]; then if [ -e {t} ]; then echo \"{t} exists already\" >&2; exit 4; fi; mv {f} {t}; echo \"moved {} to {}\"; fi\n",
            from.display(),
            to.display(),
            f = q(from),
            t = q(to),
        ));
        undo.push_str(&format!(
            "if [ -e {t} ] && [ ! -e {f} ]; then mv {t} {f}; fi; ",
            f = q(from),
            t = q(to),
        ));
    }
    let mut args = format!(
        "snapshot restore \"$snap\" --name {name} --initial-cluster {ic} --initial-cluster-token {token} --initial-advertise-peer-urls {peer} --data-dir \"$tmp\"",
        name = shell_quote(m.name.as_str()),
        ic = shell_quote(r.initial_cluster),
        token = shell_quote(r.token),
        peer = shell_quote(&m.peer_url(&d.tls).to_string()),
    );
    if m.wal_dir.is_some() {
        args.push_str(" --wal-dir \"$tmp/wal\"");
    }
    if let Some(n) = r.tool.bump() {
        args.push_str(&format!(" --bump-revision {n} --mark-compacted"));
    }
    s.push_str(&format!(
        "if ! ETCDCTL_API=3 \"$t\" {args} > \"$tmp.log\" 2>&1; then tail -n 20 \"$tmp.log\" >&2; {undo}echo \"the restore failed; the data aside was put back\" >&2; exit 6; fi\n\
mv \"$tmp/member\" {md}\nchmod 0700 {md}\n",
        md = q(&member_dir),
    ));
    if let Some(w) = &m.wal_dir {
        s.push_str(&format!("mv \"$tmp/wal\" {w}\n", w = q(w)));
    }
    // The restore's own log stays beside its (now empty) folder.
    s.push_str(&format!(
        "rmdir \"$tmp\" 2>/dev/null || true\nrm -f {hash}\n",
        hash = q(&service::started_config_file(m)),
    ));
    let run_as = &d.hosts.run_as;
    if !run_as.is_root() {
        // Owned like a normal member's data (the start checks it again).
        s.push_str(&format!(
            "u={u}\nchown -R \"$u:$(id -gn \"$u\")\" {md}\n",
            u = shell_quote(run_as.as_str()),
            md = q(&member_dir),
        ));
        if let Some(w) = &m.wal_dir {
            s.push_str(&format!("chown -R \"$u:$(id -gn \"$u\")\" {w}\n", w = q(w)));
        }
    }
    s.push_str("echo \"restored with $t\"\n");
    s
}

/// Moves the member's data aside and restores the snapshot in its place.
pub(super) async fn restore_data(
    ctx: &Context<'_>,
    name: &MemberName,
    r: &RestoreData<'_>,
) -> Result<StepOutcome, StepError> {
    let (m, host) = member(ctx, name)?;
    let out = run_checked(
        host.as_ref(),
        &Script::new(format!("restore {name}"), restore_script(ctx, m, r))
            .timeout(RESTORE_DEADLINE),
    )
    .await?;
    Ok(StepOutcome::from(out.trim().replace('\n', "; ")))
}

/// Checks the restored cluster: its revision has reached the snapshot's
/// plus the bump, and every key and value read at that revision gives the
/// manifest's digest; then the hosts' restore markers and the uploaded
/// copies of the snapshot (every secret the cluster stores; the original
/// stays on this machine) are removed. A failure before this keeps both, so
/// a rerun finds the upload there and `plan` explains the unfinished restore.
pub(super) async fn verify(
    ctx: &Context<'_>,
    revision: Option<i64>,
    content: Option<&etcdplan_core::backup::ContentDigest>,
) -> Result<StepOutcome, StepError> {
    let refused = |why: String| StepError::Refused {
        what: "verify the restored cluster".into(),
        why,
    };
    let mut last = None;
    let mut answered = None;
    for ep in ctx.endpoints() {
        match ctx.etcd.range_page(&ep, b"", 0, 1).await {
            Ok(page) => {
                answered = Some((ep, page.header_revision));
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some((ep, now)) = answered else {
        return Err(last.map_or_else(|| refused("no member answers".into()), StepError::Etcd));
    };
    let mut said = Vec::new();
    // Clients may write as soon as it is up: the revision may have moved on,
    // never stayed behind; the content is read at the restored revision.
    let at = match revision {
        Some(want) if now < want => {
            return Err(refused(format!(
                "its revision is {now}, not the snapshot's plus the bump ({want})"
            )));
        }
        Some(want) => {
            said.push(format!("revision {now} (restored at {want})"));
            want
        }
        None => {
            said.push(format!("revision {now}"));
            now
        }
    };
    if let Some(want) = content {
        let (got, _) = content_digest(ctx.etcd, &ep, at, VERIFY_DEADLINE)
            .await
            .map_err(|e| refused(e.to_string()))?;
        if got != *want {
            return Err(refused(format!(
                "its content at revision {at} ({} keys, sha256 {}…) is not the manifest's ({} keys, sha256 {}…)",
                got.keys,
                &got.sha256[..16.min(got.sha256.len())],
                want.keys,
                &want.sha256[..16.min(want.sha256.len())]
            )));
        }
        said.push(format!("{} keys match the manifest's digest", got.keys));
    }
    let mut warnings = Vec::new();
    for m in &ctx.desired.members {
        let Some(host) = ctx.hosts.get(&m.address) else {
            continue;
        };
        let script = Script::new(
            format!("clear {}'s restore marker", m.name),
            format!(
                "rm -f {} {}/snapshot-*.db\n",
                q(&m.state_dir.join(PENDING)),
                q(&upload_dir(m))
            ),
        );
        if let Err(e) = run_checked(host.as_ref(), &script).await {
            warnings.push(format!(
                "could not remove {} on {}: {e}; remove it by hand",
                m.state_dir.join(PENDING).display(),
                m.address
            ));
        }
    }
    Ok(StepOutcome {
        detail: Some(said.join(", ")),
        snapshot: None,
        warnings,
    })
}
