//! Whether a member's certificates on its host still serve: present, keys
//! private, signed by the operator's CA, valid for the member's names, and not
//! about to expire. Pure: the host's files and the CA were read by `observe`.

use crate::config::{Desired, DesiredMember};
use crate::hostfiles::member_sans;
use crate::observe::HostFacts;
use crate::pki;

/// What a member's certificates need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertNeed {
    /// They serve as they are (or TLS is off).
    Fine,
    /// Issue them again, for this reason.
    Issue(String),
    /// They were signed by another CA than the one in `ca_dir`; issuing new
    /// ones would break trust between members, so this blocks the plan.
    ForeignCa(String),
}

/// Checks the certificates of a member that has run before.
pub fn check(
    d: &Desired,
    m: &DesiredMember,
    facts: &HostFacts,
    local_ca: Option<&str>,
    now: i64,
) -> CertNeed {
    if !d.tls.any() {
        return CertNeed::Fine;
    }
    let c = &facts.certs;
    let (Some(ca), Some(server), Some(peer)) = (&c.ca, &c.server, &c.peer) else {
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
    let Some(local) = local_ca else {
        return CertNeed::ForeignCa(format!(
            "{} has certificates, but ca_dir {} holds no CA to check them against",
            m.name,
            d.tls.ca_dir.display()
        ));
    };
    if ca.trim() != local.trim() {
        return CertNeed::ForeignCa(format!(
            "{}'s hosts trust another CA than the one in {}",
            m.name,
            d.tls.ca_dir.display()
        ));
    }
    let wanted = member_sans(m);
    for (role, pem_text) in [("server", server), ("peer", peer)] {
        if !pki::signed_by(pem_text, local) {
            return CertNeed::ForeignCa(format!(
                "{}'s {role} certificate was not signed by the CA in {}",
                m.name,
                d.tls.ca_dir.display()
            ));
        }
        let info = match pki::inspect(pem_text) {
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
                    pki::date(info.not_after)
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
