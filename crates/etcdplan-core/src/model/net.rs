//! Addresses, ports and the URLs etcd advertises.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU16;

/// A TCP port etcd listens on (never 0: etcd must advertise a fixed port).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Port(NonZeroU16);

impl Port {
    /// A port from a number, `None` for 0.
    pub fn new(n: u16) -> Option<Self> {
        NonZeroU16::new(n).map(Self)
    }

    /// The port number.
    pub fn get(self) -> u16 {
        self.0.get()
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a member is reached: an IP address or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A host name, checked against DNS syntax.
    Dns(String),
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The address is empty.
    #[error("the address is empty")]
    Empty,
    /// A URL was given where a bare host is expected.
    #[error("give a bare IP address or host name, not a URL")]
    Url,
    /// A `host:port` was given; ports have their own keys.
    #[error("give the port in client_port/peer_port, not in the address")]
    WithPort,
    /// Neither an IP address nor a valid DNS name.
    #[error("{0:?} is neither an IP address nor a valid host name")]
    Invalid(String),
}

impl Address {
    /// Parses an IP address or a host name.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.contains("://") {
            return Err(AddressError::Url);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
            && let Ok(ip) = inner.parse::<IpAddr>()
        {
            return Ok(Self::Ip(ip));
        }
        if s.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            return Err(AddressError::WithPort);
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let name = s.strip_suffix('.').unwrap_or(s);
        if name.len() <= 253 && name.split('.').all(label_ok) {
            Ok(Self::Dns(name.to_ascii_lowercase()))
        } else {
            Err(AddressError::Invalid(s.to_owned()))
        }
    }

    /// Whether this is a loopback address (members reached that way need it in their SANs).
    pub fn is_loopback(&self) -> bool {
        match self {
            Self::Ip(ip) => ip.is_loopback(),
            Self::Dns(n) => n == "localhost",
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Dns(n) => f.write_str(n),
        }
    }
}

super::text::as_text!(Address => Address::parse, Endpoint => Endpoint::parse);

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    /// Plain text.
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    /// The scheme for a listener with or without TLS.
    pub fn tls(on: bool) -> Self {
        if on { Self::Https } else { Self::Http }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Http => "http",
            Self::Https => "https",
        })
    }
}

/// A URL as etcd advertises it: `scheme://host:port`, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The host part.
    pub host: Address,
    /// The port.
    pub port: Port,
}

impl Endpoint {
    /// Parses `scheme://host:port` as etcd reports it in MemberList.
    pub fn parse(s: &str) -> Option<Self> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return None,
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':')?;
        let port = Port::new(port.parse().ok()?)?;
        let host = Address::parse(host).ok()?;
        Some(Self { scheme, host, port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(matches!(Address::parse("10.0.0.1"), Ok(Address::Ip(_))));
        assert!(matches!(
            Address::parse("etcd-1.example.com"),
            Ok(Address::Dns(_))
        ));
        assert_eq!(Address::parse("http://x"), Err(AddressError::Url));
        assert_eq!(Address::parse("10.0.0.1:2379"), Err(AddressError::WithPort));
        assert!(Address::parse("bad_host").is_err());
        assert_eq!(
            Address::parse("::1").map(|a| a.to_string()).ok().as_deref(),
            Some("[::1]")
        );
    }

    #[test]
    fn endpoints_round_trip() {
        for s in [
            "http://127.0.0.1:2380",
            "https://[::1]:2379",
            "https://etcd-1:2379",
        ] {
            let e = Endpoint::parse(s);
            assert_eq!(e.map(|e| e.to_string()).as_deref(), Some(s));
        }
        assert_eq!(Endpoint::parse("unix://x:1"), None);
        assert_eq!(Endpoint::parse("http://x:0"), None);
    }
}
