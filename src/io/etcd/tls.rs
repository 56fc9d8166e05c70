//! What etcdplan presents to members that serve https. Keys never show in
//! `Debug` output.

/// What etcdplan presents to members that serve https: the CAs to trust and
/// its own client certificates (issued per run, in memory, never written).
#[derive(Clone)]
pub struct ClientTls {
    /// The CA certificates, PEM (the new and the previous one during a CA
    /// rotation, since members' certificates come from either).
    pub ca_pem: String,
    /// Client certificates in order of preference: one from the current CA and,
    /// during a rotation, one from the previous CA for members that do not
    /// trust the new one yet. Each member gets the first it accepts. None:
    /// the CA alone (members that do not ask for client certificates).
    pub identities: Vec<ClientIdentity>,
}

/// One client certificate and its key.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its key, PEM; never shown.
    pub key_pem: String,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls { .. }")
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity { .. }")
    }
}
