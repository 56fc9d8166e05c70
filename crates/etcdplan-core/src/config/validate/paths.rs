//! Path templates: `{name}`, `~` and relative paths, read on the side (this
//! machine or a member's host) where the path lives.

use std::path::PathBuf;

use toml::Spanned;

use super::{PathSide, Validator};
use crate::config::desired::{PathTemplates, Transport};
use crate::config::diagnostic::Problem;
use crate::config::raw::RawEtcdfile;
use crate::model::MemberName;

impl Validator<'_> {
    /// Resolves a path template: `{name}`, `~`, and relative paths.
    pub(super) fn path(
        &mut self,
        v: &Spanned<String>,
        name: Option<&MemberName>,
        side: PathSide,
        allow_name: bool,
    ) -> Option<PathBuf> {
        let s = v.get_ref();
        if s.is_empty() {
            self.push(
                Problem::error("etcdfile::bad-path", "the path is empty").label(v.span(), "empty"),
            );
            return None;
        }
        let mut rest = s.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map(|c| open + c);
            let ph = close.map(|c| &rest[open..=c]);
            if ph != Some("{name}") || !allow_name {
                let msg = match ph {
                    Some("{name}") => {
                        "{name} is only allowed in data_dir, wal_dir, config_dir and state_dir"
                            .to_owned()
                    }
                    Some(p) => format!("unknown placeholder {p}"),
                    None => "unclosed '{' in path".to_owned(),
                };
                self.push(
                    Problem::error("etcdfile::bad-path", msg)
                        .label(v.span(), "in this path")
                        .help("the only placeholder is {name}, the member's name"),
                );
                return None;
            }
            rest = &rest[close.map_or(rest.len(), |c| c + 1)..];
        }
        let s = match name {
            Some(n) => s.replace("{name}", n.as_str()),
            None => s.clone(),
        };
        let local = matches!(side, PathSide::Local | PathSide::Host(Transport::Local));
        let p = if let Some(r) = s.strip_prefix("~/").filter(|_| local) {
            match &self.ctx.home {
                Some(h) => h.join(r),
                None => PathBuf::from(&s),
            }
        } else {
            PathBuf::from(&s)
        };
        if p.is_absolute() {
            return Some(p);
        }
        if local {
            return Some(self.ctx.base_dir.join(p));
        }
        self.push(
            Problem::error(
                "etcdfile::relative-remote-path",
                format!("{:?} is relative, but it is a path on remote hosts", v.get_ref()),
            )
                .label(v.span(), "must be absolute with transport = \"ssh\"")
                .help("relative paths are read from the etcdfile's folder, which only makes sense with transport = \"local\""),
        );
        None
    }

    /// The path settings resolved but for `{name}`; their problems are
    /// reported (once) while resolving the members.
    pub(super) fn templates(
        &mut self,
        raw: &RawEtcdfile,
        transport: Transport,
    ) -> Option<PathTemplates> {
        let side = PathSide::Host(transport);
        let mut quiet = Validator {
            ctx: self.ctx,
            problems: Vec::new(),
        };
        let wal_dir = match &raw.etcd.wal_dir {
            None => None,
            Some(w) => Some(
                quiet
                    .path(w, None, side, true)
                    .map(|p| p.display().to_string())?,
            ),
        };
        let mut one = |v: &Option<Spanned<String>>, d: &str| {
            let v = v
                .clone()
                .unwrap_or_else(|| Spanned::new(0..0, d.to_owned()));
            quiet
                .path(&v, None, side, true)
                .map(|p| p.display().to_string())
        };
        Some(PathTemplates {
            data_dir: one(&raw.etcd.data_dir, "/var/lib/etcd")?,
            config_dir: one(&raw.hosts.config_dir, "/etc/etcd")?,
            state_dir: one(&raw.hosts.state_dir, "/var/lib/etcdplan")?,
            wal_dir,
        })
    }
}
