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
