//! Whether a member's certificates on its host still serve: present, keys
//! private, signed by the operator's CA, trusting what it should, valid for the
//! member's names, and not about to expire. Pure: the host's files and the CAs
//! were read by `observe`.

use std::collections::BTreeSet;

use crate::cert;
use crate::config::{Desired, DesiredMember};
use crate::hostfiles::member_sans;
use crate::live::{HostCerts, HostFacts};

/// The operator's CAs, as PEM: the one in `ca_dir` and, during a rotation,
/// the one it replaces (`ca_dir/previous`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cas<'a> {
    /// `ca_dir/ca.crt`.
    pub current: Option<&'a str>,
    /// `ca_dir/previous/ca.crt`.
    pub previous: Option<&'a str>,
}

impl Cas<'_> {
    /// The CA bundle every member should trust: the previous CA while it is
    /// kept, and the current one.
    pub fn wanted_bundle(&self) -> String {
        [self.previous, self.current]
            .into_iter()
            .flatten()
            .flat_map(cert::split_bundle)
            .collect()
    }

    /// The same, as fingerprints.
    pub fn wanted(&self) -> BTreeSet<String> {
        cert::bundle_fingerprints(&self.wanted_bundle())
    }

    /// The current CA's fingerprint.
    pub fn current_fingerprint(&self) -> Option<String> {
        self.current
            .and_then(|c| cert::inspect(c).ok())
            .map(|i| i.fingerprint)
    }

    /// Whether the current CA signed both of a member's certificates.
    pub fn current_signed(&self, c: &HostCerts) -> bool {
        self.current.is_some_and(|ca| {
            [&c.server, &c.peer]
                .into_iter()
                .all(|x| x.as_deref().is_some_and(|x| cert::signed_by(x, ca)))
        })
    }
}

/// The CAs a member's running etcd trusts, and those its `ca.crt` holds, as
/// fingerprints (they differ until the member restarts).
pub fn trust(facts: &HostFacts) -> (BTreeSet<String>, BTreeSet<String>) {
    let set = |t: Option<&str>| t.map(cert::bundle_fingerprints).unwrap_or_default();
    (set(facts.running_trust()), set(facts.certs.ca.as_deref()))
}

/// What a member's certificates need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertNeed {
    /// They serve as they are (or TLS is off).
    Fine,
    /// Issue them again, for this reason.
    Issue(String),
    /// A CA rotation is under way: the member trusts other CAs than the
    /// operator's (current, and previous while kept), or its certificates come
    /// from the previous CA. Planned as phases by `ca_rotation`.
    Rotate,
    /// They were signed by another CA than the operator's; issuing new ones
    /// would break trust between members, so this blocks the plan.
    ForeignCa(String),
}

/// Checks the certificates of a member that has run before.
pub fn check(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    cas: Cas<'_>,
    now: i64,
) -> CertNeed {
    if !d.tls.any() {
        return CertNeed::Fine;
    }
    let c = &facts.certs;
    let (Some(_), Some(server), Some(peer)) = (&c.ca, &c.server, &c.peer) else {
        return CertNeed::Issue("its certificates are not on its host yet".into());
    };
    for (file, mode) in [
        ("server.key", c.server_key_mode),
        ("peer.key", c.peer_key_mode),
    ] {
        match mode {
            None => return CertNeed::Issue(format!("its {file} is missing")),
            Some(m) if m & 0o077 != 0 => {
                return CertNeed::Issue(format!("its {file} has mode {m:04o}: others may read it"));
            }
            Some(_) => {}
        }
    }
    let ca_dir = d.tls.ca_dir.display();
    let Some(local) = cas.current else {
        return CertNeed::ForeignCa(format!(
            "{} has certificates, but ca_dir {ca_dir} holds no CA to check them against",
            m.name,
        ));
    };
    let retired_hint = if cas.previous.is_none() {
        format!(
            " (if it was retired before the rotation was applied, move that {ca_dir}/retired-… folder back to {ca_dir}/{})",
            cert::PREVIOUS_DIR
        )
    } else {
        String::new()
    };
    let ours = |pem_text: &str| {
        cert::signed_by(pem_text, local)
            || cas.previous.is_some_and(|p| cert::signed_by(pem_text, p))
    };
    for (role, pem_text) in [("server", server), ("peer", peer)] {
        if !ours(pem_text) {
            return CertNeed::ForeignCa(format!(
                "{}'s {role} certificate was signed neither by the CA in {ca_dir} nor by a previous one kept in {ca_dir}/{}{retired_hint}",
                m.name,
                cert::PREVIOUS_DIR
            ));
        }
    }
    let (running, file) = trust(facts);
    let known: BTreeSet<String> = cas.wanted();
    if running.is_disjoint(&known) {
        return CertNeed::ForeignCa(format!(
            "{}'s etcd trusts neither the CA in {ca_dir} nor a previous one kept in {ca_dir}/{}{retired_hint}",
            m.name,
            cert::PREVIOUS_DIR
        ));
    }
    if running != known || file != known || !cas.current_signed(c) {
        return CertNeed::Rotate;
    }
    let wanted = member_sans(m);
    for (role, pem_text) in [("server", server), ("peer", peer)] {
        let info = match cert::inspect(pem_text) {
            Ok(i) => i,
            Err(e) => return CertNeed::Issue(format!("its {role} certificate is unreadable: {e}")),
        };
        if let Some(missing) = wanted.iter().find(|s| !info.sans.contains(s)) {
            return CertNeed::Issue(format!(
                "its {role} certificate is not valid for {missing} (its names changed)"
            ));
        }
        let left = info.days_left(now);
        if left < d.tls.renew_before_days {
            return CertNeed::Issue(if left < 0 {
                format!(
                    "its {role} certificate expired on {}",
                    cert::date(info.not_after)
                )
            } else {
                format!(
                    "its {role} certificate expires in {left} day{} (renew_before_days = {})",
                    if left == 1 { "" } else { "s" },
                    d.tls.renew_before_days
                )
            });
        }
    }
    CertNeed::Fine
}

/// What a member's certificates from the operator's own CA say against what
/// it needs (issuer = "external"): etcdplan never writes them, so it can
/// only refuse to (re)start a member with files that would not serve, and
/// warn before they expire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalFindings {
    /// Why the member's etcd would fail, or be unsafe, with these files,
    /// each with what to do; a plan that (re)starts it is blocked.
    pub problems: Vec<(String, &'static str)>,
    /// Certificates that expire within `renew_before_days`.
    pub expiring: Vec<String>,
}

/// What to do about a file of the operator's that is missing.
const PLACE: &str = "put the file your CA issued in place (etcdplan reads the operator's certificates and never writes them); nothing was changed";
/// … a key others may read or change.
const CHMOD: &str = "chmod 600 the key, owned by the user etcd runs as (etcdplan never changes the operator's files); nothing was changed";
/// … a certificate that has expired or names the wrong member.
const REISSUE: &str = "issue the certificate again with your CA, for the member's name and address, and put it in place (etcdplan never writes it); nothing was changed";
/// … a certificate or trust file from another CA than ca_file.
const CHAIN: &str = "point [tls] ca_file at the CA that issued the members' certificates, or issue them again from it; nothing was changed";

/// The names the operator's certificates must cover: the member's name and
/// its address (an IP SAN for an IP, a DNS SAN for a host name).
pub fn external_sans(m: &DesiredMember) -> Vec<cert::San> {
    use crate::model::Address;
    let mut sans = vec![cert::San::Dns(m.name.as_str().to_owned())];
    sans.push(match &m.address {
        Address::Ip(ip) => cert::San::Ip(*ip),
        Address::Dns(n) => cert::San::Dns(n.clone()),
    });
    sans.dedup();
    sans
}

/// Checks the files the operator placed for a member: present, keys private,
/// chained to `ca_file` (`ca`), valid now, for the member's name and address,
/// and trusting that CA.
pub fn check_external(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    ca: Option<&str>,
    now: i64,
) -> ExternalFindings {
    let mut out = ExternalFindings::default();
    let Some(x) = d.tls.external().filter(|_| d.tls.any()) else {
        return out;
    };
    let paths = m.tls_paths(&d.tls);
    let c = &facts.certs;
    let ca_file = x.ca_file.display();
    let mut roles = Vec::new();
    if d.tls.client {
        roles.push((
            "server",
            &c.server,
            &paths.server_cert,
            c.server_key_mode,
            &paths.server_key,
        ));
    }
    if d.tls.peer {
        roles.push((
            "peer",
            &c.peer,
            &paths.peer_cert,
            c.peer_key_mode,
            &paths.peer_key,
        ));
    }
    for (role, pem_text, cert_path, key_mode, key_path) in roles {
        match key_mode {
            None => out.problems.push((
                format!("its {role} key {} is not on its host", key_path.display()),
                PLACE,
            )),
            Some(mode) if mode & 0o044 != 0 => out.problems.push((
                format!(
                    "its {role} key {} has mode {mode:04o}: others may read it",
                    key_path.display()
                ),
                CHMOD,
            )),
            Some(mode) if mode & 0o022 != 0 => out.problems.push((
                format!(
                    "its {role} key {} has mode {mode:04o}: others may replace it",
                    key_path.display()
                ),
                CHMOD,
            )),
            Some(_) => {}
        }
        let Some(pem_text) = pem_text else {
            out.problems.push((
                format!(
                    "its {role} certificate {} is not on its host",
                    cert_path.display()
                ),
                PLACE,
            ));
            continue;
        };
        let info = match cert::inspect(pem_text) {
            Ok(i) => i,
            Err(e) => {
                out.problems.push((
                    format!(
                        "its {role} certificate {} is unreadable: {e}",
                        cert_path.display()
                    ),
                    REISSUE,
                ));
                continue;
            }
        };
        match ca {
            Some(ca) if cert::chains_to(pem_text, ca) => {}
            Some(_) => out.problems.push((
                format!(
                    "its {role} certificate {} (issuer {:?}) does not verify against the CA in ca_file {ca_file}",
                    cert_path.display(),
                    info.issuer
                ),
                CHAIN,
            )),
            None => out.problems.push((
                format!(
                    "its {role} certificate {} cannot be verified: ca_file {ca_file} holds no CA certificate",
                    cert_path.display()
                ),
                CHAIN,
            )),
        }
        if now >= info.not_after {
            out.problems.push((
                format!(
                    "its {role} certificate {} expired on {}",
                    cert_path.display(),
                    cert::date(info.not_after)
                ),
                REISSUE,
            ));
        } else if now < info.not_before {
            out.problems.push((
                format!(
                    "its {role} certificate {} is not valid before {}",
                    cert_path.display(),
                    cert::date(info.not_before)
                ),
                REISSUE,
            ));
        } else {
            let left = info.days_left(now);
            if left < d.tls.renew_before_days {
                out.expiring.push(format!(
                    "{}'s {role} certificate {} expires in {left} day{} (on {}, renew_before_days = {}): renew it with your CA and put it in place; etcd reads it at each new connection, so nothing restarts",
                    m.name,
                    cert_path.display(),
                    if left == 1 { "" } else { "s" },
                    cert::date(info.not_after),
                    d.tls.renew_before_days
                ));
            }
        }
        let missing: Vec<String> = external_sans(m)
            .iter()
            .filter(|s| !cert::covers(&info.sans, s))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            let has: Vec<String> = info.sans.iter().map(ToString::to_string).collect();
            out.problems.push((
                format!(
                    "its {role} certificate {} is not valid for {} (its names: {})",
                    cert_path.display(),
                    missing.join(", "),
                    if has.is_empty() {
                        "none".to_owned()
                    } else {
                        has.join(", ")
                    }
                ),
                REISSUE,
            ));
        }
    }
    if d.tls.peer || d.tls.client_cert_auth {
        match (&c.ca, ca) {
            (None, _) => out.problems.push((
                format!(
                    "its trusted CA file {} is not on its host",
                    paths.ca.display()
                ),
                PLACE,
            )),
            (Some(trusted), Some(ca))
                if cert::bundle_fingerprints(trusted)
                    .is_disjoint(&cert::bundle_fingerprints(ca)) =>
            {
                out.problems.push((
                    format!(
                        "its trusted CA file {} does not hold the CA in ca_file {ca_file}",
                        paths.ca.display()
                    ),
                    CHAIN,
                ));
            }
            _ => {}
        }
    }
    out
}
