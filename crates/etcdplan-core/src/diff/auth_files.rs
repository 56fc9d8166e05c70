//! Whether a member's JWT key pair and client CRL on its host are the ones on
//! this machine. Pure: `observe` read the digests on both sides.
//!
//! The key pair is loaded by etcd at start, so a member whose pair differs
//! restarts (rolled like any setting); the CRL is read at each TLS handshake,
//! so a new one is placed in place without a restart.

use crate::config::{Desired, DesiredMember, TokenKind};
use crate::live::{HostFacts, LocalAuthFiles};

/// What a member's placed auth files need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFilesNeed {
    /// They are as on this machine (or the etcdfile asks for none).
    Fine,
    /// Place them again; etcd must restart to read them (the JWT key pair).
    Restart(String),
    /// Place them again; etcd reads them as they are (the CRL only).
    InPlace(String),
}

/// Whether the etcdfile asks for files to be placed on the members: a JWT
/// key pair (`[auth] token = "jwt"`) or a client CRL (`[tls] crl_file`).
pub fn wanted(d: &Desired) -> bool {
    jwt(d) || crl(d)
}

/// Whether members get the JWT key pair (`[auth] token = "jwt"`).
pub fn jwt(d: &Desired) -> bool {
    d.auth
        .as_ref()
        .is_some_and(|a| matches!(a.token, TokenKind::Jwt { .. }))
}

/// Whether members get the client CRL (`[tls] crl_file` with client TLS).
pub fn crl(d: &Desired) -> bool {
    d.tls.client && d.tls.crl_file.is_some()
}

/// Compares a member's placed files with this machine's.
pub fn check(d: &Desired, facts: &HostFacts, local: &LocalAuthFiles) -> AuthFilesNeed {
    let placed = &facts.auth_files;
    if jwt(d) {
        let why = match (&local.jwt_pub, &local.jwt_key) {
            (None, _) | (_, None) => {
                Some("the JWT key pair is made in key_dir at apply and placed on it".to_owned())
            }
            _ if placed.jwt_pub.is_none() || placed.jwt_key.is_none() => {
                Some("its JWT key pair is not on its host yet".to_owned())
            }
            _ if placed.jwt_pub != local.jwt_pub || placed.jwt_key != local.jwt_key => {
                Some("its JWT key pair differs from key_dir's".to_owned())
            }
            _ => placed
                .jwt_key_mode
                .filter(|m| m & 0o077 != 0)
                .map(|m| format!("its JWT private key has mode {m:04o}: others may read it")),
        };
        if let Some(why) = why {
            return AuthFilesNeed::Restart(format!("{why}; etcd loads the key pair at start"));
        }
    }
    if crl(d) && placed.crl != local.crl {
        let why = match (&local.crl, &placed.crl) {
            (None, _) => "crl_file is missing on this machine".to_owned(),
            (_, None) => "its CRL is not on its host yet".to_owned(),
            _ => "its CRL differs from crl_file".to_owned(),
        };
        return AuthFilesNeed::InPlace(format!(
            "{why}: placed in place, etcd reads it at each TLS handshake"
        ));
    }
    AuthFilesNeed::Fine
}

/// Problems that stop a member's auth files from working as rendered: a JWT
/// path etcd cannot parse, or a release that bypasses the CRL.
pub fn problems(d: &Desired, m: &DesiredMember, facts: &HostFacts) -> Vec<String> {
    let mut out: Vec<String> = crate::hostfiles::auth_path_problem(d, m)
        .into_iter()
        .collect();
    if let Some(v) = facts.binary.version()
        && crate::hostfiles::crl_bypassed(d, m, v)
    {
        out.push(format!(
            "etcd {v} skips the client CRL on its gRPC listener when listen-client-http-urls is set (GHSA-3wh4-j44w-pg92, fixed in 3.5.32, 3.6.13, 3.7.0): revoked certificates would still be accepted"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Auth, Context, Login, SecretSource};

    fn desired(jwt_on: bool, crl_on: bool) -> Desired {
        let text = "[cluster]\nname = \"c\"\n[etcd]\ndata_dir = \"/var/lib/etcd\"\n[tls]\nclient = true\n[hosts]\ntransport = \"ssh\"\nservice = \"process\"\n[[member]]\nname = \"m1\"\naddress = \"10.0.0.1\"\n";
        let ctx = Context {
            base_dir: "/srv".into(),
            ..Context::default()
        };
        let mut d = match crate::config::parse("etcdfile.toml", text.to_owned(), &ctx) {
            Ok(l) => l.desired,
            Err(e) => panic!("{e:?}"),
        };
        if jwt_on {
            d.auth = Some(Auth {
                enabled: true,
                root: Login::Password(SecretSource::Env("P".into())),
                token: TokenKind::Jwt {
                    key_dir: "/k".into(),
                },
                token_ttl: std::time::Duration::from_secs(300),
                prune: false,
                roles: Vec::new(),
                users: Vec::new(),
            });
        }
        if crl_on {
            d.tls.crl_file = Some("/ca/crl.pem".into());
        }
        d
    }

    fn facts_with(files: crate::live::HostAuthFiles) -> HostFacts {
        HostFacts {
            files: Vec::new(),
            data: crate::live::DataDir::Member,
            service: crate::live::ServiceState::Running(1),
            started_config: None,
            binary: crate::live::Binary::Missing,
            listening: None,
            data_owner_id: None,
            listener: None,
            problems: Vec::new(),
            certs: Default::default(),
            auth_files: files,
            started_ca: None,
            installed: Default::default(),
            unit: None,
            data_owner: None,
            service_user: None,
            restore_pending: None,
        }
    }

    fn some(s: &str) -> Option<String> {
        Some(s.repeat(64))
    }

    #[test]
    fn a_new_crl_is_placed_in_place_and_a_new_key_pair_restarts() {
        let d = desired(true, true);
        let local = LocalAuthFiles {
            jwt_pub: some("a"),
            jwt_key: some("b"),
            crl: some("c"),
        };
        let same = crate::live::HostAuthFiles {
            jwt_pub: some("a"),
            jwt_key: some("b"),
            jwt_key_mode: Some(0o600),
            crl: some("c"),
        };
        assert_eq!(
            check(&d, &facts_with(same.clone()), &local),
            AuthFilesNeed::Fine
        );
        let old_crl = crate::live::HostAuthFiles {
            crl: some("0"),
            ..same.clone()
        };
        assert!(matches!(
            check(&d, &facts_with(old_crl), &local),
            AuthFilesNeed::InPlace(why) if why.contains("differs from crl_file")
        ));
        let old_key = crate::live::HostAuthFiles {
            jwt_key: some("0"),
            crl: some("0"),
            ..same.clone()
        };
        // The key pair wins: the restart places the CRL too.
        assert!(matches!(
            check(&d, &facts_with(old_key), &local),
            AuthFilesNeed::Restart(_)
        ));
        // Nothing asked for, nothing compared.
        let none = desired(false, false);
        assert!(!wanted(&none));
        assert_eq!(
            check(&none, &facts_with(Default::default()), &local),
            AuthFilesNeed::Fine
        );
        // A CRL without client TLS is not placed.
        let mut no_client = desired(false, true);
        no_client.tls.client = false;
        assert!(!wanted(&no_client));
    }
}
