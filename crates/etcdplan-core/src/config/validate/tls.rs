//! The `[tls]` table: which traffic is encrypted, who issues the
//! certificates (etcdplan's CA folder, or the operator's own CA and the files
//! it placed on the hosts), the certificates' lifetime; and `[client]`, the
//! files etcdplan presents to the members.

use toml::Spanned;

use super::{PathSide, Validator};
use crate::config::desired::{ClientFiles, ExternalPki, Issuer, Tls, Transport};
use crate::config::diagnostic::Problem;
use crate::config::raw::{RawEtcdfile, RawIssuer, RawTls};

/// The placeholders a host file of the operator's PKI may use.
const HOST_PLACEHOLDERS: [&str; 2] = ["{name}", "{address}"];

impl Validator<'_> {
    pub(super) fn tls(&mut self, raw: &RawEtcdfile, transport: Transport) -> Option<Tls> {
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
        let num = |v: &Option<Spanned<u32>>, default: i64| {
            v.as_ref().map_or(default, |n| i64::from(*n.get_ref()))
        };
        let cert_days = num(&t.cert_days, 365);
        let renew_before_days = num(&t.renew_before_days, 30);
        let external = t
            .issuer
            .as_ref()
            .is_some_and(|i| *i.get_ref() == RawIssuer::External);
        let (issuer, ca_dir) = if external {
            let x = self.external(t, transport, (client, peer, cca));
            (x.map(Issuer::External), Some(self.ctx.base_dir.join("pki")))
        } else {
            self.no_external_keys(t);
            let ca_dir = match &t.ca_dir {
                None => Some(self.ctx.base_dir.join("pki")),
                Some(d) => self.path(d, None, PathSide::Local, false),
            };
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
            (Some(Issuer::Etcdplan), ca_dir)
        };
        let crl_file = self.crl_file(t, client, cca);
        ok.then_some(())?;
        Some(Tls {
            client,
            peer,
            client_cert_auth: cca,
            ca_dir: ca_dir?,
            cert_days,
            renew_before_days,
            issuer: issuer?,
            crl_file: crl_file?,
        })
    }

    /// `crl_file`: a revocation list on this machine, for client certificates
    /// (etcd's client-crl-file), so it needs client TLS. Whether it can be
    /// read is in `Context::local_files`.
    fn crl_file(
        &mut self,
        t: &RawTls,
        client: bool,
        cca: bool,
    ) -> Option<Option<std::path::PathBuf>> {
        let Some(v) = &t.crl_file else {
            return Some(None);
        };
        if !client {
            let mut p = Problem::error(
                "etcdfile::crl-without-client-tls",
                "crl_file revokes client certificates, but client traffic is plain http",
            )
            .label(v.span(), "the revocation list");
            if let Some(c) = &t.client {
                p = p.label(c.span(), "no client TLS");
            }
            self.push(p.help(
                "set client = true (and client_cert_auth = true) in [tls], or drop crl_file",
            ));
            return None;
        }
        if !cca {
            self.push(
                Problem::warning(
                    "etcdfile::crl-without-cert-auth",
                    "crl_file revokes client certificates, but etcd asks clients for none",
                )
                .label(v.span(), "nothing is revoked without client_cert_auth")
                .help("set client_cert_auth = true in [tls] so clients log in by certificate, or drop crl_file"),
            );
        }
        let path = self.path(v, None, PathSide::Local, false)?;
        if let Some(Err(why)) = self.ctx.local_files.get(&path) {
            self.push(
                Problem::error(
                    "etcdfile::crl-unreadable",
                    format!("cannot use crl_file {}: {why}", path.display()),
                )
                .label(v.span(), "this revocation list")
                .help("name a PEM file holding an X509 CRL on this machine (openssl ca -gencrl writes one)"),
            );
            return None;
        }
        Some(Some(path))
    }

    /// The keys of the operator's PKI, each with its name, as written.
    fn external_keys(t: &RawTls) -> [(&'static str, &Option<Spanned<String>>); 6] {
        [
            ("ca_file", &t.ca_file),
            ("server_cert", &t.server_cert),
            ("server_key", &t.server_key),
            ("peer_cert", &t.peer_cert),
            ("peer_key", &t.peer_key),
            ("trusted_ca", &t.trusted_ca),
        ]
    }

    /// With etcdplan issuing, the files of an external PKI are a mistake:
    /// etcdplan would write its own certificates elsewhere and ignore them.
    fn no_external_keys(&mut self, t: &RawTls) {
        for (key, v) in Self::external_keys(t) {
            let Some(v) = v else { continue };
            let mut p = Problem::error(
                "etcdfile::external-file-without-external-issuer",
                format!("{key} names a file of the operator's own CA, but etcdplan issues the certificates"),
            )
            .label(v.span(), "used only with issuer = \"external\"");
            if let Some(i) = &t.issuer {
                p = p.label(i.span(), "etcdplan's CA issues them");
            }
            self.push(p.help(format!(
                "set issuer = \"external\" in [tls] to use certificates your own CA issued, or drop {key} (etcdplan issues and places its own in config_dir/pki)"
            )));
        }
    }

    /// `issuer = "external"`: the CA file here, and the host files that the
    /// enabled TLS needs.
    fn external(
        &mut self,
        t: &RawTls,
        transport: Transport,
        (client, peer, cca): (bool, bool, bool),
    ) -> Option<ExternalPki> {
        let issuer_span = t.issuer.as_ref().map_or(0..0, Spanned::span);
        let mut ok = true;
        for (key, v) in [("ca_dir", &t.ca_dir)] {
            if let Some(v) = v {
                ok = false;
                self.push(
                    Problem::error(
                        "etcdfile::etcdplan-setting-with-external-issuer",
                        format!("{key} is etcdplan's own CA, but the operator's CA issues the certificates"),
                    )
                    .label(v.span(), "not used with an external issuer")
                    .label(issuer_span.clone(), "the operator's CA issues them")
                    .help(format!("drop {key}; ca_file names your CA's certificate (to hand your CA to etcdplan instead, use `etcdplan pki import-ca`)")),
                );
            }
        }
        if let Some(v) = &t.cert_days {
            ok = false;
            self.push(
                Problem::error(
                    "etcdfile::etcdplan-setting-with-external-issuer",
                    "cert_days is the lifetime of certificates etcdplan issues, but the operator's CA issues them",
                )
                .label(v.span(), "not used with an external issuer")
                .label(issuer_span.clone(), "the operator's CA issues them")
                .help("drop cert_days; renew_before_days still says when plan warns about a certificate that expires soon"),
            );
        }
        let mut needed: Vec<(&str, &str)> = Vec::new();
        if client {
            needed.extend([("server_cert", "client TLS"), ("server_key", "client TLS")]);
        }
        if peer {
            needed.extend([
                ("peer_cert", "peer TLS"),
                ("peer_key", "peer TLS"),
                ("trusted_ca", "peer TLS"),
            ]);
        }
        if cca && !peer {
            needed.push(("trusted_ca", "client_cert_auth"));
        }
        if client || peer {
            needed.push(("ca_file", "TLS"));
        }
        let keys = Self::external_keys(t);
        for (key, why) in needed {
            let set = keys.iter().any(|(k, v)| *k == key && v.is_some());
            if set {
                continue;
            }
            ok = false;
            let example = match key {
                "ca_file" => "ca_file = \"pki/ca.crt\" (on this machine)",
                "server_cert" => "server_cert = \"/etc/etcd/pki/{name}.crt\"",
                "server_key" => "server_key = \"/etc/etcd/pki/{name}.key\"",
                "peer_cert" => "peer_cert = \"/etc/etcd/pki/{name}-peer.crt\"",
                "peer_key" => "peer_key = \"/etc/etcd/pki/{name}-peer.key\"",
                _ => "trusted_ca = \"/etc/etcd/pki/ca.crt\"",
            };
            self.push(
                Problem::error(
                    "etcdfile::external-file-missing",
                    format!("issuer = \"external\" with {why} needs {key}"),
                )
                .label(issuer_span.clone(), format!("{key} is not set"))
                .help(format!(
                    "name the file your CA issued, for example {example}"
                )),
            );
        }
        let ca_file = match &t.ca_file {
            Some(v) => self.path(v, None, PathSide::Local, false),
            None => Some(std::path::PathBuf::new()),
        };
        let mut host = |v: &Option<Spanned<String>>| match v {
            None => Some(None),
            Some(v) => self.host_pattern(v, transport).map(Some),
        };
        // Each is checked, so every bad path is reported at once.
        let (server_cert, server_key) = (host(&t.server_cert), host(&t.server_key));
        let (peer_cert, peer_key) = (host(&t.peer_cert), host(&t.peer_key));
        let trusted_ca = host(&t.trusted_ca);
        let x = ExternalPki {
            server_cert: server_cert?,
            server_key: server_key?,
            peer_cert: peer_cert?,
            peer_key: peer_key?,
            trusted_ca: trusted_ca?,
            ca_file: ca_file?,
        };
        ok.then_some(x)
    }

    /// A file on each host, with `{name}` and `{address}` kept for each
    /// member to fill in; absolute unless hosts are this machine.
    fn host_pattern(&mut self, v: &Spanned<String>, transport: Transport) -> Option<String> {
        let s = v.get_ref();
        let mut rest = s.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map(|c| open + c);
            let ph = close.map(|c| &rest[open..=c]);
            if !ph.is_some_and(|p| HOST_PLACEHOLDERS.contains(&p)) {
                let msg = match ph {
                    Some(p) => format!("unknown placeholder {p}"),
                    None => "unclosed '{' in path".to_owned(),
                };
                self.push(
                    Problem::error("etcdfile::bad-path", msg)
                        .label(v.span(), "in this path")
                        .help("the placeholders here are {name} (the member's name) and {address} (its address)"),
                );
                return None;
            }
            rest = &rest[close.map_or(rest.len(), |c| c + 1)..];
        }
        if s.starts_with('/') {
            return Some(s.clone());
        }
        if transport == Transport::Local && !s.is_empty() {
            let p = match (s.strip_prefix("~/"), &self.ctx.home) {
                (Some(r), Some(h)) => h.join(r),
                _ => self.ctx.base_dir.join(s),
            };
            return Some(p.display().to_string());
        }
        self.push(
            Problem::error(
                "etcdfile::relative-remote-path",
                format!("{s:?} is not an absolute path, but it is a path on remote hosts"),
            )
            .label(v.span(), "must be absolute with transport = \"ssh\"")
            .help("name the file as it is on each host, from /"),
        );
        None
    }

    /// `[client]`: files on this machine; a certificate needs its key.
    pub(super) fn client(&mut self, raw: &RawEtcdfile) -> Option<ClientFiles> {
        let c = &raw.client;
        let mut local = |v: &Option<Spanned<String>>| match v {
            None => Some(None),
            Some(v) => self.path(v, None, PathSide::Local, false).map(Some),
        };
        let (cacert, cert, key) = (local(&c.cacert)?, local(&c.cert)?, local(&c.key)?);
        let cert_and_key = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                let (set, missing, span) = match (&c.cert, &c.key) {
                    (Some(s), _) => ("cert", "key", s.span()),
                    (_, Some(s)) => ("key", "cert", s.span()),
                    _ => ("cert", "key", 0..0),
                };
                self.push(
                    Problem::error(
                        "etcdfile::client-cert-without-key",
                        format!("[client] {set} is set without {missing}"),
                    )
                    .label(span, format!("{missing} is missing"))
                    .help("a client certificate is presented with its key: set both, or neither"),
                );
                return None;
            }
        };
        Some(ClientFiles {
            cacert,
            cert_and_key,
        })
    }
}
