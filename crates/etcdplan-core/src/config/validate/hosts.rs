//! The `[hosts]` table: how etcdplan reaches the members' machines (ssh user,
//! port, identity, known hosts).

use std::path::PathBuf;

use super::{PathSide, Validator};
use crate::config::desired::{Hosts, ServiceKind, Ssh, Transport};
use crate::config::diagnostic::Problem;
use crate::config::raw::RawEtcdfile;
use crate::model::Port;

impl Validator<'_> {
    pub(super) fn hosts(
        &mut self,
        raw: &RawEtcdfile,
        transport: Transport,
        service: ServiceKind,
    ) -> Option<Hosts> {
        let h = &raw.hosts;
        let user = h
            .ssh_user
            .as_ref()
            .map_or("root".to_owned(), |u| u.get_ref().clone());
        if let Some(u) = &h.ssh_user
            && (u.get_ref().is_empty()
                || u.get_ref()
                    .contains(|c: char| c.is_whitespace() || c == '@'))
        {
            self.push(
                Problem::error(
                    "etcdfile::bad-ssh-user",
                    format!("invalid ssh_user {:?}", u.get_ref()),
                )
                .label(u.span(), "not a user name"),
            );
        }
        let port = h
            .ssh_port
            .as_ref()
            .map_or(Port::new(22), |p| Port::new(*p.get_ref()));
        let identity = match &h.ssh_identity {
            None => self.expand_home("~/.ssh/id_ed25519"),
            Some(p) => self.path(p, None, PathSide::Local, false),
        };
        let known_hosts = match &h.ssh_known_hosts {
            None => self.expand_home("~/.ssh/known_hosts"),
            Some(p) => self.path(p, None, PathSide::Local, false),
        };
        Some(Hosts {
            transport,
            service,
            ssh: Ssh {
                user,
                port: port?,
                identity: identity?,
                known_hosts: known_hosts?,
            },
        })
    }

    fn expand_home(&self, p: &str) -> Option<PathBuf> {
        match (p.strip_prefix("~/"), &self.ctx.home) {
            (Some(rest), Some(home)) => Some(home.join(rest)),
            _ => Some(PathBuf::from(p)),
        }
    }
}
