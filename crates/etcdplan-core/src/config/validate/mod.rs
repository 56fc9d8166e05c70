//! From the raw file to the typed [`Desired`] model, collecting every problem.
//!
//! One `Validator` walks the file; each table is checked in its own file:
//! `[etcd]` in `etcd.rs`, `[tls]` in `tls.rs`, `[hosts]` in `hosts.rs`, `[backup]` in `backup.rs`,
//! `[maintenance]` in `maintenance.rs`, `[auth]` in `auth.rs`, the
//! `[[member]]` list and what members must not share in `members.rs`, and the
//! path templates every table uses in `paths.rs`.

mod auth;
mod backup;
mod etcd;
mod hosts;
mod maintenance;
mod members;
mod paths;
mod settings;
mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::desired::{Desired, ServiceKind, Transport};
use super::diagnostic::{Level, Problem};
use super::raw::{RawEtcdfile, RawService, RawTransport};
use crate::model::{ClusterName, VersionSpec};

/// What validation needs from outside the file, passed in so it stays pure.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The etcdfile's folder (absolute): relative paths are relative to it.
    pub base_dir: PathBuf,
    /// The operator's home, for `~` in local paths.
    pub home: Option<PathBuf>,
    /// sha256 of the file's text.
    pub file_hash: String,
    /// The etcd releases found on this machine at the path `binary_source`
    /// names (the edge reads it from a first parse), or why none could be
    /// read. A path not in the map was not looked at: its releases stay empty.
    pub releases: BTreeMap<PathBuf, Result<Vec<super::Release>, String>>,
    /// Whether each password source `[auth]` names could be read on this
    /// machine (set, non-empty), or why not; never the password. The edge
    /// fills it from a first parse; a source not in the map was not looked
    /// at and is taken as readable.
    pub secret_sources: BTreeMap<super::SecretSource, Result<(), String>>,
    /// Whether each local file the etcdfile hands to the members
    /// (`[tls] crl_file`) could be read and holds what it should, or why
    /// not; filled like `secret_sources`, a path not in the map was not
    /// looked at.
    pub local_files: BTreeMap<PathBuf, Result<(), String>>,
}

/// Validates the raw file. Returns the model when there is no error, and all
/// problems (errors and warnings) either way.
pub fn validate(raw: &RawEtcdfile, ctx: &Context) -> (Option<Desired>, Vec<Problem>) {
    let mut v = Validator {
        ctx,
        problems: Vec::new(),
    };
    let desired = v.run(raw);
    // A template shared by all members reports its problem once.
    let mut seen = Vec::new();
    v.problems.retain(|p| {
        let key = (p.code, p.message.clone(), p.labels.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    let has_error = v.problems.iter().any(|p| p.level == Level::Error);
    (if has_error { None } else { desired }, v.problems)
}

/// Walks one raw file, collecting every problem it finds.
struct Validator<'a> {
    ctx: &'a Context,
    problems: Vec<Problem>,
}

/// Where a path lives, which decides how relative paths and `~` are read.
#[derive(Clone, Copy, PartialEq)]
enum PathSide {
    /// On the operator's machine (CA folder, ssh key).
    Local,
    /// On a member's host.
    Host(Transport),
}

impl Validator<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn run(&mut self, raw: &RawEtcdfile) -> Option<Desired> {
        let cluster_raw = raw.cluster.get_ref();
        let cluster = match ClusterName::parse(cluster_raw.name.get_ref()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.push(
                    Problem::error("etcdfile::bad-name", format!("invalid cluster name: {e}"))
                        .label(cluster_raw.name.span(), "this name"),
                );
                None
            }
        };
        let version = cluster_raw.version.as_ref().and_then(|v| {
            VersionSpec::parse(v.get_ref())
                .map_err(|e| {
                    self.push(
                        Problem::error("etcdfile::bad-version", e.to_string())
                            .label(v.span(), "expected major.minor or major.minor.patch")
                            .help("write the version every member must run: a minor version such as \"3.5\", or a release such as \"3.5.16\""),
                    );
                })
                .ok()
        });

        let transport = match raw.hosts.transport.as_ref().map(|t| *t.get_ref()) {
            Some(RawTransport::Local) => Transport::Local,
            Some(RawTransport::Ssh) | None => Transport::Ssh,
        };
        let service = match raw.hosts.service.as_ref().map(|s| *s.get_ref()) {
            Some(RawService::Process) => ServiceKind::Process,
            Some(RawService::Systemd) | None => ServiceKind::Systemd,
        };

        let etcd = self.etcd(raw, transport);
        let tls = self.tls(raw, transport);
        let client = self.client(raw);
        let hosts = self.hosts(raw, transport, service);
        let members = self.members(raw, transport, service, version.map(|v| v.minor));
        let token = match &cluster_raw.initial_cluster_token {
            None => cluster.as_ref().map(|c| c.as_str().to_owned()),
            Some(t) if t.get_ref().trim().is_empty() || t.get_ref().contains(['\n', '\r']) => {
                self.push(
                    Problem::error(
                        "etcdfile::bad-token",
                        "initial_cluster_token must be one line of text",
                    )
                    .label(t.span(), "this token")
                    .help("leave it out to use the cluster's name"),
                );
                None
            }
            Some(t) => Some(t.get_ref().clone()),
        };
        let templates = self.templates(raw, transport);
        let backup = self.backup(raw);
        let maintenance = self.maintenance(raw);
        let auth = self.auth(
            raw,
            &auth::AuthInputs {
                client_cert_auth: raw
                    .tls
                    .client_cert_auth
                    .as_ref()
                    .is_some_and(|c| *c.get_ref()),
                ca_dir: tls.as_ref().map(|t| t.ca_dir.clone()),
            },
        );

        Some(Desired {
            cluster: cluster?,
            token: token?,
            version,
            etcd: etcd?,
            tls: tls?,
            hosts: hosts?,
            client: client?,
            backup: backup?,
            maintenance: maintenance?,
            auth: auth?,
            members: members?,
            templates: templates?,
            file_hash: self.ctx.file_hash.clone(),
        })
    }
}
