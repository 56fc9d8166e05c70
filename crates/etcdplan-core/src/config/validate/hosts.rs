//! The `[hosts]` table: how etcdplan reaches the members' machines (ssh user,
//! port, identity, known hosts), and the user etcd runs as there.

use std::path::PathBuf;

use super::{PathSide, Validator};
use crate::config::desired::{Hosts, ServiceKind, Ssh, Transport};
use crate::config::diagnostic::Problem;
use crate::config::raw::RawEtcdfile;
use crate::model::{Port, UserName};

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
        let run_as = match &h.run_as {
            None => Some(UserName::root()),
            Some(u) => UserName::parse(u.get_ref())
                .map_err(|e| {
                    self.push(
                        Problem::error("etcdfile::bad-run-as", format!("invalid run_as: {e}"))
                            .label(u.span(), "not a user name")
                            .help("name a user that exists on every host, such as \"etcd\" (Debian's etcd-server package creates it), or leave run_as out to run etcd as root"),
                    );
                })
                .ok(),
        };
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
            run_as: run_as?,
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

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, Context, Desired, Problem, hash, parse};

    fn load(hosts: &str) -> (String, Result<Desired, Vec<Problem>>) {
        let text = format!(
            "[cluster]\nname = \"main\"\n\n[hosts]\nservice = \"process\"\n{hosts}\n\n[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n"
        );
        let ctx = Context {
            base_dir: "/srv/etcdplan".into(),
            home: None,
            file_hash: hash(&text),
            ..Default::default()
        };
        let r = match parse("etcdfile.toml", text.clone(), &ctx) {
            Ok(l) => Ok(l.desired),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems),
            Err(e) => panic!("{e}"),
        };
        (text, r)
    }

    #[test]
    fn run_as_defaults_to_root() {
        match load("").1 {
            Ok(d) => assert!(d.hosts.run_as.is_root()),
            Err(p) => panic!("{p:?}"),
        }
    }

    #[test]
    fn run_as_names_the_user() {
        match load("run_as = \"etcd\"").1 {
            Ok(d) => {
                assert_eq!(d.hosts.run_as.as_str(), "etcd");
                assert!(!d.hosts.run_as.is_root());
            }
            Err(p) => panic!("{p:?}"),
        }
    }

    #[test]
    fn a_bad_run_as_points_at_its_value() {
        for bad in ["Etcd", "etcd etcd", "", "etcd:etcd"] {
            let (text, r) = load(&format!("run_as = {bad:?}"));
            let Err(problems) = r else {
                panic!("{bad:?} was accepted");
            };
            let p = problems
                .iter()
                .find(|p| p.code == "etcdfile::bad-run-as")
                .unwrap_or_else(|| panic!("{bad:?}: {problems:?}"));
            let span = p.labels[0].0.clone();
            assert_eq!(&text[span], format!("{bad:?}"), "{bad:?}");
            assert!(p.help.as_deref().is_some_and(|h| h.contains("etcd-server")));
        }
    }
}
