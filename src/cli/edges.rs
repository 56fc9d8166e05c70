//! The real edges for a command: ssh or local host connections, opened in
//! parallel under a deadline; the etcd client with etcdplan's own identity
//! from the CA; and the observation of the cluster through both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::errors::pki_error;
use super::{Cli, CliError, file_label, load};
use crate::config::{AuthName, Desired, Loaded, Login, Secret, Secrets, Transport};
use crate::io::{EtcdClient, HostMap, LocalHost, SshHost, SshOptions, Timeouts};
use crate::model;
use crate::observe::{self, Live};

/// The member hosts for the file's transport: one connection per address,
/// all opened in parallel under a deadline.
pub async fn hosts(cli: &Cli, d: &Desired) -> HostMap {
    let mut map = match d.hosts.transport {
        Transport::Local => return HostMap::everywhere(Arc::new(LocalHost)),
        Transport::Ssh => HostMap::default(),
    };
    let addresses: Vec<model::Address> = d.members.iter().map(|m| m.address.clone()).collect();
    connect(cli, d, &mut map, addresses).await;
    map
}

/// The member hosts for a command that only reads: ssh hosts that connect
/// on their first command, so the etcd calls and each host's probe start
/// without waiting for every ssh handshake (a failed connection shows in
/// the probe's result).
pub(super) fn hosts_deferred(cli: &Cli, d: &Desired) -> HostMap {
    if d.hosts.transport == Transport::Local {
        return HostMap::everywhere(Arc::new(LocalHost));
    }
    let opts = ssh_options(cli, d);
    let mut map = HostMap::default();
    for m in &d.members {
        if !map.has(&m.address) {
            map.insert(
                m.address.clone(),
                Arc::new(SshHost::deferred(&m.address, &opts)),
            );
        }
    }
    map
}

/// How to reach the file's hosts over ssh, with the command line's deadline
/// and persistence.
fn ssh_options(cli: &Cli, d: &Desired) -> SshOptions {
    SshOptions {
        user: d.hosts.ssh.user.clone(),
        port: d.hosts.ssh.port,
        identity: d.hosts.ssh.identity.clone(),
        known_hosts: d.hosts.ssh.known_hosts.clone(),
        accept_new: cli.accept_new_host_keys,
        connect_timeout: cli.ssh_timeout.max(Duration::from_secs(1)),
        persist: persist(cli),
    }
}

/// Opens ssh connections to the addresses the map lacks, all in parallel.
pub(super) async fn connect(
    cli: &Cli,
    d: &Desired,
    map: &mut HostMap,
    mut addresses: Vec<model::Address>,
) {
    addresses.sort();
    addresses.dedup();
    addresses.retain(|a| !map.has(a));
    if addresses.is_empty() {
        return;
    }
    let opts = ssh_options(cli, d);
    let started = Instant::now();
    let connected =
        futures::future::join_all(addresses.iter().map(|a| SshHost::connect(a, &opts))).await;
    tracing::debug!(
        "ssh: {} connections in {:.3}s",
        connected.len(),
        started.elapsed().as_secs_f64()
    );
    for (a, h) in addresses.into_iter().zip(connected) {
        if let Some(f) = h.failure() {
            tracing::info!("{f}");
        }
        map.insert(a, Arc::new(h));
    }
}

/// Where and how long ssh masters persist after the run (`--ssh-persist`):
/// None when it is 0, or when the runtime folder cannot be used safely
/// (said once; the run then closes its connections as without persistence).
pub(super) fn persist(cli: &Cli) -> Option<(crate::io::persist::RuntimeDir, Duration)> {
    if cli.ssh_persist.is_zero() {
        return None;
    }
    match crate::io::persist::RuntimeDir::open() {
        Ok(dir) => Some((dir, cli.ssh_persist)),
        Err(e) => {
            eprintln!("warning: {e}; ssh connections are closed at the end of this run");
            None
        }
    }
}

/// Closes every host connection once.
pub(super) async fn close(hosts: &HostMap) {
    let started = Instant::now();
    hosts.close().await;
    tracing::debug!("hosts closed in {:.3}s", started.elapsed().as_secs_f64());
}

pub(super) async fn observe_live(
    cli: &Cli,
    d: &Desired,
    hosts: &HostMap,
    etcd: &EtcdClient,
    chatty: bool,
) -> Live {
    let t = Instant::now();
    let secrets = Secrets::read(d);
    if !chatty {
        return observe::observe(d, hosts, etcd, &secrets).await;
    }
    eprintln!(
        "Reading {} … {} member{} desired",
        file_label(&cli.file),
        d.members.len(),
        if d.members.len() == 1 { "" } else { "s" }
    );
    let live = observe::observe(d, hosts, etcd, &secrets).await;
    let what = match &live.cluster {
        Some(c) => {
            let leader = c
                .leader()
                .and_then(|id| c.members.iter().find(|m| m.id == id))
                .map_or("no leader".to_owned(), |m| format!("leader {}", m.name));
            format!("cluster {} ({} members, {leader})", c.id, c.members.len())
        }
        None => "no member answers".to_owned(),
    };
    eprintln!("Observing {what} … {:.2}s", t.elapsed().as_secs_f64());
    live
}

/// Loads the etcdfile and observes the cluster, for commands that change
/// nothing; `hashes` adds the voters' HashKV comparison (`status`).
pub(super) async fn read_only(cli: &Cli, hashes: bool) -> Result<(Loaded, Live), CliError> {
    let loaded = load(cli)?;
    let hosts = hosts_deferred(cli, &loaded.desired);
    let etcd = etcd_client(cli, &loaded.desired);
    let mut live = observe_live(cli, &loaded.desired, &hosts, &etcd, true).await;
    if hashes {
        crate::observe::check_hashes(&loaded.desired, &etcd, &mut live).await;
    }
    close(&hosts).await;
    Ok((loaded, live))
}

/// The etcd client: over https it trusts the file's CA (or `--cacert`) and
/// presents the operator's client certificate when one is given, else a
/// short-lived certificate etcdplan issues from its CA for this run (kept in
/// memory only). Without a CA yet there is nothing serving https to talk to.
pub(super) fn etcd_client(cli: &Cli, d: &Desired) -> EtcdClient {
    let mut client = bare_client(cli);
    match etcd_login(cli, d) {
        Ok(Some((user, password))) => {
            client = client
                .with_user(user, password.expose().to_owned())
                .going_on_when_login_refused();
        }
        Ok(None) => {}
        Err(e) => eprintln!("warning: {e}: etcdplan connects without etcd credentials"),
    }
    if !d.tls.any() {
        return client;
    }
    let auth = if d.tls.external().is_some() {
        Ok(None)
    } else {
        crate::pki::Authority::load(&d.tls.ca_dir, crate::pki::now())
    };
    let tls = match auth {
        Ok(auth) => client_tls(cli, d, auth.as_ref()),
        Err(e) => Err(pki_error(e)),
    };
    match tls {
        Ok(Some(tls)) => client.with_tls(tls),
        Ok(None) => client,
        Err(e) => {
            eprintln!("warning: {e}: etcdplan cannot talk to members over https");
            client
        }
    }
}

/// What etcdplan presents to members: the CA bundle and client certificate
/// the operator gives (`--cacert`/`--cert`/`--key`, their `ETCDCTL_*`
/// variables, then `[client]`), each part falling back to the etcdfile's
/// issuer: the external `ca_file` (and no certificate), or etcdplan's CA in
/// `auth` (and certificates it issues for this run). None: no CA to trust yet.
pub(super) fn client_tls(
    cli: &Cli,
    d: &Desired,
    auth: Option<&crate::pki::Authority>,
) -> Result<Option<crate::io::ClientTls>, CliError> {
    let given = given_identity(cli)?.or_else(|| d.client.cert_and_key.clone());
    let identities = match &given {
        Some((cert, key)) => vec![crate::io::ClientIdentity {
            cert_pem: read_pem(cert)?,
            key_pem: read_pem(key)?,
        }],
        None => Vec::new(),
    };
    let cacert = cli.cacert.clone().or_else(|| d.client.cacert.clone());
    let ca_pem = match (&cacert, d.tls.external(), auth) {
        (Some(f), _, _) => read_pem(f)?,
        (None, Some(x), _) => read_pem(&x.ca_file)?,
        (None, None, Some(auth)) => auth.trust_bundle(),
        (None, None, None) => return Ok(None),
    };
    if given.is_some() || d.tls.external().is_some() {
        return Ok(Some(crate::io::ClientTls { ca_pem, identities }));
    }
    match auth {
        Some(auth) => {
            let mut own = client_identity(auth, own_cn(d))?;
            own.ca_pem = ca_pem;
            Ok(Some(own))
        }
        None => Ok(None),
    }
}

/// The etcd client with the command line's deadlines and no TLS yet.
pub(super) fn bare_client(cli: &Cli) -> EtcdClient {
    EtcdClient::new(Timeouts {
        connect: Duration::from_secs(2),
        request: cli.etcd_timeout.max(Duration::from_secs(1)),
    })
}

/// A PEM file on this machine, or the error naming it.
pub(super) fn read_pem(p: &std::path::Path) -> Result<String, CliError> {
    std::fs::read_to_string(p).map_err(|e| {
        pki_error(crate::pki::PkiError::Unreadable {
            path: p.to_owned(),
            message: e.to_string(),
        })
    })
}

/// The client certificate and key the operator gives (`--cert`/`--key` or
/// their `ETCDCTL_*` variables); one without the other is an error.
pub(super) fn given_identity(
    cli: &Cli,
) -> Result<Option<(std::path::PathBuf, std::path::PathBuf)>, CliError> {
    match (&cli.cert, &cli.key) {
        (Some(c), Some(k)) => Ok(Some((c.clone(), k.clone()))),
        (Some(_), None) => Err(pki_error(crate::pki::PkiError::HalfIdentity {
            given: "--cert (ETCDCTL_CERT)",
            missing: "--key (ETCDCTL_KEY)",
        })),
        (None, Some(_)) => Err(pki_error(crate::pki::PkiError::HalfIdentity {
            given: "--key (ETCDCTL_KEY)",
            missing: "--cert (ETCDCTL_CERT)",
        })),
        (None, None) => Ok(None),
    }
}

/// The CN of etcdplan's own per-run client certificate: "root" when
/// `[auth]` has root log in by certificate (etcd takes the CN as the user),
/// else "etcdplan".
pub(super) fn own_cn(d: &Desired) -> &'static str {
    match d.auth.as_ref().map(|a| &a.root) {
        Some(Login::Certificate) => crate::config::ROOT,
        _ => "etcdplan",
    }
}

/// Who etcdplan's etcd client logs in as with a password: root with its
/// declared password when the etcdfile has `[auth]` (none when root logs in
/// by certificate: [`own_cn`]), else the operator's `--user` /
/// `ETCDCTL_USER` ([`given_login`]).
pub(super) fn etcd_login(cli: &Cli, d: &Desired) -> Result<Option<(String, Secret)>, String> {
    let Some(auth) = &d.auth else {
        return given_login(cli);
    };
    match &auth.root {
        Login::Certificate => Ok(None),
        Login::Password(source) => match Secrets::read(d).of_user(auth, &AuthName::root()) {
            Some(p) => Ok(Some((crate::config::ROOT.to_owned(), p.clone()))),
            None => Err(format!("root's password ({source}) cannot be read")),
        },
    }
}

/// The login the operator gives, as etcdctl takes it: `--user` (or
/// `ETCDCTL_USER`) with the password in `ETCDCTL_PASSWORD`, or
/// `ETCDCTL_USER=user:password`. None without a user.
pub(super) fn given_login(cli: &Cli) -> Result<Option<(String, Secret)>, String> {
    let Some(user) = &cli.user else {
        return Ok(None);
    };
    if let Ok(p) = std::env::var("ETCDCTL_PASSWORD") {
        return Ok(Some((user.clone(), Secret::new(p))));
    }
    match user.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok(Some((u.to_owned(), Secret::new(p.to_owned())))),
        _ => Err(format!(
            "--user {}: set its password in ETCDCTL_PASSWORD",
            user.split(':').next().unwrap_or_default()
        )),
    }
}

/// etcdplan's own client certificates for this run: one day, CN `cn`
/// ("etcdplan", or "root": [`own_cn`]), from the current CA and, during a
/// rotation, the previous one too.
pub(super) fn client_identity(
    auth: &crate::pki::Authority,
    cn: &str,
) -> Result<crate::io::ClientTls, CliError> {
    let issued = auth.client_certificates(cn, 1).map_err(pki_error)?;
    Ok(crate::io::ClientTls {
        ca_pem: auth.trust_bundle(),
        identities: issued
            .into_iter()
            .map(|i| crate::io::ClientIdentity {
                cert_pem: i.cert_pem,
                key_pem: i.key_pem,
            })
            .collect(),
    })
}

/// The CAs in the etcdfile's `ca_dir`, a CA created there when it has none.
pub(super) fn ca_or_create(d: &Desired) -> Result<crate::pki::Authority, CliError> {
    if d.tls.external().is_some() {
        return Err(pki_error(crate::pki::PkiError::ExternalIssuer {
            command: "client",
        }));
    }
    if let Some(auth) =
        crate::pki::Authority::load(&d.tls.ca_dir, crate::pki::now()).map_err(pki_error)?
    {
        return Ok(auth);
    }
    let current = crate::pki::Ca::create(&d.tls.ca_dir, d.cluster.as_str()).map_err(pki_error)?;
    eprintln!(
        "Created a CA in {} (its key stays on this machine, 0600).",
        d.tls.ca_dir.display()
    );
    Ok(crate::pki::Authority {
        current,
        previous: None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser as _;

    use super::*;
    use crate::config::{Auth, SecretSource, TokenKind};

    fn desired(root: Option<Login>) -> Desired {
        let text = "[cluster]\nname = \"main\"\n[hosts]\ntransport = \"ssh\"\n\
                    [[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n";
        let ctx = crate::config::Context {
            base_dir: PathBuf::from("/srv"),
            home: None,
            file_hash: crate::config::hash(text),
            ..Default::default()
        };
        let Ok(loaded) = crate::config::parse("etcdfile.toml", text.into(), &ctx) else {
            panic!("etcdfile");
        };
        let mut d = loaded.desired;
        d.auth = root.map(|root| Auth {
            enabled: true,
            root,
            token: TokenKind::Simple,
            token_ttl: Duration::from_secs(300),
            prune: false,
            roles: Vec::new(),
            users: Vec::new(),
        });
        d
    }

    fn cli(args: &[&str]) -> Cli {
        let parsed = Cli::try_parse_from(args).map_err(|e| e.to_string());
        let Ok(cli) = parsed else {
            panic!("{parsed:?}")
        };
        cli
    }

    #[test]
    fn with_auth_etcdplan_logs_in_as_root_by_password_or_by_its_certificate_cn() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("root-pw");
        std::fs::write(&file, "r00t-edges-pw\n").unwrap_or_else(|e| panic!("{e}"));
        let by_pw = desired(Some(Login::Password(SecretSource::File(file.clone()))));
        // --user is for clusters whose etcdfile has no [auth]: root wins.
        let c = cli(&["etcdplan", "--user", "someone:x", "status"]);
        let login = etcd_login(&c, &by_pw).unwrap_or_else(|e| panic!("{e}"));
        let Some((user, pw)) = login else {
            panic!("no login")
        };
        assert_eq!((user.as_str(), pw.expose()), ("root", "r00t-edges-pw"));
        assert_eq!(own_cn(&by_pw), "etcdplan");

        let by_cert = desired(Some(Login::Certificate));
        assert!(matches!(etcd_login(&c, &by_cert), Ok(None)));
        assert_eq!(own_cn(&by_cert), "root");

        // An unreadable password file: said, without a password in it.
        std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let Err(why) = etcd_login(&c, &by_pw) else {
            panic!("read a removed file")
        };
        assert!(why.contains("root's password"), "{why}");
    }

    #[test]
    fn without_auth_the_operators_user_is_used_as_etcdctl_takes_it() {
        let plain = desired(None);
        assert!(matches!(
            etcd_login(&cli(&["etcdplan", "status"]), &plain),
            Ok(None)
        ));
        assert_eq!(own_cn(&plain), "etcdplan");
        if std::env::var_os("ETCDCTL_PASSWORD").is_some() {
            return;
        }
        let given = etcd_login(
            &cli(&["etcdplan", "--user", "ops:s3cr3t", "status"]),
            &plain,
        );
        let Ok(Some((user, pw))) = given else {
            panic!("user:password not taken")
        };
        assert_eq!((user.as_str(), pw.expose()), ("ops", "s3cr3t"));
        let Err(why) = etcd_login(&cli(&["etcdplan", "--user", "ops", "status"]), &plain) else {
            panic!("a user without a password")
        };
        assert!(why.contains("ETCDCTL_PASSWORD"), "{why}");
    }
}
