//! One probe script per member host: owned files, data dir, service, binary, ports.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Desired, DesiredMember};
use crate::io::{Host, Script, shell_quote};
use crate::model::EtcdVersion;
use crate::service;

use super::{Binary, DataDir, HostCerts, HostFacts, HostState};

/// The probe script for one member.
pub fn probe_script(d: &Desired, m: &DesiredMember) -> Script {
    let mut s = String::new();
    for (i, p) in super::owned_paths(d, m).iter().enumerate() {
        let p = shell_quote(&p.display().to_string());
        s.push_str(&format!(
            "if [ -f {p} ]; then printf 'file\\t{i}\\t'; base64 -w0 < {p}; echo; else printf 'file\\t{i}\\t-\\n'; fi\n"
        ));
    }
    let data = shell_quote(&m.data_dir.display().to_string());
    s.push_str(&format!(
        "d={data}\nif [ -d \"$d/member/wal\" ] || [ -d \"$d/member/snap\" ]; then echo 'data member'; \
elif [ ! -e \"$d\" ]; then echo 'data absent'; elif [ -z \"$(ls -A \"$d\" 2>/dev/null | grep -v '^member\\.removed-')\" ]; then echo 'data empty'; \
else echo 'data other'; fi\n"
    ));
    s.push_str(&service::probe_fragment(d, m));
    let bin = shell_quote(&d.etcd.binary.display().to_string());
    s.push_str(&format!(
        "if [ -x {bin} ]; then printf 'binary ok %s\\n' \"$({bin} --version 2>&1 | head -n 1)\"; else echo 'binary missing'; fi\n"
    ));
    if d.etcd.binary_source.is_some() {
        // Releases etcdplan installed next to the binary, by version and hash.
        s.push_str(&format!(
            "for f in {bin}-[0-9]*; do case \"$f\" in *.etcdplan*) continue;; esac; [ -f \"$f\" ] || continue; \
printf 'release\\t%s\\t%s\\n' \"${{f##*-}}\" \"$(sha256sum < \"$f\" | cut -d' ' -f1)\"; done\n"
        ));
    }
    if d.tls.any() {
        let t = m.tls_paths();
        for (i, p) in [&t.ca, &t.server_cert, &t.peer_cert]
            .into_iter()
            .enumerate()
        {
            let p = shell_quote(&p.display().to_string());
            s.push_str(&format!(
                "if [ -f {p} ]; then printf 'cert\\t{i}\\t'; base64 -w0 < {p}; echo; fi\n"
            ));
        }
        for (i, p) in [&t.server_key, &t.peer_key].into_iter().enumerate() {
            let p = shell_quote(&p.display().to_string());
            s.push_str(&format!(
                "if [ -f {p} ]; then printf 'key\\t{i}\\t%s\\n' \"$(stat -c %a {p})\"; fi\n"
            ));
        }
    }
    let (c, p) = (m.client_port, m.peer_port);
    s.push_str(&format!(
        "if command -v ss >/dev/null 2>&1; then echo 'listen-begin'; ss -Hltn '( sport = :{c} or sport = :{p} )' 2>/dev/null | awk '{{print \"listen \" $4}}'; fi\n"
    ));
    Script::new(format!("probe {}", m.name), s).timeout(Duration::from_secs(15))
}

/// Parses the probe's output.
pub fn parse_probe(d: &Desired, m: &DesiredMember, out: &str) -> Result<HostFacts, String> {
    let paths = super::owned_paths(d, m);
    let mut files: Vec<(PathBuf, Option<String>)> =
        paths.iter().map(|p| (p.clone(), None)).collect();
    let (mut data, mut service, mut binary, mut listening) = (None, None, None, None);
    let mut started_config = None;
    let mut started_ca = None;
    let mut problems = Vec::new();
    let mut certs = HostCerts::default();
    let mut installed = std::collections::BTreeMap::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("file\t") {
            let (idx, content) = rest.split_once('\t').ok_or("bad file line")?;
            let i: usize = idx.parse().map_err(|_| "bad file index")?;
            if content != "-" {
                let bytes =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, content)
                        .map_err(|_| "bad base64 in probe")?;
                if let Some(slot) = files.get_mut(i) {
                    slot.1 = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        } else if let Some(rest) = line.strip_prefix("cert\t") {
            let (idx, content) = rest.split_once('\t').ok_or("bad cert line")?;
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, content)
                .map_err(|_| "bad base64 in probe")?;
            let text = Some(String::from_utf8_lossy(&bytes).into_owned());
            match idx {
                "0" => certs.ca = text,
                "1" => certs.server = text,
                "2" => certs.peer = text,
                _ => return Err("bad cert index".into()),
            }
        } else if let Some(content) = line.strip_prefix("started-ca\t") {
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, content)
                .map_err(|_| "bad base64 in probe")?;
            started_ca = Some(String::from_utf8_lossy(&bytes).into_owned());
        } else if let Some(rest) = line.strip_prefix("key\t") {
            let (idx, mode) = rest.split_once('\t').ok_or("bad key line")?;
            let mode = u32::from_str_radix(mode.trim(), 8).map_err(|_| "bad key mode")?;
            match idx {
                "0" => certs.server_key_mode = Some(mode),
                "1" => certs.peer_key_mode = Some(mode),
                _ => return Err("bad key index".into()),
            }
        } else if let Some(rest) = line.strip_prefix("data ") {
            data = Some(match rest {
                "member" => DataDir::Member,
                "absent" => DataDir::Absent,
                "empty" => DataDir::Empty,
                _ => DataDir::Other,
            });
        } else if let Some(h) = service::parse_started_config(line) {
            started_config = h;
        } else if line.starts_with("service ") {
            service = service::parse_probe(line);
        } else if let Some(rest) = line.strip_prefix("binary ") {
            binary = Some(match rest.strip_prefix("ok ") {
                Some(v) => Binary::Found {
                    version: EtcdVersion::from_version_output(v),
                },
                None => Binary::Missing,
            });
        } else if let Some(rest) = line.strip_prefix("release\t") {
            let (v, sha) = rest.split_once('\t').ok_or("bad release line")?;
            if let Some(v) = EtcdVersion::parse(v) {
                installed.insert(v, sha.trim().to_owned());
            }
        } else if let Some(p) = line.strip_prefix("problem ") {
            problems.push(p.to_owned());
        } else if line == "listen-begin" {
            listening = Some(Vec::new());
        } else if let Some(addr) = line.strip_prefix("listen ") {
            listening.get_or_insert_with(Vec::new).push(addr.to_owned());
        }
    }
    Ok(HostFacts {
        files,
        data: data.ok_or("probe printed no data line")?,
        service: service.ok_or("probe printed no service line")?,
        started_config,
        binary: binary.ok_or("probe printed no binary line")?,
        listening,
        problems,
        certs,
        started_ca,
        installed,
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
