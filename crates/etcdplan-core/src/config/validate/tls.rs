//! The `[tls]` table: which traffic is encrypted, the CA folder and the
//! certificates' lifetime.

use toml::Spanned;

use super::{PathSide, Validator};
use crate::config::desired::Tls;
use crate::config::diagnostic::Problem;
use crate::config::raw::RawEtcdfile;

impl Validator<'_> {
    pub(super) fn tls(&mut self, raw: &RawEtcdfile) -> Option<Tls> {
        let t = &raw.tls;
        let flag = |f: &Option<Spanned<bool>>| f.as_ref().is_some_and(|b| *b.get_ref());
        let (client, peer, cca) = (flag(&t.client), flag(&t.peer), flag(&t.client_cert_auth));
        let mut ok = true;
        if cca && !client {
            ok = false;
            let mut p = Problem::error(
                "etcdfile::cert-auth-without-tls",
                "client_cert_auth needs client TLS",
            );
            if let Some(c) = &t.client_cert_auth {
                p = p.label(c.span(), "client certificates are asked for here");
            }
            if let Some(c) = &t.client {
                p = p.label(c.span(), "but client traffic is plain http");
            }
            self.push(p.help("set client = true in [tls], or drop client_cert_auth"));
        }
        let ca_dir = match &t.ca_dir {
            None => Some(self.ctx.base_dir.join("pki")),
            Some(d) => self.path(d, None, PathSide::Local, false),
        };
        let num = |v: &Option<Spanned<u32>>, default: i64| {
            v.as_ref().map_or(default, |n| i64::from(*n.get_ref()))
        };
        let cert_days = num(&t.cert_days, 365);
        let renew_before_days = num(&t.renew_before_days, 30);
        if renew_before_days >= cert_days {
            ok = false;
            let mut p = Problem::error(
                "etcdfile::renewal-window",
                format!(
                    "renew_before_days ({renew_before_days}) must be less than cert_days ({cert_days})"
                ),
            );
            if let Some(r) = &t.renew_before_days {
                p = p.label(
                    r.span(),
                    "every certificate would be renewed at every apply",
                );
            }
            self.push(p.help("shorten renew_before_days or lengthen cert_days"));
        }
        ok.then_some(())?;
        Some(Tls {
            client,
            peer,
            client_cert_auth: cca,
            ca_dir: ca_dir?,
            cert_days,
            renew_before_days,
        })
    }
}
