//! The member hosts of a [`FakeCluster`](super::FakeCluster): a
//! [`FakeHost`] cannot run shell, so it recognises each script by its `what`
//! label ([`Effect::of`], the one table) and applies that effect to the
//! shared state.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{FakeDisk, FakeHost, FakeMember, World, sha256_hex};
use crate::io::{CommandOutput, Host, HostError, Script};
use crate::model::Endpoint;

/// What a script does, recognised by its `what` label: the one place that
/// knows the scripts `service`, `execute` and `observe` run. A script not
/// listed here exits 127, so a new script fails tests loudly.
#[derive(Debug, PartialEq)]
enum Effect {
    /// `probe NAME` (observe/host.rs): print what the host shows.
    Probe,
    /// `write PATH` (io::write_file_script): stdin to PATH, mode from `chmod`.
    Write(PathBuf),
    /// `read PATH` (issuing certificates): print PATH or nothing.
    Read(PathBuf),
    /// `hash PATH` (installing a release): its sha256, if present.
    Hash(PathBuf),
    /// `start NAME` (service::start): start etcd with the config at `cfg=`.
    Start,
    /// `stop NAME` (service::stop): stop etcd.
    Stop,
    /// `check NAME` (service::check_alive): `alive`, or `dead` and the log.
    CheckAlive,
    /// `retire NAME` (membership::retire): move data and config aside.
    Retire,
    /// `takeover NAME write-job|start-job|job-status` (execute::adopt): the
    /// takeover job written (its files read from it), run, or asked.
    Takeover(String),
    /// `copy NAME's data` (execute::recover): the survivor's data copied aside.
    Copy,
    /// `clear NAME's recovery mark` (execute::recover): nothing to model.
    Clear,
    /// `start NAME with force-new-cluster` (service::start_forced): started,
    /// and the membership rewritten to that member alone.
    ForceStart,
    /// `check NAME's v2 store` (execute::binary): a clean v2 store, as
    /// etcdutl 3.5.32+ reports it (a test hook makes it find custom content).
    CheckV2,
}

impl Effect {
    /// The table: label prefix → effect.
    fn of(script: &Script) -> Option<Self> {
        let (verb, rest) = script.what.split_once(' ')?;
        Some(match verb {
            "probe" => Self::Probe,
            "write" => Self::Write(PathBuf::from(rest)),
            "read" => Self::Read(PathBuf::from(rest)),
            "hash" => Self::Hash(PathBuf::from(rest)),
            "start" if rest.ends_with(" with force-new-cluster") => Self::ForceStart,
            "start" => Self::Start,
            "copy" => Self::Copy,
            "clear" => Self::Clear,
            "stop" => Self::Stop,
            "check" if !rest.contains(' ') => Self::CheckAlive,
            "check" if rest.ends_with("'s v2 store") => Self::CheckV2,
            "retire" => Self::Retire,
            "takeover" => Self::Takeover(rest.split_whitespace().last()?.to_owned()),
            _ => return None,
        })
    }
}

fn ok(stdout: String) -> CommandOutput {
    CommandOutput {
        code: 0,
        stdout,
        stderr: String::new(),
    }
}

fn failed(code: i32, stderr: &str) -> CommandOutput {
    CommandOutput {
        code,
        stdout: String::new(),
        stderr: stderr.to_owned(),
    }
}

/// Removes POSIX single quotes as `shell_quote` adds them.
fn unquote(word: &str) -> String {
    match word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) {
        Some(inner) => inner.replace("'\\''", "'"),
        None => word.to_owned(),
    }
}

/// The value of a `name=VALUE` line of a script.
fn assignment(source: &str, name: &str) -> Option<String> {
    source
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(unquote)
}

/// The `if [ -f PATH ]; then printf 'KIND\tI\t…` lines of the probe: (kind, index, path).
fn probed_paths(source: &str) -> Vec<(String, String, PathBuf)> {
    source
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("if [ -f ")?;
            let (path, rest) = rest.split_once(" ]; then printf '")?;
            let (kind, rest) = rest.split_once("\\t")?;
            let (index, _) = rest.split_once(['\\', '\''])?;
            Some((
                kind.to_owned(),
                index.to_owned(),
                PathBuf::from(unquote(path)),
            ))
        })
        .collect()
}

fn base64(text: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text)
}

impl FakeHost {
    /// Runs one recognised script against the shared state.
    fn apply(&self, effect: Effect, script: &Script) -> CommandOutput {
        let mut w = self.cluster.world();
        let address = self.address.clone();
        let disk = w.hosts.entry(address.clone()).or_default();
        match effect {
            Effect::Probe => ok(probe_output(disk, &script.source)),
            Effect::Write(path) => {
                let mode = script
                    .source
                    .lines()
                    .find_map(|l| l.strip_prefix("chmod "))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|m| u32::from_str_radix(m, 8).ok())
                    .unwrap_or(0o644);
                let text = String::from_utf8_lossy(script.stdin.as_deref().unwrap_or_default());
                disk.files.insert(path, (text.into_owned(), mode));
                ok(String::new())
            }
            Effect::Read(path) => ok(disk
                .files
                .get(&path)
                .map(|(t, _)| t.clone())
                .unwrap_or_default()),
            Effect::Hash(path) => ok(disk
                .files
                .get(&path)
                .map(|(t, _)| format!("{}\n", sha256_hex(t.as_bytes())))
                .unwrap_or_default()),
            Effect::CheckAlive => {
                if disk.running {
                    ok("alive\n".into())
                } else {
                    ok(format!("dead\n{}", disk.log.join("\n")))
                }
            }
            Effect::Stop => {
                w.stop(&address);
                ok("stopped\n".into())
            }
            Effect::Retire => {
                let mut out = Vec::new();
                if disk.data {
                    disk.data = false;
                    out.push("moved the data dir's member aside".to_owned());
                }
                if let Some(cfg) = assignment(&script.source, "c").map(PathBuf::from)
                    && disk.files.remove(&cfg).is_some()
                {
                    out.push(format!("moved {} aside", cfg.display()));
                }
                disk.started_config = None;
                ok(out.join("\n"))
            }
            Effect::Start => start(&mut w, &address, &script.source),
            Effect::Copy => {
                if disk.data {
                    ok("copied the data dir's member aside\n".into())
                } else {
                    failed(3, "no data to recover from")
                }
            }
            Effect::Clear => ok(String::new()),
            Effect::CheckV2 => {
                ok("No custom content found in both v2store and WAL records.\n".into())
            }
            Effect::ForceStart => {
                let out = start(&mut w, &address, &script.source);
                if out.code == 0 {
                    w.members
                        .retain(|m| m.host.as_deref() == Some(address.as_str()));
                    w.settle();
                }
                out
            }
            Effect::Takeover(what) => takeover(&mut w, &address, &what, script),
        }
    }
}

/// The takeover job's parts: `write-job` reads the files it would put in
/// place (`p=PATH` then `printf '%s' 'BASE64' | base64 -d … chmod MODE`),
/// `start-job` runs it (the old etcd gives way to etcdplan's service with
/// the same member), `job-status` says how it ended.
fn takeover(w: &mut World, address: &str, what: &str, script: &Script) -> CommandOutput {
    let Some(disk) = w.hosts.get_mut(address) else {
        return failed(2, "fake: no such host");
    };
    match what {
        "write-job" => {
            let job =
                String::from_utf8_lossy(script.stdin.as_deref().unwrap_or_default()).into_owned();
            let mut files = Vec::new();
            let mut path = None;
            for line in job.lines() {
                if let Some(p) = line.strip_prefix("p=") {
                    path = Some(PathBuf::from(unquote(p)));
                } else if let (Some(p), Some(rest)) = (&path, line.split_once("printf '%s' '")) {
                    let b64 = rest.1.split('\'').next().unwrap_or_default();
                    let text =
                        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default();
                    let mode = rest
                        .1
                        .split("chmod ")
                        .nth(1)
                        .and_then(|m| m.split_whitespace().next())
                        .and_then(|m| u32::from_str_radix(m, 8).ok())
                        .unwrap_or(0o644);
                    files.push((p.clone(), text, mode));
                }
            }
            disk.job = Some(files);
            disk.job_status = None;
            ok(String::new())
        }
        "start-job" => {
            let Some(files) = disk.job.take() else {
                return failed(2, "fake: no takeover job written");
            };
            for (p, text, mode) in files {
                disk.files.insert(p, (text, mode));
            }
            disk.foreign = false;
            disk.pid += 1;
            disk.started_config = disk
                .files
                .iter()
                .find(|(p, _)| p.ends_with("etcd.conf.yml"))
                .map(|(_, (t, _))| sha256_hex(t.as_bytes()));
            disk.job_status = Some("done".into());
            w.settle();
            ok("started\n".into())
        }
        _ => ok(disk
            .job_status
            .clone()
            .map(|s| s + "\n")
            .unwrap_or_default()),
    }
}

/// What the probe prints for a disk (see observe/host.rs `parse_probe`).
fn probe_output(disk: &FakeDisk, source: &str) -> String {
    let mut out = String::new();
    for (kind, index, path) in probed_paths(source) {
        match (kind.as_str(), disk.files.get(&path)) {
            ("file", Some((text, _))) => {
                out.push_str(&format!("file\t{index}\t{}\n", base64(text)))
            }
            ("file", None) => out.push_str(&format!("file\t{index}\t-\n")),
            ("cert", Some((text, _))) => {
                out.push_str(&format!("cert\t{index}\t{}\n", base64(text)))
            }
            ("key", Some((_, mode))) => out.push_str(&format!("key\t{index}\t{mode:o}\n")),
            ("auth-file", Some((text, _))) => out.push_str(&format!(
                "auth-file\t{index}\t{}\n",
                super::sha256_hex(text.as_bytes())
            )),
            ("auth-key-mode", Some((_, mode))) => {
                out.push_str(&format!("auth-key-mode\t{mode:o}\n"));
            }
            _ => {}
        }
    }
    out.push_str(if disk.data {
        "data\tmember\n"
    } else {
        "data\tabsent\n"
    });
    if disk.running && !disk.foreign {
        out.push_str(&format!(
            "service\trunning\t{}\nstarted-config\t{}\n",
            disk.pid,
            disk.started_config.as_deref().unwrap_or("")
        ));
    } else {
        out.push_str("service\tstopped\n");
    }
    if disk.running && disk.foreign && source.contains("listener-at") {
        // A bare etcd on the member's ports (any address: the fake's sockets
        // take every address), started by hand.
        out.push_str(&format!(
            "listener-at\t{pid}\t*:2379\nlistener\t{pid}\t{}\t\n",
            base64("/usr/bin/etcd\0--name\0by-hand\0"),
            pid = disk.pid
        ));
    }
    if source.contains("unit\\t") {
        // The systemd service's probe: the unit runs when etcd does, and is
        // enabled once its file is on the disk (every start enables it).
        let unit = crate::service::systemd::unit_path();
        let (active, sub) = if disk.running {
            ("active", "running")
        } else {
            ("inactive", "dead")
        };
        let enabled = if disk.files.contains_key(&unit) {
            "enabled"
        } else {
            ""
        };
        out.push_str(&format!("unit\t{active}\t{sub}\t{enabled}\tno\n"));
    }
    match disk.binary {
        Some(v) => out.push_str(&format!("binary\tok\tetcd Version: {v}\n")),
        None => out.push_str("binary\tmissing\n"),
    }
    out
}

/// Starts etcd on a host with the config at the script's `cfg=`: it joins
/// the member whose name or peer URL the config gives, bootstraps a new
/// cluster from `initial-cluster`, or exits (shown by `check`).
fn start(w: &mut World, address: &str, source: &str) -> CommandOutput {
    let Some(cfg) = assignment(source, "cfg") else {
        return failed(2, "fake: start script without cfg=");
    };
    let Some(disk) = w.hosts.get_mut(address) else {
        return failed(2, "fake: no such host");
    };
    if disk.running {
        return ok(format!("running {}\n", disk.pid));
    }
    let Some(binary) = disk.binary else {
        return failed(3, "etcd binary not found or not executable");
    };
    disk.pid += 1;
    let pid = disk.pid;
    let has_data = disk.data;
    let exits = |w: &mut World, why: String| {
        if let Some(d) = w.hosts.get_mut(address) {
            d.running = false;
            d.log.push(why);
        }
        ok(format!("started {pid}\n"))
    };
    let Some((text, _)) = disk.files.get(Path::new(&cfg)).cloned() else {
        return exits(w, format!("open {cfg}: no such file or directory"));
    };
    let value = |k: &str| crate::hostfiles::read_value(&text, k).unwrap_or_default();
    let (name, peer, client) = (
        value("name"),
        Endpoint::parse(&value("initial-advertise-peer-urls")),
        Endpoint::parse(&value("advertise-client-urls")),
    );
    if w.members.is_empty() && value("initial-cluster-state") == "new" && !has_data {
        // Bootstrap: every member of initial-cluster exists, none started.
        w.cluster_id = 0xc1;
        for pair in value("initial-cluster").split(',') {
            let Some((n, url)) = pair.split_once('=') else {
                continue;
            };
            let id = w.new_id();
            w.members.push(FakeMember {
                id,
                name: n.to_owned(),
                peer_urls: Endpoint::parse(url).into_iter().collect(),
                client_urls: Vec::new(),
                learner: false,
                host: None,
                version: None,
                applied: 0,
                storage: None,
            });
        }
    }
    let found = w.members.iter().position(|m| m.name == name).or_else(|| {
        w.members.iter().position(|m| {
            m.name.is_empty() && peer.as_ref().is_some_and(|p| m.peer_urls.contains(p))
        })
    });
    let Some(i) = found else {
        return exits(
            w,
            format!("member {name} is not in the cluster's member list; it exits"),
        );
    };
    // etcd refuses data written by a newer minor version (the storage
    // version a downgrade lowers first).
    if let Some(s) = w.members[i].storage
        && s > binary.minor()
    {
        return exits(
            w,
            format!("etcd {binary} will not start on a data dir of storage version {s}"),
        );
    }
    let stall = w.stall_on_start.remove(&name);
    let m = &mut w.members[i];
    m.name = name;
    m.client_urls = client.into_iter().collect();
    m.host = Some(address.to_owned());
    m.version = Some(binary);
    if m.storage.is_none() && (binary.major, binary.minor) >= (3, 6) {
        m.storage = Some(binary.minor());
    }
    if let Some(d) = w.hosts.get_mut(address) {
        d.running = true;
        d.stalled = stall;
        d.data = true;
        d.started_config = Some(sha256_hex(text.as_bytes()));
    }
    w.settle();
    w.monitor();
    ok(format!("started {pid}\n"))
}

#[async_trait]
impl Host for FakeHost {
    fn label(&self) -> String {
        self.address.clone()
    }

    async fn run(&self, script: &Script) -> Result<CommandOutput, HostError> {
        let failing = {
            let mut w = self.cluster.world();
            w.calls
                .push(format!("host {}: {}", self.address, script.what));
            let mut failing = false;
            for hook in &mut w.fail {
                if script.what.starts_with(&hook.prefix) {
                    hook.seen += 1;
                    failing |= hook.seen == hook.nth;
                }
            }
            failing
        };
        if failing {
            self.cluster.log(format!(
                "host {}: {} failed (test hook)",
                self.address, script.what
            ));
            return Ok(failed(
                1,
                &format!("fake: {} failed (test hook)", script.what),
            ));
        }
        match Effect::of(script) {
            Some(effect) => Ok(self.apply(effect, script)),
            None => Ok(failed(
                127,
                &format!("fake host: no model for the script \"{}\"", script.what),
            )),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn the_probe_paths_are_read_from_the_script() {
        let src = "if [ -f /etc/etcd/etcd.conf.yml ]; then printf 'file\\t0\\t'; base64 -w0 < /etc/etcd/etcd.conf.yml; echo; else printf 'file\\t0\\t-\\n'; fi\n\
if [ -f '/a b/ca.crt' ]; then printf 'cert\\t0\\t'; base64 -w0 < '/a b/ca.crt'; echo; fi\n\
if [ -f /k ]; then printf 'key\\t1\\t%s\\n' \"$(stat -c %a /k)\"; fi\n";
        assert_eq!(
            probed_paths(src),
            [
                (
                    "file".into(),
                    "0".into(),
                    PathBuf::from("/etc/etcd/etcd.conf.yml")
                ),
                ("cert".into(), "0".into(), PathBuf::from("/a b/ca.crt")),
                ("key".into(), "1".into(), PathBuf::from("/k")),
            ]
        );
    }

    #[test]
    fn only_the_systemd_probe_gets_a_unit_fact() {
        let systemd = crate::service::systemd::Systemd;
        let process = crate::service::process::Process;
        let d = crate::config::parse(
            "etcdfile.toml",
            "[cluster]\nname = \"main\"\n\n[hosts]\ntransport = \"ssh\"\nservice = \"systemd\"\n\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n".to_owned(),
            &crate::config::Context::default(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
        .desired;
        let m = &d.members[0];
        use crate::service::Service as _;
        let mut disk = FakeDisk::default();
        let out = probe_output(&disk, &systemd.probe_fragment(m));
        assert!(out.contains("unit\tinactive\tdead\t\tno\n"), "{out}");
        assert!(!probe_output(&disk, &process.probe_fragment(m)).contains("unit\t"));
        disk.running = true;
        let unit = crate::service::systemd::unit_path();
        disk.files.insert(unit, (String::new(), 0o644));
        let out = probe_output(&disk, &systemd.probe_fragment(m));
        assert!(
            out.contains("unit\tactive\trunning\tenabled\tno\n"),
            "{out}"
        );
    }

    #[test]
    fn scripts_are_recognised_by_their_label() {
        let s = |what: &str| Effect::of(&Script::new(what, ""));
        assert_eq!(s("start etcd-1"), Some(Effect::Start));
        assert_eq!(s("check etcd-1"), Some(Effect::CheckAlive));
        assert_eq!(
            s("write /etc/etcd/etcd.conf.yml"),
            Some(Effect::Write(PathBuf::from("/etc/etcd/etcd.conf.yml")))
        );
        // A version check is not the liveness check.
        assert_eq!(s("check etcd-1 runs etcd 3.5.17"), None);
        assert_eq!(s("upload etcd 3.5.17 to /usr/local/bin/etcd-3.5.17"), None);
    }
}
