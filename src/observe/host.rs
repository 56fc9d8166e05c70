//! One probe script per member host: owned files, data dir, service, binary, ports.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Desired, DesiredMember};
use crate::io::{Host, Script, shell_quote};
use crate::model::EtcdVersion;
use crate::service;

use super::{
    ActiveState, Binary, DataDir, HostAuthFiles, HostCerts, HostFacts, HostState, ListenAddr,
    Listener, ListenerUnit, ProbeProblem, ServiceState, UnitFileState, UnitState,
};

/// The probe script for one member: one ssh round trip whose output is read
/// by [`parse_probe`] (see there for the line protocol).
///
/// Every test-bed host is a namespace on one machine, and a real host may be
/// busy: the script starts as few processes as it can (shell builtins where
/// they read the same thing, one `ss` for every socket fact), about ten on a
/// running member.
pub fn probe_script(d: &Desired, m: &DesiredMember) -> Script {
    // `$nl` is a newline, for cutting a first line without `head`.
    let mut s = String::from("nl='\n'\n");
    for (i, p) in super::owned_paths(d, m).iter().enumerate() {
        let p = shell_quote(&p.display().to_string());
        s.push_str(&format!(
            "if [ -f {p} ]; then printf 'file\\t{i}\\t'; base64 -w0 < {p}; echo; else printf 'file\\t{i}\\t-\\n'; fi\n"
        ));
    }
    let data = shell_quote(&m.data_dir.display().to_string());
    s.push_str(&format!(
        "d={data}\nif [ -d \"$d/member/wal\" ] || [ -d \"$d/member/snap\" ]; then k=member; \
elif [ ! -e \"$d\" ]; then k=absent; elif [ -z \"$(ls -A \"$d\" 2>/dev/null | grep -v -e '^member\\.removed-' -e '^member\\.restored-aside-' -e '^restoring-' -e '^member\\.recovery-copy-')\" ]; then k=empty; \
else k=other; fi\nprintf 'data\\t%s\\n' \"$k\"\n\
if [ -e \"$d\" ]; then printf 'data-owner\\t%s\\n' \"$(stat -c %U \"$d\")\"; fi\n"
    ));
    let pending = shell_quote(
        &m.state_dir
            .join(crate::live::RESTORE_PENDING)
            .display()
            .to_string(),
    );
    s.push_str(&format!(
        "if [ -f {pending} ]; then printf 'restore-pending\\t'; base64 -w0 < {pending}; echo; fi\n"
    ));
    // The first bytes of the first WAL file say whose data it is (live::wal_owner).
    let wal = m
        .wal_dir
        .clone()
        .unwrap_or_else(|| m.data_dir.join("member/wal"));
    s.push_str(&format!(
        "f=; for g in {w}/*.wal; do if [ -e \"$g\" ]; then f=$g; break; fi; done\n\
if [ -n \"$f\" ]; then printf 'wal-head\\t'; head -c 1024 \"$f\" | base64 -w0; echo; fi\n",
        w = shell_quote(&wal.display().to_string())
    ));
    if let Some(wal) = &m.wal_dir {
        s.push_str(&wal_check(m, wal));
    }
    s.push_str(&service::probe_fragment(d, m));
    s.push_str(&service::print_run_as_problem(d));
    // A quorum-loss recovery from this member that has not finished.
    s.push_str(&format!(
        "if [ -f {mark} ]; then {}; fi\n",
        service::print_problem(
            &format!("a quorum-loss recovery from {} started here and has not finished", m.name),
            &format!(
                "finish it with `etcdplan apply --recover-from {}`; until then no plain plan starts this member",
                m.name
            ),
        ),
        mark = shell_quote(
            &etcdplan_core::diff::quorum_loss::recovery_mark(m)
                .display()
                .to_string()
        ),
    ));
    let bin = shell_quote(&d.etcd.binary.display().to_string());
    s.push_str(&format!(
        "if [ -x {bin} ]; then v=$({bin} --version 2>&1); printf 'binary\\tok\\t%s\\n' \"${{v%%\"$nl\"*}}\"; else printf 'binary\\tmissing\\n'; fi\n"
    ));
    if d.etcd.binary_source.is_some() {
        // Releases etcdplan installed next to the binary, by version and hash.
        s.push_str(&format!(
            "for f in {bin}-[0-9]*; do case \"$f\" in *.etcdplan*) continue;; esac; [ -f \"$f\" ] || continue; \
printf 'release\\t%s\\t%s\\n' \"${{f##*-}}\" \"$(sha256sum < \"$f\" | cut -d' ' -f1)\"; done\n"
        ));
    }
    if d.tls.any() {
        let t = m.tls_paths(&d.tls);
        // The operator's files are read where the enabled TLS uses them;
        // etcdplan's own are always all there.
        let ext = d.tls.external().is_some();
        let (server, peer) = (!ext || d.tls.client, !ext || d.tls.peer);
        let trust = !ext || d.tls.peer || d.tls.client_cert_auth;
        for (i, p) in [
            (trust, &t.ca),
            (server, &t.server_cert),
            (peer, &t.peer_cert),
        ]
        .into_iter()
        .enumerate()
        .filter_map(|(i, (on, p))| on.then_some((i, p)))
        {
            let p = shell_quote(&p.display().to_string());
            s.push_str(&format!(
                "if [ -f {p} ]; then printf 'cert\\t{i}\\t'; base64 -w0 < {p}; echo; fi\n"
            ));
        }
        for (i, p) in [(server, &t.server_key), (peer, &t.peer_key)]
            .into_iter()
            .enumerate()
            .filter_map(|(i, (on, p))| on.then_some((i, p)))
        {
            let p = shell_quote(&p.display().to_string());
            s.push_str(&format!(
                "if [ -f {p} ]; then printf 'key\\t{i}\\t%s\\n' \"$(stat -c %a {p})\"; fi\n"
            ));
        }
    }
    s.push_str(&auth_files_fragment(d, m));
    s.push_str(&listener_fragment(m));
    Script::new(format!("probe {}", m.name), s).timeout(Duration::from_secs(15))
}

/// Shell that prints the digests of the member's JWT key pair and CRL
/// (`auth-file <index> <sha256>`: 0 public key, 1 private key, 2 CRL) and
/// the private key's mode (`auth-key-mode`), where the etcdfile asks for
/// them: only digests leave the host, never the key.
fn auth_files_fragment(d: &Desired, m: &DesiredMember) -> String {
    let paths = crate::hostfiles::auth_paths(m);
    let jwt = crate::pki::jwt_key_dir(d).is_some();
    let crl = crate::pki::crl_file(d).is_some();
    let mut s = String::new();
    for (i, on, p) in [
        (0, jwt, &paths.jwt_pub),
        (1, jwt, &paths.jwt_key),
        (2, crl, &paths.crl),
    ] {
        if !on {
            continue;
        }
        let p = shell_quote(&p.display().to_string());
        s.push_str(&format!(
            "if [ -f {p} ]; then printf 'auth-file\\t{i}\\t%s\\n' \"$(sha256sum < {p} | cut -d' ' -f1)\"; fi\n"
        ));
    }
    if jwt {
        let p = shell_quote(&paths.jwt_key.display().to_string());
        s.push_str(&format!(
            "if [ -f {p} ]; then printf 'auth-key-mode\\t%s\\n' \"$(stat -c %a {p})\"; fi\n"
        ));
    }
    s
}

/// Shell that sets `lu` to the systemd unit whose main process is `$lp`
/// (from its cgroup, checked against the unit's MainPID), empty when none is:
/// a process in a unit's cgroup that is not its main process (a shell an ssh
/// session started, say) is no unit's etcd. The cgroup file is read by the
/// shell (the first line ending in a `.service` folder); only a unit found
/// costs a `systemctl`.
pub(crate) const UNIT_OF_LP: &str = "lu=; while IFS= read -r lg; do case \"$lg\" in *.service) lu=${lg##*/}; break;; esac; done 2>/dev/null < /proc/$lp/cgroup\n\
if [ -n \"$lu\" ] && command -v systemctl >/dev/null 2>&1 && [ \"$(systemctl show -p MainPID --value \"$lu\" 2>/dev/null)\" = \"$lp\" ]; then :; else lu=; fi\n";

/// Shell that prints the socket facts of the member's ports from one
/// `ss -p`: `listen-begin` (ss exists) and each listening address
/// (`listen`); then the `listener` facts for the etcd processes among them
/// (checked to be etcd by their name): each socket's local address and pid
/// (`listener-at`), then each process (by pid, ascending) with its command
/// line and, when it is the main process of a systemd unit, that unit's
/// file, drop-ins and environment files. Several members may share a host
/// on different addresses: [`parse_probe`] keeps the one whose socket takes
/// the member's address. The pids and names are read by the shell; the
/// command line (NUL-separated) goes through `base64`.
fn listener_fragment(m: &DesiredMember) -> String {
    let (c, p) = (m.client_port, m.peer_port);
    format!(
        "if command -v ss >/dev/null 2>&1; then\n\
printf 'listen-begin\\n'\n\
ls=$(ss -Hltnp '( sport = :{c} or sport = :{p} )' 2>/dev/null)\n\
lps=\n\
while read -r _ _ _ la _ rest; do\n\
  [ -n \"$la\" ] || continue\n\
  printf 'listen\\t%s\\n' \"$la\"\n\
  while :; do\n\
    case \"$rest\" in *pid=*) rest=${{rest#*pid=}};; *) break;; esac\n\
    lp=${{rest%%[!0-9]*}}; lc=\n\
    if [ -n \"$lp\" ]; then {{ IFS= read -r lc < /proc/$lp/comm; }} 2>/dev/null; fi\n\
    case \"$lc\" in etcd*) ;; *) continue;; esac\n\
    printf 'listener-at\\t%s\\t%s\\n' \"$lp\" \"$la\"\n\
    case \" $lps \" in *\" $lp \"*) continue;; esac\n\
    lo=; ld=\n\
    for q in $lps; do if [ -z \"$ld\" ] && [ \"$lp\" -lt \"$q\" ]; then lo=\"$lo $lp\"; ld=1; fi; lo=\"$lo $q\"; done\n\
    [ -n \"$ld\" ] || lo=\"$lo $lp\"\n\
    lps=$lo\n\
  done\n\
done <<EOF\n\
$ls\n\
EOF\n\
for lp in $lps; do\n\
{UNIT_OF_LP}\
  printf 'listener\\t%s\\t' \"$lp\"; base64 -w0 < /proc/$lp/cmdline; printf '\\t%s\\n' \"$lu\"\n\
  if [ -n \"$lu\" ]; then\n\
    printf 'listener-fragment\\t%s\\n' \"$(systemctl show -p FragmentPath --value \"$lu\")\"\n\
    for f in $(systemctl show -p DropInPaths --value \"$lu\"); do printf 'listener-dropin\\t%s\\n' \"$f\"; done\n\
    systemctl show -p EnvironmentFiles --value \"$lu\" | sed -n 's/^\\(.*\\) (ignore_errors=.*)$/listener-envfile\\t\\1/p'\n\
  fi\n\
done\nfi\n"
    )
}

/// Shell that prints a `problem` fact when the data dir and the separate WAL
/// folder disagree: etcd would start a member whose WAL is elsewhere as a
/// new one, and would replay a WAL left without its data dir.
fn wal_check(m: &DesiredMember, wal: &std::path::Path) -> String {
    let (w, d) = (wal.display(), m.data_dir.display());
    format!(
        "w={wq}\nif ls \"$w\"/*.wal >/dev/null 2>&1; then hw=1; else hw=0; fi\n\
if [ \"$k\" = member ] && [ $hw = 0 ]; then {no_wal}; elif [ \"$k\" != member ] && [ $hw = 1 ]; then {orphan}; fi\n",
        wq = shell_quote(&w.to_string()),
        no_wal = service::print_problem(
            &format!("data dir {d} holds a member but wal_dir {w} holds no WAL"),
            &format!(
                "etcd keeps this member's WAL elsewhere (in {d}/member/wal unless an earlier wal_dir said otherwise); stop etcd and move the *.wal files into {w} by hand, or set wal_dir back"
            ),
        ),
        orphan = service::print_problem(
            &format!("wal_dir {w} holds a WAL but data dir {d} holds no member"),
            &format!(
                "move {w} aside (mv {w} {w}.old) if that WAL is not needed; etcd would replay it"
            ),
        ),
    )
}

/// The listener that is this member's: one with a socket that takes the
/// member's address on its client or peer port. For a member named by host
/// name (`ss -n` shows numbers), the only etcd on those ports, if one.
fn member_listener(
    m: &DesiredMember,
    listeners: Vec<Listener>,
    at: &[(u32, ListenAddr)],
) -> Option<Listener> {
    let takes = |pid: u32| {
        at.iter().any(|(p, a)| {
            *p == pid && (a.takes(&m.address, m.client_port) || a.takes(&m.address, m.peer_port))
        })
    };
    let by_address = listeners.iter().find(|l| takes(l.pid)).cloned();
    match (&m.address, by_address) {
        (_, Some(l)) => Some(l),
        (crate::model::Address::Dns(_), None) if listeners.len() == 1 => {
            listeners.into_iter().next()
        }
        _ => None,
    }
}

/// Why a probe's output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeOutputError {
    /// A line with a known tag had the wrong fields.
    #[error("line {line}: bad `{tag}` fact: {why}")]
    BadFact {
        /// 1-based line number.
        line: usize,
        /// The line's tag.
        tag: String,
        /// What was wrong.
        why: &'static str,
    },
    /// A fact every probe prints was not there (the script stopped early).
    #[error("the probe printed no `{0}` fact")]
    Missing(&'static str),
}

/// Default help for a `problem` fact that carries none.
const PROBLEM_HELP: &str = "fix the host, then run plan again";

/// Reads the probe's output into [`HostFacts`], once, so nothing downstream
/// parses text.
///
/// # The line protocol
///
/// One fact per line: a fixed tag, then its fields, all separated by a tab
/// (`\t`). Lines with another tag are ignored (a login banner, shell noise);
/// a known tag with the wrong fields is an error. Binary content is base64.
///
/// | tag | fields | from |
/// |---|---|---|
/// | `file` | index into [`owned_paths`](super::owned_paths), base64 content or `-` (absent) | probe |
/// | `data` | `member`, `absent`, `empty` or `other` (required) | probe |
/// | `service` | `running`, pid; or `stopped` (required) | service manager |
/// | `started-config` | sha256 of the config etcd was started with, or empty | service manager |
/// | `started-ca` | base64 of the CA bundle etcd was started with | service manager |
/// | `data-owner` | the user owning the data dir, when it exists | probe |
/// | `service-user` | the user the running etcd runs as (empty: unknown) | service manager |
/// | `problem` | message, help (help optional): stops etcd from starting here | service manager, probe (`run_as`) |
/// | `unit` | the unit's ActiveState, SubState, UnitFileState (empty: no unit file), NeedDaemonReload (`yes`, `no`) | `systemd`, when systemd answers |
/// | `binary` | `ok`, first line of `etcd --version`; or `missing` (required) | probe |
/// | `release` | version, sha256 of `<binary>-<version>` | probe (with `binary_source`) |
/// | `cert` | 0 (CA), 1 (server), 2 (peer), base64 PEM | probe (with TLS) |
/// | `key` | 0 (server), 1 (peer), octal mode | probe (with TLS) |
/// | `listen-begin` | none: `ss` exists, `listen` lines follow | probe |
/// | `listen` | a local address as `ss -n` prints it | probe |
/// | `wal-head` | base64 of the first KiB of the member's first WAL file | probe |
/// | `listener-at` | pid, a local address it listens on (an etcd on the member's ports) | probe |
/// | `listener` | pid, base64 of its NUL-separated command line, its systemd unit (empty: none) | probe |
/// | `listener-fragment` | the listener's unit file | probe (with a unit) |
/// | `listener-dropin` | one drop-in of the listener's unit | probe (with a unit) |
/// | `listener-envfile` | one environment file of the listener's unit | probe (with a unit) |
///
/// A `started-config` that is not 64 hex digits reads as unknown (the
/// recorded file is damaged), and a `listen` address that does not parse is
/// skipped (it is `ss`'s text, not ours); neither is an error. An
/// ActiveState or UnitFileState word etcdplan does not know is kept as
/// printed (newer systemd versions add some).
pub fn parse_probe(
    d: &Desired,
    m: &DesiredMember,
    out: &str,
) -> Result<HostFacts, ProbeOutputError> {
    let paths = super::owned_paths(d, m);
    let mut files: Vec<(PathBuf, Option<String>)> =
        paths.iter().map(|p| (p.clone(), None)).collect();
    let (mut data, mut service, mut binary, mut listening) = (None, None, None, None);
    let mut started_config = None;
    let mut started_ca = None;
    let mut unit = None;
    let mut problems = Vec::new();
    let mut certs = HostCerts::default();
    let mut auth_files = HostAuthFiles::default();
    let mut installed = std::collections::BTreeMap::new();
    let (mut data_owner, mut service_user) = (None, None);
    let mut data_owner_id = None;
    let mut restore_pending = None;
    let mut listeners: Vec<Listener> = Vec::new();
    let mut listener_at: Vec<(u32, ListenAddr)> = Vec::new();
    for (n, line) in out.lines().enumerate() {
        let mut fields = line.split('\t');
        let tag = fields.next().unwrap_or_default();
        let fields: Vec<&str> = fields.collect();
        let bad = |why| ProbeOutputError::BadFact {
            line: n + 1,
            tag: tag.to_owned(),
            why,
        };
        let decode = |b64: &str| {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .map_err(|_| bad("bad base64"))
        };
        match (tag, fields.as_slice()) {
            ("file", [idx, content]) => {
                let i: usize = idx.parse().map_err(|_| bad("bad index"))?;
                let slot = files.get_mut(i).ok_or_else(|| bad("index out of range"))?;
                slot.1 = match *content {
                    "-" => None,
                    b64 => Some(decode(b64)?),
                };
            }
            ("data", [kind]) => {
                data = Some(match *kind {
                    "member" => DataDir::Member,
                    "absent" => DataDir::Absent,
                    "empty" => DataDir::Empty,
                    "other" => DataDir::Other,
                    _ => return Err(bad("unknown kind")),
                });
            }
            ("service", ["running", pid]) => {
                let pid = pid.trim().parse().map_err(|_| bad("bad pid"))?;
                service = Some(ServiceState::Running(pid));
            }
            ("service", ["stopped"]) => service = Some(ServiceState::Stopped),
            ("data-owner", [user]) => data_owner = Some(user.trim().to_owned()),
            ("service-user", [user]) => {
                service_user = Some(user.trim().to_owned()).filter(|u| !u.is_empty());
            }
            ("started-config", [hash]) => {
                let hash = hash.trim();
                started_config = (hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()))
                    .then(|| hash.to_owned());
            }
            ("started-ca", [b64]) => started_ca = Some(decode(b64)?),
            ("restore-pending", [b64]) => restore_pending = Some(decode(b64)?.trim().to_owned()),
            ("problem", [message, rest @ ..]) if rest.len() <= 1 => {
                problems.push(ProbeProblem {
                    message: (*message).to_owned(),
                    help: rest.first().unwrap_or(&PROBLEM_HELP).to_string(),
                });
            }
            ("unit", [active, sub, enabled, reload]) => {
                let needs_reload = match reload.trim() {
                    "yes" => true,
                    "no" | "" => false,
                    _ => return Err(bad("bad NeedDaemonReload")),
                };
                unit = Some(UnitState {
                    active: ActiveState::from_systemd(active.trim()),
                    sub: sub.trim().to_owned(),
                    enabled: UnitFileState::from_systemd(enabled.trim()),
                    needs_reload,
                });
            }
            ("binary", ["ok", version @ ..]) => {
                binary = Some(Binary::Found {
                    version: EtcdVersion::from_version_output(&version.join("\t")),
                });
            }
            ("binary", ["missing"]) => binary = Some(Binary::Missing),
            ("release", [v, sha]) => {
                if let Some(v) = EtcdVersion::parse(v) {
                    installed.insert(v, sha.trim().to_owned());
                }
            }
            ("cert", [idx, b64]) => {
                let text = Some(decode(b64)?);
                match *idx {
                    "0" => certs.ca = text,
                    "1" => certs.server = text,
                    "2" => certs.peer = text,
                    _ => return Err(bad("bad index")),
                }
            }
            ("key", [idx, mode]) => {
                let mode = u32::from_str_radix(mode.trim(), 8).map_err(|_| bad("bad mode"))?;
                match *idx {
                    "0" => certs.server_key_mode = Some(mode),
                    "1" => certs.peer_key_mode = Some(mode),
                    _ => return Err(bad("bad index")),
                }
            }
            ("auth-file", [idx, sha]) => {
                let sha = sha.trim();
                if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad("bad sha256"));
                }
                let slot = match *idx {
                    "0" => &mut auth_files.jwt_pub,
                    "1" => &mut auth_files.jwt_key,
                    "2" => &mut auth_files.crl,
                    _ => return Err(bad("bad index")),
                };
                *slot = Some(sha.to_owned());
            }
            ("auth-key-mode", [mode]) => {
                let mode = u32::from_str_radix(mode.trim(), 8).map_err(|_| bad("bad mode"))?;
                auth_files.jwt_key_mode = Some(mode);
            }
            ("listener", [pid, cmdline, unit]) => {
                let pid = pid.trim().parse().map_err(|_| bad("bad pid"))?;
                let cmdline = decode(cmdline)?
                    .split('\0')
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect();
                let unit = (!unit.trim().is_empty()).then(|| ListenerUnit {
                    name: unit.trim().to_owned(),
                    fragment: None,
                    dropins: Vec::new(),
                    env_files: Vec::new(),
                });
                listeners.push(Listener { pid, cmdline, unit });
            }
            ("wal-head", [b64]) => {
                let head =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim())
                        .map_err(|_| bad("bad base64"))?;
                data_owner_id = super::wal_owner(&head);
            }
            ("listener-at", [pid, addr]) => {
                let pid = pid.trim().parse().map_err(|_| bad("bad pid"))?;
                if let Ok(a) = addr.trim().parse::<ListenAddr>() {
                    listener_at.push((pid, a));
                }
            }
            ("listener-fragment" | "listener-dropin" | "listener-envfile", [path]) => {
                let unit = listeners
                    .last_mut()
                    .and_then(|l| l.unit.as_mut())
                    .ok_or_else(|| bad("no listener unit before it"))?;
                let path = PathBuf::from(path.trim());
                match tag {
                    "listener-fragment" => {
                        unit.fragment = (!path.as_os_str().is_empty()).then_some(path);
                    }
                    "listener-dropin" => unit.dropins.push(path),
                    _ => unit.env_files.push(path),
                }
            }
            ("listen-begin", []) => listening = Some(Vec::new()),
            ("listen", [addr]) => {
                if let Ok(a) = addr.trim().parse::<ListenAddr>() {
                    listening.get_or_insert_with(Vec::new).push(a);
                }
            }
            (
                "file" | "data" | "service" | "started-config" | "started-ca" | "problem" | "unit"
                | "binary" | "release" | "cert" | "key" | "listen-begin" | "listen" | "data-owner"
                | "service-user" | "listener" | "listener-fragment" | "listener-dropin"
                | "listener-envfile" | "listener-at" | "wal-head" | "restore-pending" | "auth-file"
                | "auth-key-mode",
                _,
            ) => return Err(bad("wrong fields")),
            _ => {}
        }
    }
    let listener = member_listener(m, listeners, &listener_at);
    Ok(HostFacts {
        data_owner_id,
        files,
        data: data.ok_or(ProbeOutputError::Missing("data"))?,
        service: service.ok_or(ProbeOutputError::Missing("service"))?,
        started_config,
        binary: binary.ok_or(ProbeOutputError::Missing("binary"))?,
        listening,
        listener,
        problems,
        certs,
        auth_files,
        started_ca,
        installed,
        unit,
        data_owner,
        service_user,
        restore_pending,
    })
}

/// Runs the probe on the host; failures become `Unreachable` with one line.
pub async fn probe(host: &dyn Host, d: &Desired, m: &DesiredMember) -> HostState {
    match host.run(&probe_script(d, m)).await {
        Err(e) => HostState::Unreachable {
            reason: e.to_string(),
            advice: e.advice().to_owned(),
        },
        Ok(out) if !out.success() => HostState::Unreachable {
            reason: format!(
                "{}: the probe exited {}: {}",
                host.label(),
                out.code,
                out.tail()
            ),
            advice: "run the probe's commands by hand on the host to see why".to_owned(),
        },
        Ok(out) => match parse_probe(d, m, &out.stdout) {
            Ok(f) => HostState::Reached(f),
            Err(e) => HostState::Unreachable {
                reason: format!("{}: unexpected probe output: {e}", host.label()),
                advice: "check that the host runs a POSIX shell with coreutils".to_owned(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{self, Context};

    #[test]
    fn wal_check_reports_a_wal_apart_from_its_data() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let wal = dir.path().join("wal");
        let mut d = desired("process", false);
        d.members[0].wal_dir = Some(wal.clone());
        let m = &d.members[0];
        let run = |k: &str| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("k={k}\n{}", wal_check(m, &wal)))
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert!(run("member").contains("holds no WAL"), "{}", run("member"));
        assert_eq!(run("empty"), "");
        std::fs::create_dir_all(&wal).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(wal.join("0000000000000000-0000000000000000.wal"), "")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run("member"), "");
        assert!(run("absent").contains("holds no member"));
        // Only a member with a wal_dir gets the check.
        let plain = desired("process", false);
        assert!(
            !probe_script(&plain, &plain.members[0])
                .source
                .contains("holds no WAL")
        );
        assert!(probe_script(&d, m).source.contains("holds no WAL"));
    }

    #[test]
    fn the_auth_files_are_read_back_as_digests_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut d = desired("process", true);
        d.members[0].config_dir = tmp.path().to_owned();
        d.auth = Some(crate::config::Auth {
            enabled: true,
            root: crate::config::Login::Certificate,
            token: crate::config::TokenKind::Jwt {
                key_dir: tmp.path().join("local"),
            },
            token_ttl: Duration::from_secs(300),
            prune: false,
            roles: Vec::new(),
            users: Vec::new(),
        });
        d.tls.crl_file = Some(tmp.path().join("local-crl.pem"));
        let m = &d.members[0];
        let p = crate::hostfiles::auth_paths(m);
        let fragment = auth_files_fragment(&d, m);
        let run = || {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&fragment)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            let out = format!(
                "{}data\tmember\nservice\tstopped\nbinary\tmissing\n",
                String::from_utf8_lossy(&out.stdout)
            );
            parse(&d, &out).unwrap_or_else(|e| panic!("{e}\n{out}"))
        };
        assert_eq!(run().auth_files, HostAuthFiles::default(), "nothing placed");
        for f in [&p.jwt_pub, &p.crl] {
            std::fs::create_dir_all(f.parent().unwrap_or(tmp.path()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&p.jwt_pub, "PUB").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&p.jwt_key, "SECRET KEY").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&p.jwt_key, std::fs::Permissions::from_mode(0o640))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&p.crl, "CRL").unwrap_or_else(|e| panic!("{e}"));
        let f = run().auth_files;
        let sha = |s: &str| Some(crate::pki::sha256_hex(s.as_bytes()));
        assert_eq!(
            f,
            HostAuthFiles {
                jwt_pub: sha("PUB"),
                jwt_key: sha("SECRET KEY"),
                jwt_key_mode: Some(0o640),
                crl: sha("CRL"),
            }
        );
        assert!(!format!("{f:?}").contains("SECRET"));
        // Without [auth] and crl_file the probe does not look.
        let mut plain = d.clone();
        plain.auth = None;
        plain.tls.crl_file = None;
        assert_eq!(auth_files_fragment(&plain, &plain.members[0]), "");
        assert!(matches!(
            parse(&d, "auth-file\t1\tnot-a-digest\n"),
            Err(ProbeOutputError::BadFact { .. })
        ));
    }

    /// One member over ssh with the given service and TLS on or off.
    fn desired(service: &str, tls: bool) -> Desired {
        desired_as(service, tls, "root")
    }

    /// [`desired`] with `[hosts] run_as = user`.
    fn desired_as(service: &str, tls: bool, user: &str) -> Desired {
        let tls = if tls {
            "\n[tls]\nclient = true\npeer = true\n"
        } else {
            ""
        };
        let text = format!(
            "[cluster]\nname = \"main\"\n\n[etcd]\ndata_dir = \"/var/lib/etcd\"\n{tls}\n[hosts]\ntransport = \"ssh\"\nservice = \"{service}\"\nrun_as = \"{user}\"\n\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n"
        );
        let ctx = Context {
            base_dir: PathBuf::from("/srv/etcdplan"),
            home: Some(PathBuf::from("/home/operator")),
            file_hash: config::hash(&text),
            ..Default::default()
        };
        match config::parse("etcdfile.toml", text, &ctx) {
            Ok(l) => l.desired,
            Err(e) => panic!("test etcdfile invalid: {e:?}"),
        }
    }

    fn parse(d: &Desired, out: &str) -> Result<HostFacts, ProbeOutputError> {
        parse_probe(d, &d.members[0], out)
    }

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_running_systemd_member_with_everything() {
        let d = desired("systemd", true);
        let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
        let out = format!(
            "Welcome to host 1\n\
file\t0\t{}\nfile\t1\t-\n\
data\tmember\n\
service\trunning\t4242\n\
unit\tactive\trunning\tdisabled\tyes\n\
started-config\t{HASH}\n\
started-ca\t{}\n\
binary\tok\tetcd Version: 3.5.16\n\
cert\t0\t{}\nkey\t1\t600\n\
listen-begin\nlisten\t10.0.0.11:2379\nlisten\t[::]:2380\nlisten\tgarbage\n\
some shell noise\twith a tab\n",
            b64("name: etcd-1\n"),
            b64("CA"),
            b64("CA2"),
        );
        let f = match parse(&d, &out) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(f.files.len(), 2, "config and unit");
        assert_eq!(f.files[0].1.as_deref(), Some("name: etcd-1\n"));
        assert_eq!(f.files[1].1, None);
        assert_eq!(f.data, DataDir::Member);
        assert_eq!(f.service, ServiceState::Running(4242));
        assert_eq!(f.started_config.as_deref(), Some(HASH));
        assert_eq!(f.started_ca.as_deref(), Some("CA"));
        assert_eq!(f.certs.ca.as_deref(), Some("CA2"));
        assert_eq!(f.certs.peer_key_mode, Some(0o600));
        assert_eq!(f.certs.server_key_mode, None);
        assert_eq!(
            f.binary.version().map(|v| v.to_string()).as_deref(),
            Some("3.5.16")
        );
        let listening: Vec<String> = f
            .listening
            .iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        assert_eq!(listening, ["10.0.0.11:2379", "[::]:2380"]);
        assert!(f.problems.is_empty());
        assert_eq!(
            f.unit,
            Some(UnitState {
                active: ActiveState::Active,
                sub: "running".into(),
                enabled: UnitFileState::Disabled,
                needs_reload: true,
            })
        );
    }

    #[test]
    fn a_unit_without_a_file_and_unknown_words_are_facts_not_errors() {
        let d = desired("systemd", false);
        let ok = "data\tempty\nservice\tstopped\nbinary\tmissing\n";
        let f = parse(&d, &format!("{ok}unit\tinactive\tdead\t\tno\n")).map(|f| f.unit);
        assert_eq!(
            f,
            Ok(Some(UnitState {
                active: ActiveState::Inactive,
                sub: "dead".into(),
                enabled: UnitFileState::NotFound,
                needs_reload: false,
            }))
        );
        let f = parse(
            &d,
            &format!("{ok}unit\tmaintenance\tcleaning\tlinked\tno\n"),
        )
        .map(|f| f.unit.map(|u| (u.active, u.enabled)));
        assert_eq!(
            f,
            Ok(Some((
                ActiveState::Other("maintenance".into()),
                UnitFileState::Other("linked".into())
            )))
        );
        assert_eq!(parse(&d, ok).map(|f| f.unit), Ok(None), "no unit fact");
    }

    #[test]
    fn problems_keep_message_and_help_apart() {
        let d = desired("systemd", false);
        let out = "problem\tsystemctl not found\tthis host does not run systemd; set service = \"process\" in [hosts]\n\
problem\tsomething: with a colon\n\
data\tempty\nservice\tstopped\nbinary\tmissing\n";
        let f = match parse(&d, out) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            f.problems,
            [
                ProbeProblem {
                    message: "systemctl not found".into(),
                    help: "this host does not run systemd; set service = \"process\" in [hosts]"
                        .into(),
                },
                ProbeProblem {
                    message: "something: with a colon".into(),
                    help: PROBLEM_HELP.into(),
                },
            ]
        );
        assert_eq!(f.service, ServiceState::Stopped);
        assert_eq!(f.binary, Binary::Missing);
        assert_eq!(f.data, DataDir::Empty);
        assert_eq!(f.listening, None, "no listen-begin: ss is missing");
        assert_eq!(f.started_config, None);
    }

    #[test]
    fn the_listener_is_the_etcd_on_the_members_own_address() {
        use base64::Engine as _;
        let d = desired("systemd", false);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        // Two etcds on one host: another member's on 10.0.0.12, this one's on 10.0.0.11.
        let out = format!(
            "data\tmember\nservice\tstopped\nbinary\tmissing\n\
listener-at\t7\t10.0.0.12:2379\nlistener-at\t9\t10.0.0.11:2380\n\
listener\t7\t{}\t\nlistener\t9\t{}\tetcd.service\n\
listener-fragment\t/etc/systemd/system/etcd.service\nlistener-dropin\t/etc/systemd/system/etcd.service.d/a.conf\n\
listener-envfile\t/etc/default/etcd\n",
            b64("/usr/bin/etcd\0--name\0other\0"),
            b64("/usr/bin/etcd\0--name\0etcd-1\0"),
        );
        let f = parse(&d, &out).unwrap_or_else(|e| panic!("{e}"));
        let l = f.listener.unwrap_or_else(|| panic!("no listener"));
        assert_eq!(l.pid, 9);
        assert_eq!(l.cmdline, ["/usr/bin/etcd", "--name", "etcd-1"]);
        let u = l.unit.unwrap_or_else(|| panic!("no unit"));
        assert_eq!(u.name, "etcd.service");
        assert_eq!(
            u.dropins,
            [PathBuf::from("/etc/systemd/system/etcd.service.d/a.conf")]
        );
        assert_eq!(u.env_files, [PathBuf::from("/etc/default/etcd")]);
        // Only the other member's etcd there: no listener for this one.
        let other = "data\tmember\nservice\tstopped\nbinary\tmissing\nlistener-at\t7\t10.0.0.12:2379\nlistener\t7\tAA==\t\n";
        let f = parse(&d, other).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.listener, None);
    }

    #[test]
    fn a_listen_section_without_sockets_is_empty_not_unknown() {
        let d = desired("process", false);
        let out = "data\tabsent\nservice\tstopped\nbinary\tmissing\nlisten-begin\n";
        let f = parse(&d, out).map_err(|e| e.to_string());
        assert_eq!(f.map(|f| f.listening), Ok(Some(Vec::new())));
    }

    #[test]
    fn a_damaged_started_config_reads_as_unknown() {
        let d = desired("process", false);
        for hash in ["", "not-a-hash", &HASH[1..]] {
            let out = format!(
                "data\tmember\nservice\trunning\t7\nstarted-config\t{hash}\nbinary\tmissing\n"
            );
            let f = parse(&d, &out).map_err(|e| e.to_string());
            assert_eq!(f.map(|f| f.started_config), Ok(None), "{hash:?}");
        }
    }

    #[test]
    fn a_missing_section_is_an_error() {
        let d = desired("process", false);
        assert_eq!(
            parse(&d, "data\tmember\nbinary\tmissing\n").err(),
            Some(ProbeOutputError::Missing("service"))
        );
        assert_eq!(
            parse(&d, "service\tstopped\nbinary\tmissing\n").err(),
            Some(ProbeOutputError::Missing("data"))
        );
        assert_eq!(parse(&d, "").err(), Some(ProbeOutputError::Missing("data")));
    }

    #[test]
    fn a_known_tag_with_bad_fields_is_an_error() {
        let d = desired("process", false);
        let ok = "data\tmember\nservice\tstopped\nbinary\tmissing\n";
        for (line, why) in [
            ("service running 42", None), // the old space-separated form: not a fact
            ("service\trunning\tabc", Some("bad pid")),
            ("service\tmaybe", Some("wrong fields")),
            ("data\tsomething", Some("unknown kind")),
            ("file\t9\t-", Some("index out of range")),
            ("file\t0\t!!!", Some("bad base64")),
            ("key\t0\trwx", Some("bad mode")),
            ("problem", Some("wrong fields")),
            ("problem\ta\tb\tc", Some("wrong fields")),
            ("unit\tactive\trunning\tenabled", Some("wrong fields")),
            (
                "unit\tactive\trunning\tenabled\tmaybe",
                Some("bad NeedDaemonReload"),
            ),
        ] {
            let got = parse(&d, &format!("{ok}{line}\n")).err();
            let want = why.map(|why| ProbeOutputError::BadFact {
                line: 4,
                tag: line.split('\t').next().unwrap_or_default().to_owned(),
                why,
            });
            assert_eq!(got, want, "{line:?}");
        }
    }

    /// A folder for PATH holding the tools the probe uses, and no `systemctl`.
    fn tool_dir() -> tempfile::TempDir {
        let Ok(bin) = tempfile::tempdir() else {
            panic!("no temp dir");
        };
        for tool in [
            "cat",
            "base64",
            "ls",
            "grep",
            "head",
            "cut",
            "sha256sum",
            "awk",
            "ss",
            "stat",
            "tr",
        ] {
            if let Some(path) = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
                .iter()
                .map(|dir| std::path::Path::new(dir).join(tool))
                .find(|p| p.exists())
            {
                std::os::unix::fs::symlink(path, bin.path().join(tool))
                    .unwrap_or_else(|e| panic!("{tool}: {e}"));
            }
        }
        bin
    }

    /// The real script in a real shell, with `systemctl` hidden from PATH:
    /// the shell quoting and the parser agree, problem fields included.
    #[tokio::test]
    async fn the_script_runs_in_sh_and_parses() {
        let bin = tool_dir();
        for service in ["process", "systemd"] {
            let d = desired(service, true);
            let mut script = probe_script(&d, &d.members[0]);
            script.source = format!("PATH={}\n{}", bin.path().display(), script.source);
            let out = match crate::io::LocalHost.run(&script).await {
                Ok(out) => out,
                Err(e) => panic!("{service}: {e}"),
            };
            assert!(out.success(), "{service}: {}", out.tail());
            let f = match parse(&d, &out.stdout) {
                Ok(f) => f,
                Err(e) => panic!("{service}: {e}\n{}", out.stdout),
            };
            let problems: Vec<(&str, &str)> = f
                .problems
                .iter()
                .map(|p| (p.message.as_str(), p.help.as_str()))
                .collect();
            if service == "systemd" {
                assert_eq!(
                    problems,
                    [(
                        "systemctl not found",
                        "this host does not run systemd; set service = \"process\" in [hosts]"
                    )]
                );
                assert_eq!(f.service, ServiceState::Stopped);
            } else {
                assert_eq!(problems, []);
            }
            assert_eq!(f.unit, None, "{service}: no systemd, no unit fact");
            let ss = bin.path().join("ss").exists();
            assert_eq!(f.listening.is_some(), ss, "{service}");
        }
    }

    /// The real script in a real shell against a stand-in `systemctl` that
    /// answers the probe's one `show -p … etcd.service` as systemd does
    /// (`Key=value` lines in its own order, not the order asked): the unit
    /// fact reads back what it said, an empty UnitFileState included.
    #[tokio::test]
    async fn the_unit_fact_reads_back_what_systemctl_says() {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = tool_dir();
        let d = desired("systemd", false);
        for (enabled, reload, want) in [
            ("enabled", "no", UnitFileState::Enabled),
            ("disabled", "yes", UnitFileState::Disabled),
            ("", "no", UnitFileState::NotFound),
        ] {
            let systemctl = bin.path().join("systemctl");
            let text = format!(
                "#!/bin/sh\n[ \"$*\" = 'show -p ActiveState -p SubState -p MainPID -p UnitFileState -p NeedDaemonReload etcd.service' ] || exit 1\n\
printf 'MainPID=4242\\nNeedDaemonReload={reload}\\nActiveState=active\\nSubState=running\\nUnitFileState={enabled}\\n'\n"
            );
            std::fs::write(&systemctl, text).unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("{e}"));
            let mut script = probe_script(&d, &d.members[0]);
            script.source = format!("PATH={}\n{}", bin.path().display(), script.source);
            let out = match crate::io::LocalHost.run(&script).await {
                Ok(out) => out,
                Err(e) => panic!("{e}"),
            };
            assert!(out.success(), "{}", out.tail());
            let f = match parse(&d, &out.stdout) {
                Ok(f) => f,
                Err(e) => panic!("{e}\n{}", out.stdout),
            };
            assert_eq!(f.service, ServiceState::Running(4242));
            assert_eq!(
                f.unit,
                Some(UnitState {
                    active: ActiveState::Active,
                    sub: "running".into(),
                    enabled: want,
                    needs_reload: reload == "yes",
                }),
                "{}",
                out.stdout
            );
        }
    }

    #[test]
    fn the_script_prints_tab_separated_facts() {
        for service in ["process", "systemd"] {
            let d = desired(service, true);
            let src = probe_script(&d, &d.members[0]).source;
            for tag in [
                "file",
                "data",
                "service",
                "started-config",
                "binary",
                "cert",
                "key",
                "listen",
            ] {
                assert!(src.contains(&format!("{tag}\\t")), "{service}: {tag}");
            }
            assert!(!src.contains("echo 'service"), "{service}");
            assert_eq!(src.contains("unit\\t"), service == "systemd", "{service}");
        }
        let d = desired("systemd", false);
        assert!(
            probe_script(&d, &d.members[0])
                .source
                .contains("problem\\t")
        );
    }

    #[test]
    fn owners_are_read_and_an_unknown_user_is_none() {
        let d = desired("process", false);
        let out = "data\tmember\ndata-owner\tetcd\nservice\trunning\t7\nservice-user\t\nbinary\tmissing\n";
        let f = parse(&d, out).map_err(|e| e.to_string());
        assert_eq!(
            f.map(|f| (f.data_owner, f.service_user)),
            Ok((Some("etcd".to_owned()), None))
        );
        let out = "data\tmember\nservice\trunning\t7\nservice-user\troot\nbinary\tmissing\n";
        let f = parse(&d, out).map_err(|e| e.to_string());
        assert_eq!(
            f.map(|f| (f.data_owner, f.service_user)),
            Ok((None, Some("root".to_owned())))
        );
        let bad = "data\tmember\nservice\tstopped\nbinary\tmissing\ndata-owner\ta\tb\n";
        assert!(matches!(
            parse(&d, bad),
            Err(ProbeOutputError::BadFact {
                why: "wrong fields",
                ..
            })
        ));
    }

    /// The probe, run in sh, reports a run_as user the host lacks, and only then.
    #[tokio::test]
    async fn a_missing_run_as_user_is_a_problem() {
        for (user, missing) in [("epnosuchuser", true), ("nobody", false), ("root", false)] {
            let d = desired_as("process", false, user);
            let out = match crate::io::LocalHost
                .run(&probe_script(&d, &d.members[0]))
                .await
            {
                Ok(out) => out,
                Err(e) => panic!("{user}: {e}"),
            };
            let f = match parse(&d, &out.stdout) {
                Ok(f) => f,
                Err(e) => panic!("{user}: {e}\n{}", out.stdout),
            };
            let messages: Vec<&str> = f.problems.iter().map(|p| p.message.as_str()).collect();
            if missing {
                assert_eq!(messages, [format!("user {user} (run_as) does not exist")]);
                assert!(f.problems[0].help.contains("etcd-server"));
            } else {
                assert!(messages.is_empty(), "{user}: {messages:?}");
            }
        }
    }
}
