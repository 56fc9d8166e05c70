//! `etcdplan import`: reads a running cluster (the etcd API, then each
//! member's host over ssh or here) and writes the etcdfile that describes it
//! as it runs. Changes nothing on the hosts or in the cluster.
//!
//! On each host it reads, in two round trips: the etcd listening on the
//! member's client port (its command line, environment and user from
//! `/proc`), the systemd unit whose main process it is (unit file and
//! drop-ins), then the environment files that unit names, the file
//! `--config-file`/`ETCD_CONFIG_FILE` names, and `/etc/etcd/etcd.conf` and
//! `/etc/default/etcd`. The core's [`crate::import::resolve`] applies etcd's
//! precedence; [`crate::import::etcdfile::render`] writes the file.

use std::path::PathBuf;
use std::time::Duration;

use super::{Cli, CliError, Outcome};
use crate::import::etcdfile::{ImportedAuth, ImportedMember, Reach};
use crate::import::systemd::{SpecifierContext, Unit, UnitText};
use crate::import::{EnvironmentFileText, FileText, HostSources, ProcessSources, UnitSources};
use crate::io::{EtcdApi as _, EtcdClient, Host, LocalHost, Script, SshHost, SshOptions};
use crate::model::{Address, Endpoint, Port};

/// `import`'s own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Client URLs of the cluster's members, comma-separated.
    #[arg(long, value_delimiter = ',', required = true, value_name = "URL,...")]
    pub endpoints: Vec<String>,
    /// The cluster's name in the etcdfile (default: its cluster token when
    /// that is a valid name, else "main").
    #[arg(long)]
    pub name: Option<String>,
    /// Write the etcdfile here (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite --out when it exists.
    #[arg(long)]
    pub force: bool,
    /// The members run on this machine (transport "local").
    #[arg(long)]
    pub local: bool,
    /// ssh user on the hosts (default root; others need passwordless sudo).
    #[arg(long, value_name = "USER")]
    pub ssh_user: Option<String>,
    /// ssh port.
    #[arg(long, value_name = "N")]
    pub ssh_port: Option<u16>,
    /// ssh private key.
    #[arg(long, value_name = "FILE")]
    pub ssh_identity: Option<PathBuf>,
    /// known_hosts file.
    #[arg(long, value_name = "FILE")]
    pub ssh_known_hosts: Option<PathBuf>,
}

fn refused(why: impl Into<String>) -> CliError {
    CliError::Import(why.into())
}

/// Runs `etcdplan import`.
pub async fn import(
    cli: &Cli,
    args: &ImportArgs,
    out: &mut impl std::io::Write,
) -> Result<Outcome, CliError> {
    if let Some(p) = &args.out
        && p.exists()
        && !args.force
    {
        return Err(refused(format!(
            "{} exists; pass --force to overwrite it",
            p.display()
        )));
    }
    let endpoints: Vec<Endpoint> = args
        .endpoints
        .iter()
        .map(|e| Endpoint::parse(e).ok_or_else(|| refused(format!("{e:?} is not a URL"))))
        .collect::<Result<_, _>>()?;
    let mut client = client(cli)?;
    if let Some((user, password)) = super::edges::given_login(cli).map_err(refused)? {
        client = client.with_user(user, password.expose().to_owned());
    }

    // The cluster through the API.
    let mut listed = None;
    let mut tried = Vec::new();
    for ep in &endpoints {
        match client.member_list(ep).await {
            Ok(m) => {
                listed = Some((m, ep));
                break;
            }
            Err(e) => tried.push(format!("{ep}: {e}")),
        }
    }
    let Some((members, answered)) = listed else {
        return Err(refused(format!(
            "no endpoint answered MemberList: {}",
            tried.join("; ")
        )));
    };
    let mut reasons = Vec::new();
    let mut found = Vec::new();
    let reach_opts = ssh_options(cli, args);
    for am in &members {
        let Some(name) = am.name.member_name().map(|n| n.to_string()) else {
            reasons.push(format!("member {} has not started (a learner added but never run?): finish or undo that join first", am.id));
            continue;
        };
        if am.is_learner {
            reasons.push(format!(
                "{name} is a learner: finish its join (promote it) first"
            ));
            continue;
        }
        let (Some(peer), Some(client_url)) = (am.peer_urls.first(), am.client_urls.first()) else {
            reasons.push(format!("{name} advertises no peer or client URL"));
            continue;
        };
        let version = match client.status(client_url).await {
            Ok(s) => s.version,
            Err(e) => {
                reasons.push(format!("{name}: Status through {client_url}: {e}"));
                continue;
            }
        };
        let address = peer.host.to_string();
        let host: Box<dyn Host> = if args.local {
            Box::new(LocalHost)
        } else {
            let a = Address::parse(&address).map_err(|e| refused(format!("{name}: {e}")))?;
            let h = SshHost::connect(&a, &reach_opts).await;
            if let Some(f) = h.failure() {
                reasons.push(format!("{name}: {f}"));
                continue;
            }
            Box::new(h)
        };
        match read_host(host.as_ref(), &address, client_url).await {
            Ok((src, user)) => {
                let settings = crate::import::resolve(&src, version.map(|v| v.minor()));
                found.push(ImportedMember {
                    name,
                    address,
                    settings,
                    version,
                    user,
                });
            }
            Err(why) => reasons.push(format!("{name} on {address}: {why}")),
        }
        host.close().await;
    }
    if !reasons.is_empty() {
        return Err(refused(reasons.join("\n")));
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let name = args.name.clone().unwrap_or_else(|| {
        found
            .first()
            .and_then(|m| m.settings.get("initial-cluster-token"))
            .map(|t| t.to_string())
            .filter(|t| crate::model::MemberName::parse(t).is_ok())
            .unwrap_or_else(|| "main".to_owned())
    });
    let reach = Reach {
        local: args.local,
        ssh_user: args.ssh_user.clone(),
        ssh_port: args.ssh_port,
        ssh_identity: args.ssh_identity.as_ref().map(|p| p.display().to_string()),
        ssh_known_hosts: args
            .ssh_known_hosts
            .as_ref()
            .map(|p| p.display().to_string()),
        ca_file: cli.cacert.as_ref().map(|p| absolute(p)),
        client_cert: cli
            .cert
            .as_ref()
            .zip(cli.key.as_ref())
            .map(|(c, k)| (absolute(c), absolute(k))),
    };
    let (auth, auth_note) = read_auth(
        &client,
        answered,
        cli.user
            .as_deref()
            .map(|u| u.split(':').next().unwrap_or(u)),
    )
    .await?;
    let mut text = crate::import::etcdfile::render_with_auth(&name, &found, &reach, auth.as_ref())
        .map_err(|r| refused(r.join("\n")))?;
    if let Some(note) = auth_note {
        // No password goes into the file, only where to set one.
        text = text.replacen("\n", &format!("\n# Note: {note}\n"), 1);
    }
    // What import writes must be an etcdfile etcdplan accepts.
    let ctx = crate::config::Context {
        base_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        home: std::env::var_os("HOME").map(PathBuf::from),
        file_hash: crate::config::hash(&text),
        ..Default::default()
    };
    if let Err(e) = crate::config::parse("etcdfile.toml", text.clone(), &ctx) {
        return Err(refused(format!(
            "the etcdfile import would write does not validate ({e:?}):\n{text}"
        )));
    }
    match &args.out {
        Some(p) => {
            std::fs::write(p, &text).map_err(|e| refused(format!("{}: {e}", p.display())))?;
            eprintln!(
                "Wrote {} ({} members); `etcdplan plan -f {}` shows the takeover",
                p.display(),
                found.len(),
                p.display()
            );
        }
        None => out.write_all(text.as_bytes())?,
    }
    Ok(Outcome::Ok)
}

/// etcd's auth store through `endpoint`, when auth is on; with a note for
/// the file's head when there is something to say. Auth on with a store that
/// cannot be read is refused: the file would leave out who may talk to the
/// cluster. When etcd cannot say whether auth is on, no `[auth]` is written
/// (etcdplan then leaves auth as it finds it), and the note says so.
async fn read_auth(
    client: &EtcdClient,
    endpoint: &Endpoint,
    user: Option<&str>,
) -> Result<(Option<ImportedAuth>, Option<String>), CliError> {
    let enabled = match client.auth_enabled(endpoint).await {
        Ok(on) => on,
        Err(e) => {
            return Ok((
                None,
                Some(format!(
                    "etcd did not say whether auth is on ({e}); no [auth] is written, so etcdplan leaves auth as it finds it"
                )),
            ));
        }
    };
    if !enabled {
        let note = user.map(|u| {
            format!("read as etcd user {u:?}, but auth is off; no [auth] is written, so etcdplan leaves auth as it finds it")
        });
        return Ok((None, note));
    }
    let store = async {
        let users = client.auth_users(endpoint).await?;
        let roles = client.auth_roles(endpoint).await?;
        Ok::<_, crate::io::EtcdError>(ImportedAuth { users, roles })
    };
    match store.await {
        Ok(a) => Ok((Some(a), None)),
        Err(e) => Err(refused(format!(
            "auth is on, and its users and roles cannot be read through {endpoint} ({e}): pass --user root with its password in ETCDCTL_PASSWORD (or a certificate with CN root)"
        ))),
    }
}

/// The etcd client, with `--cacert`/`--cert`/`--key` when given.
fn client(cli: &Cli) -> Result<EtcdClient, CliError> {
    let c = super::edges::bare_client(cli);
    let Some(ca) = &cli.cacert else {
        return Ok(c);
    };
    let identities = match super::edges::given_identity(cli)? {
        Some((cert, key)) => vec![crate::io::ClientIdentity {
            cert_pem: super::edges::read_pem(&cert)?,
            key_pem: super::edges::read_pem(&key)?,
        }],
        None => Vec::new(),
    };
    Ok(c.with_tls(crate::io::ClientTls {
        ca_pem: super::edges::read_pem(ca)?,
        identities,
    }))
}

fn ssh_options(cli: &Cli, args: &ImportArgs) -> SshOptions {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    SshOptions {
        user: args.ssh_user.clone().unwrap_or_else(|| "root".into()),
        port: args
            .ssh_port
            .and_then(Port::new)
            .unwrap_or_else(|| Port::new(22).unwrap_or_else(|| unreachable!())),
        identity: args
            .ssh_identity
            .clone()
            .unwrap_or_else(|| home.join(".ssh/id_ed25519")),
        known_hosts: args
            .ssh_known_hosts
            .clone()
            .unwrap_or_else(|| home.join(".ssh/known_hosts")),
        accept_new: cli.accept_new_host_keys,
        connect_timeout: cli.ssh_timeout.max(Duration::from_secs(1)),
        persist: super::edges::persist(cli),
    }
}

/// A path on this machine as the etcdfile should name it: absolute, so the
/// file works wherever it is moved.
fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_owned())
        .display()
        .to_string()
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s.trim())
        .map_err(|e| format!("bad base64: {e}"))
}

fn text_of(s: &str) -> Result<String, String> {
    String::from_utf8(b64(s)?).map_err(|e| format!("not UTF-8: {e}"))
}

/// Reads what one member's etcd runs with; also the user it runs as.
async fn read_host(
    host: &dyn Host,
    address: &str,
    client_url: &Endpoint,
) -> Result<(HostSources, Option<String>), String> {
    let port = client_url.port;
    let first = format!(
        "lp=$(ss -Hltnp 'sport = :{port}' 2>/dev/null | awk -v a='{address}:{port}' -v b='[{address}]:{port}' '$4==a || $4==b || $4 ~ /^(\\*|0\\.0\\.0\\.0|\\[::\\]):/' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -un | while read -r p; do case \"$(cat /proc/$p/comm 2>/dev/null)\" in etcd*) echo \"$p\";; esac; done | head -n 1)\n\
if [ -z \"$lp\" ]; then echo none; exit 0; fi\n\
printf 'cmdline\\t%s\\n' \"$(base64 -w0 < /proc/$lp/cmdline)\"\n\
printf 'environ\\t%s\\n' \"$(base64 -w0 < /proc/$lp/environ)\"\n\
printf 'user\\t%s\\n' \"$(stat -c %U /proc/$lp)\"\n\
printf 'hostname\\t%s\\n' \"$(hostname)\"\n\
{unit_of_lp}\
if [ -n \"$lu\" ]; then\n\
  f=$(systemctl show -p FragmentPath --value \"$lu\")\n\
  printf 'unit\\t%s\\t%s\\t%s\\n' \"$lu\" \"$f\" \"$(base64 -w0 < \"$f\")\"\n\
  for d in $(systemctl show -p DropInPaths --value \"$lu\"); do printf 'dropin\\t%s\\t%s\\n' \"$d\" \"$(base64 -w0 < \"$d\")\"; done\n\
fi\n",
        unit_of_lp = crate::observe::UNIT_OF_LP,
    );
    let said = host
        .run(&Script::new("read the running etcd", first).timeout(Duration::from_secs(20)))
        .await
        .map_err(|e| e.to_string())?;
    if !said.success() {
        return Err(format!("reading the running etcd failed: {}", said.tail()));
    }
    if said.stdout.trim() == "none" {
        return Err(format!("no etcd listens on port {port} there"));
    }
    let (mut cmdline, mut environ, mut user, mut hostname) =
        (Vec::new(), Vec::new(), None, String::new());
    let mut unit: Option<(String, UnitText)> = None;
    let mut dropins = Vec::new();
    for line in said.stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["cmdline", v] => {
                cmdline = String::from_utf8_lossy(&b64(v)?)
                    .split('\0')
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            ["environ", v] => {
                environ = String::from_utf8_lossy(&b64(v)?)
                    .split('\0')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
            }
            ["user", u] => user = Some((*u).to_owned()),
            ["hostname", h] => hostname = (*h).to_owned(),
            ["unit", name, path, text] => {
                unit = Some((
                    (*name).to_owned(),
                    UnitText {
                        path: (*path).to_owned(),
                        text: text_of(text)?,
                    },
                ));
            }
            ["dropin", path, text] => dropins.push(UnitText {
                path: (*path).to_owned(),
                text: text_of(text)?,
            }),
            _ => {}
        }
    }
    // Second round: the files the unit and the command line name.
    let mut wanted: Vec<String> = vec!["/etc/etcd/etcd.conf".into(), "/etc/default/etcd".into()];
    let parsed = match &unit {
        Some((name, text)) => {
            let ctx = SpecifierContext {
                unit: name.clone(),
                hostname: hostname.clone(),
            };
            let u = Unit::parse(text, &dropins, &ctx).map_err(|e| format!("{name}: {e}"))?;
            wanted.extend(u.environment_files.iter().map(|e| e.path.clone()));
            Some(u)
        }
        None => None,
    };
    let config_file = crate::import::config_file_path(&cmdline, &environ);
    wanted.extend(config_file.clone());
    wanted.sort();
    wanted.dedup();
    let mut script = String::new();
    for p in &wanted {
        let q = crate::io::shell_quote(p);
        script.push_str(&format!(
            "if [ -f {q} ]; then printf 'file\\t%s\\t%s\\n' {q} \"$(base64 -w0 < {q})\"; else printf 'file\\t%s\\t-\\n' {q}; fi\n"
        ));
    }
    let files = host
        .run(&Script::new("read etcd's settings files", script).timeout(Duration::from_secs(20)))
        .await
        .map_err(|e| e.to_string())?;
    let mut texts: std::collections::BTreeMap<String, Option<String>> = Default::default();
    for line in files.stdout.lines() {
        if let ["file", path, body] = line.split('\t').collect::<Vec<_>>().as_slice() {
            let text = if *body == "-" {
                None
            } else {
                Some(text_of(body)?)
            };
            texts.insert((*path).to_owned(), text);
        }
    }
    let file = |p: &str| -> Option<FileText> {
        texts.get(p).cloned().flatten().map(|text| FileText {
            path: p.to_owned(),
            text,
        })
    };
    let unit_sources = match (unit, parsed) {
        (Some((name, text)), Some(u)) => Some(UnitSources {
            name,
            unit: text,
            dropins,
            environment_files: u
                .environment_files
                .iter()
                .map(|e| EnvironmentFileText {
                    path: e.path.clone(),
                    text: texts.get(&e.path).cloned().flatten(),
                })
                .collect(),
        }),
        _ => None,
    };
    let named_by_unit: Vec<String> = unit_sources
        .as_ref()
        .map(|u| u.environment_files.iter().map(|e| e.path.clone()).collect())
        .unwrap_or_default();
    let other_env_files = ["/etc/etcd/etcd.conf", "/etc/default/etcd"]
        .iter()
        .filter(|p| !named_by_unit.iter().any(|n| n == *p))
        .filter_map(|p| file(p))
        .collect();
    let src = HostSources {
        host: address.to_owned(),
        hostname,
        process: Some(ProcessSources { cmdline, environ }),
        unit: unit_sources,
        config_file: config_file.as_deref().and_then(file),
        other_env_files,
    };
    Ok((src, user))
}
