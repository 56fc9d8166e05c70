//! The settings etcd lets members differ in (`snapshot_count`, `log_level`,
//! `listen_metrics_urls`, `extra_listen_addresses`, `wal_dir`, `extra`):
//! `[etcd]` overridden by a `[[member]]`, resolved for each member, and the
//! pass-through keys of `extra` checked against the keys etcd knows.
//!
//! `heartbeat_interval`, `election_timeout` and `max_request_bytes` are not
//! here: they must be equal on all members, so a `[[member]]` cannot set them
//! (`check` says so, see `raw::CLUSTER_WIDE_ONLY`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use toml::Spanned;

use super::{PathSide, Validator};
use crate::config::desired::{LogLevel, MemberSettings, Transport};
use crate::config::diagnostic::{Problem, did_you_mean};
use crate::config::etcd_keys::{self, Successor};
use crate::config::raw::{ExtraValue, RawEtcdfile, RawLogLevel, RawMember};
use crate::hostfiles::{listen_host, yaml_quote};
use crate::model::{Address, Endpoint, MemberName, MinorVersion};

/// A list of strings as the etcdfile holds it.
type RawList = Spanned<Vec<Spanned<String>>>;
/// An `extra` table as the etcdfile holds it.
type RawExtra = Spanned<BTreeMap<Spanned<String>, Spanned<ExtraValue>>>;

/// Config-file keys etcdplan writes itself, and the etcdfile setting that
/// decides each: such a key in `extra` would be written twice.
const MODELLED: &[(&str, &str)] = &[
    ("name", "the member's `name`"),
    ("data-dir", "`data_dir` in [etcd]"),
    ("wal-dir", "`wal_dir` in [etcd] or the [[member]]"),
    (
        "listen-client-urls",
        "`client_port` and `extra_listen_addresses`",
    ),
    (
        "advertise-client-urls",
        "the member's `address` and `client_port`",
    ),
    ("listen-peer-urls", "the member's `address` and `peer_port`"),
    (
        "initial-advertise-peer-urls",
        "the member's `address` and `peer_port`",
    ),
    ("initial-cluster", "the [[member]] list"),
    (
        "initial-cluster-state",
        "nothing: etcdplan sets it to new or existing as the plan needs",
    ),
    (
        "initial-cluster-token",
        "`initial_cluster_token` in [cluster]",
    ),
    ("quota-backend-bytes", "`quota_backend_bytes` in [etcd]"),
    ("auto-compaction-mode", "`auto_compaction_mode` in [etcd]"),
    (
        "auto-compaction-retention",
        "`auto_compaction_retention` in [etcd]",
    ),
    ("heartbeat-interval", "`heartbeat_interval` in [etcd]"),
    ("election-timeout", "`election_timeout` in [etcd]"),
    (
        "snapshot-count",
        "`snapshot_count` in [etcd] or the [[member]]",
    ),
    ("max-request-bytes", "`max_request_bytes` in [etcd]"),
    (
        "listen-metrics-urls",
        "`listen_metrics_urls` in [etcd] or the [[member]]",
    ),
    ("log-level", "`log_level` in [etcd] or the [[member]]"),
    ("client-transport-security", "[tls]"),
    ("peer-transport-security", "[tls]"),
    (
        "strict-reconfig-check",
        "nothing: etcdplan always sets it to true",
    ),
    ("enable-v2", "nothing: etcdplan always sets it to false"),
    (
        "logger",
        "nothing: etcdplan reads etcd's log as zap on stderr",
    ),
    (
        "log-outputs",
        "nothing: etcdplan reads etcd's log from stderr",
    ),
    (
        "force-new-cluster",
        "nothing: a permanent force-new-cluster rewrites membership at every restart; recover by hand",
    ),
];

impl Validator<'_> {
    /// The member's settings: its own values over `[etcd]`'s. `version` is
    /// the minor version `[cluster]` pins, which decides the keys `extra` may use.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn member_settings(
        &mut self,
        raw: &RawEtcdfile,
        rm: &RawMember,
        name: &MemberName,
        address: &Address,
        client_port: u16,
        peer_port: u16,
        transport: Transport,
        version: Option<MinorVersion>,
    ) -> Option<(Option<PathBuf>, MemberSettings)> {
        let e = &raw.etcd;
        let mut ok = true;
        let wal_dir = match rm.wal_dir.as_ref().or(e.wal_dir.as_ref()) {
            None => None,
            Some(w) => {
                let p = self.path(w, Some(name), PathSide::Host(transport), true);
                ok &= p.is_some();
                p
            }
        };
        let snapshot_count = rm
            .snapshot_count
            .as_ref()
            .or(e.snapshot_count.as_ref())
            .map(|s| *s.get_ref());
        let log_level = rm
            .log_level
            .as_ref()
            .or(e.log_level.as_ref())
            .map(|l| log_level(*l.get_ref()));
        let metrics = match rm
            .listen_metrics_urls
            .as_ref()
            .or(e.listen_metrics_urls.as_ref())
        {
            None => Some(Vec::new()),
            Some(list) => self.metrics_urls(raw, list, address, client_port, peer_port),
        };
        let extra_addresses = match rm
            .extra_listen_addresses
            .as_ref()
            .or(e.extra_listen_addresses.as_ref())
        {
            None => Some(Vec::new()),
            Some(list) => self.extra_addresses(list, name, address),
        };
        let mut extra = BTreeMap::new();
        let mut feature_gates = BTreeMap::new();
        // The member's own table overrides `[etcd.extra]`, setting by setting
        // (whichever name of a renamed key each uses).
        for table in [e.extra.as_ref(), rm.extra.as_ref()].into_iter().flatten() {
            match self.extra(table, version) {
                Some((values, gates)) => {
                    extra.extend(values);
                    feature_gates.extend(gates);
                }
                None => ok = false,
            }
        }
        let settings = MemberSettings {
            snapshot_count,
            log_level,
            listen_metrics_urls: metrics?,
            extra_listen_addresses: extra_addresses?,
            extra,
            feature_gates,
        };
        ok.then_some((wal_dir, settings))
    }

    /// `listen_metrics_urls` for one member: `{address}` resolved, each one a
    /// URL etcd can bind.
    fn metrics_urls(
        &mut self,
        raw: &RawEtcdfile,
        list: &RawList,
        address: &Address,
        client_port: u16,
        peer_port: u16,
    ) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        let client_tls = raw.tls.client.as_ref().is_some_and(|c| *c.get_ref())
            || raw
                .tls
                .client_cert_auth
                .as_ref()
                .is_some_and(|c| *c.get_ref());
        for u in list.get_ref() {
            let text = u.get_ref();
            let resolved = text.replace("{address}", &listen_host(address));
            let why = if resolved.contains(['{', '}']) {
                Some("the only placeholder is {address}".to_owned())
            } else {
                match Endpoint::parse(&resolved) {
                    None => Some("expected http://HOST:PORT or https://HOST:PORT".to_owned()),
                    Some(ep) => match &ep.host {
                        Address::Dns(h) if h != "localhost" => Some(format!(
                            "etcd binds only IP addresses and localhost, not {h:?}"
                        )),
                        _ if ep.port.get() == client_port || ep.port.get() == peer_port => Some(
                            format!("port {} is the member's client or peer port", ep.port),
                        ),
                        _ if ep.scheme.to_string() == "https" && !client_tls => Some(
                            "https metrics use the client certificate: set client = true in [tls]"
                                .to_owned(),
                        ),
                        _ => None,
                    },
                }
            };
            match why {
                Some(why) => {
                    ok = false;
                    self.push(
                        Problem::error(
                            "etcdfile::bad-metrics-url",
                            format!("listen_metrics_urls: {text:?} cannot be used"),
                        )
                        .label(u.span(), why)
                        .help("write URLs such as \"http://{address}:2381\" or \"http://127.0.0.1:2381\""),
                    );
                }
                None => out.push(resolved),
            }
        }
        ok.then_some(out)
    }

    /// `extra_listen_addresses` for one member: IP addresses besides its own.
    fn extra_addresses(
        &mut self,
        list: &RawList,
        name: &MemberName,
        address: &Address,
    ) -> Option<Vec<IpAddr>> {
        let mut out: Vec<IpAddr> = Vec::new();
        let mut ok = true;
        for a in list.get_ref() {
            let why = match a.get_ref().parse::<IpAddr>() {
                Err(_) => Some("not an IP address (etcd binds only IPs)".to_owned()),
                Ok(ip) if ip.is_unspecified() => Some(format!(
                    "{ip} would clash with the listener on {name}'s own address"
                )),
                Ok(_) if matches!(address, Address::Dns(_)) => Some(format!(
                    "{name} has a DNS address, so it listens on every address (0.0.0.0) already"
                )),
                Ok(ip) if address == &Address::Ip(ip) => {
                    Some(format!("{ip} is {name}'s own address"))
                }
                Ok(ip) if out.contains(&ip) => Some(format!("{ip} is listed twice")),
                Ok(ip) => {
                    out.push(ip);
                    None
                }
            };
            if let Some(why) = why {
                ok = false;
                self.push(
                    Problem::error(
                        "etcdfile::bad-listen-address",
                        format!("extra_listen_addresses: {:?} cannot be used", a.get_ref()),
                    )
                    .label(a.span(), why)
                    .help("list other IP addresses of the host, such as \"127.0.0.1\""),
                );
            }
        }
        ok.then_some(out)
    }

    /// An `extra` table: each key checked against the keys etcd `version`
    /// knows (every known version's when none is pinned), each value as YAML;
    /// a renamed experimental key under its 3.6 name, and the feature gates
    /// (from `feature-gates` and the experimental booleans that became gates)
    /// apart. Two names of one setting in one table are refused: etcd 3.6
    /// will not start with both.
    fn extra(&mut self, table: &RawExtra, version: Option<MinorVersion>) -> Option<ExtraTable> {
        let mut out = BTreeMap::new();
        let mut gates = BTreeMap::new();
        // Each setting → the key of this table that set it.
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        let mut ok = true;
        for (k, v) in table.get_ref() {
            let key = k.get_ref().as_str();
            if let Some((_, instead)) = MODELLED.iter().find(|(m, _)| *m == key) {
                ok = false;
                self.push(
                    Problem::error(
                        "etcdfile::modelled-extra-key",
                        format!("`{key}` is written by etcdplan and cannot be set in extra"),
                    )
                    .label(k.span(), "etcdplan sets this key itself")
                    .help(format!("use {instead}")),
                );
                continue;
            }
            if let Some(problem) = unknown_key(key, k.span(), version) {
                if problem.level == crate::config::Level::Error {
                    ok = false;
                }
                self.push(problem);
            }
            let mut twice = |this: &mut Self, setting: String| match seen.get(&setting) {
                Some(first) => {
                    this.push(
                        Problem::error(
                            "etcdfile::extra-set-twice",
                            format!("extra sets `{setting}` twice: as `{first}` and as `{key}`"),
                        )
                        .label(k.span(), format!("the same etcd setting as `{first}`"))
                        .help(
                            "keep one of them: etcd refuses to start with both names of a setting",
                        ),
                    );
                    false
                }
                None => {
                    seen.insert(setting, key);
                    true
                }
            };
            if key == "feature-gates" {
                let Some(parsed) = self.feature_gates(v, version) else {
                    ok = false;
                    continue;
                };
                for (gate, on) in parsed {
                    ok &= twice(self, gate.to_owned());
                    gates.insert(gate.to_owned(), on);
                }
                continue;
            }
            match etcd_keys::migration_of(key).map(|m| m.new) {
                Some(Successor::Gate(gate)) => {
                    let ExtraValue::Bool(on) = v.get_ref() else {
                        ok = false;
                        self.push(
                            Problem::error(
                                "etcdfile::bad-extra-value",
                                format!("`{key}` takes true or false"),
                            )
                            .label(v.span(), "not a boolean")
                            .help(format!("write {key} = true (it is the feature gate {gate} from etcd 3.6 on)")),
                        );
                        continue;
                    };
                    ok &= twice(self, gate.to_owned());
                    gates.insert(gate.to_owned(), *on);
                }
                Some(Successor::Renamed(new)) => {
                    ok &= twice(self, new.to_owned());
                    out.insert(new.to_owned(), yaml_value(v.get_ref()));
                }
                None => {
                    ok &= twice(self, key.to_owned());
                    out.insert(key.to_owned(), yaml_value(v.get_ref()));
                }
            }
        }
        ok.then_some((out, gates))
    }

    /// The gates of a `feature-gates` value (`"A=true,B=false"`), each one
    /// a gate etcd `version` knows: etcd refuses the whole line for one it
    /// does not ("unrecognized feature gate").
    fn feature_gates(
        &mut self,
        value: &Spanned<ExtraValue>,
        version: Option<MinorVersion>,
    ) -> Option<Vec<(&'static str, bool)>> {
        let bad = |why: String| {
            Problem::error(
                "etcdfile::bad-feature-gate",
                format!("feature-gates: {why}"),
            )
            .label(value.span(), "etcd refuses this line")
        };
        let ExtraValue::Text(text) = value.get_ref() else {
            self.push(
                bad("expected a string such as \"InitialCorruptCheck=true\"".into())
                    .help("write feature-gates = \"Gate=true,Other=false\""),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, on) = part.split_once('=').unwrap_or((part, ""));
            let (name, on) = (name.trim(), on.trim());
            let on = match on {
                "true" => true,
                "false" => false,
                _ => {
                    ok = false;
                    self.push(
                        bad(format!("`{part}` is not Gate=true or Gate=false")).help(
                            "each gate takes true or false, as in \"InitialCorruptCheck=true\"",
                        ),
                    );
                    continue;
                }
            };
            let known = match version.filter(|v| etcd_keys::keys(*v).is_some()) {
                Some(v) => etcd_keys::gate_known_in(v, name),
                None => etcd_keys::feature_gate(name).is_some(),
            };
            match etcd_keys::feature_gate(name) {
                Some(g) if known => out.push((g.name, on)),
                found => {
                    ok = false;
                    let v = version.map_or("3.6 or 3.7".to_owned(), |v| v.to_string());
                    let why = match found {
                        Some(g) => format!(
                            "etcd {v} has no feature gate `{name}` (it is new in {}): unrecognized feature gate",
                            g.since
                        ),
                        None => format!(
                            "etcd {v} has no feature gate `{name}`: unrecognized feature gate"
                        ),
                    };
                    let names = etcd_keys::FEATURE_GATES.iter().map(|g| g.name);
                    let help = match did_you_mean(name, names) {
                        Some(m) if Some(m) != found.map(|g| g.name) => {
                            format!("did you mean `{m}`?")
                        }
                        _ => format!(
                            "the gates of etcd {v} are {}",
                            etcd_keys::FEATURE_GATES
                                .iter()
                                .filter(
                                    |g| version.is_none_or(|v| etcd_keys::gate_known_in(v, g.name))
                                )
                                .map(|g| g.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    self.push(bad(why).help(help));
                }
            }
        }
        ok.then_some(out)
    }
}

/// The plain keys and the feature gates of one `extra` table.
type ExtraTable = (BTreeMap<String, String>, BTreeMap<String, bool>);

/// What is wrong with `key` for etcd `version`: an error for a key it does
/// not know (naming where the key went or came from), a warning for one it
/// deprecated; None when it is fine.
fn unknown_key(
    key: &str,
    span: std::ops::Range<usize>,
    version: Option<MinorVersion>,
) -> Option<Problem> {
    let Some(v) = version.filter(|v| etcd_keys::keys(*v).is_some()) else {
        if etcd_keys::known_anywhere(key) {
            return None;
        }
        let all = etcd_keys::KNOWN_MINORS
            .iter()
            .filter_map(|&(major, minor)| etcd_keys::keys(MinorVersion { major, minor }))
            .flat_map(|ks| ks.iter().copied());
        let mut p = Problem::error(
            "etcdfile::unknown-extra-key",
            format!("no etcd version (3.4 to 3.7) has the config-file key `{key}`"),
        )
        .label(span, "unknown to etcd");
        p = match did_you_mean(key, all) {
            Some(m) => p.help(format!("did you mean `{m}`?")),
            None => p.help("extra takes etcd's config-file names, such as `experimental-initial-corrupt-check`"),
        };
        return Some(p);
    };
    let keys = etcd_keys::keys(v).unwrap_or_default();
    if keys.contains(&key) {
        let deprecated =
            v >= MinorVersion { major: 3, minor: 6 } && key.starts_with("experimental-");
        return etcd_keys::replacement(key).filter(|_| deprecated).map(|r| {
            Problem::warning(
                "etcdfile::deprecated-extra-key",
                format!("`{key}` is deprecated in etcd {v} and removed in 3.7"),
            )
            .label(span, "deprecated")
            .help(format!("use {r} instead"))
        });
    }
    let (message, label) = match (
        etcd_keys::last_known_in(key),
        etcd_keys::first_known_in(key),
    ) {
        (Some(last), _) if last < v => (
            format!(
                "etcd {v} no longer has the config-file key `{key}` (the last version with it is {last})"
            ),
            format!("removed after etcd {last}"),
        ),
        (_, Some(first)) if first > v => (
            format!(
                "etcd {v} does not have the config-file key `{key}` yet (it is new in {first})"
            ),
            format!("only from etcd {first} on"),
        ),
        _ => (
            format!("etcd {v} has no config-file key `{key}`"),
            "unknown to this etcd version".to_owned(),
        ),
    };
    let mut p = Problem::error("etcdfile::unknown-extra-key", message).label(span, label);
    p = match (
        etcd_keys::replacement(key),
        did_you_mean(key, keys.iter().copied()),
    ) {
        (Some(r), _) => p.help(format!("use {r} instead ([cluster] version is {v})")),
        (None, Some(m)) => p.help(format!("did you mean `{m}`? ([cluster] version is {v})")),
        (None, None) => p.help(format!(
            "extra takes etcd {v}'s config-file names; etcd would silently ignore this key"
        )),
    };
    Some(p)
}

/// A value of `extra` as etcd's YAML file takes it.
fn yaml_value(v: &ExtraValue) -> String {
    match v {
        ExtraValue::Bool(b) => b.to_string(),
        ExtraValue::Integer(n) => n.to_string(),
        ExtraValue::Float(f) => format!("{f:?}"),
        ExtraValue::Text(s) => yaml_quote(s),
        ExtraValue::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| yaml_quote(i))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn log_level(l: RawLogLevel) -> LogLevel {
    match l {
        RawLogLevel::Debug => LogLevel::Debug,
        RawLogLevel::Info => LogLevel::Info,
        RawLogLevel::Warn => LogLevel::Warn,
        RawLogLevel::Error => LogLevel::Error,
        RawLogLevel::Panic => LogLevel::Panic,
        RawLogLevel::Fatal => LogLevel::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u32) -> Option<MinorVersion> {
        Some(MinorVersion { major: 3, minor })
    }

    #[test]
    fn extra_keys_are_checked_for_the_pinned_version() {
        let level = |k, ver| unknown_key(k, 0..1, ver).map(|p| (p.level, p.message));
        let must = |k, ver| match level(k, ver) {
            Some(found) => found,
            None => panic!("{k} passed for {ver:?}"),
        };
        assert_eq!(level("experimental-initial-corrupt-check", v(5)), None);
        assert_eq!(level("experimental-initial-corrupt-check", None), None);
        let (l, m) = must("experimental-initial-corrupt-check", v(6));
        assert_eq!(l, crate::config::Level::Warning, "{m}");
        let (l, m) = must("experimental-initial-corrupt-check", v(7));
        assert_eq!(l, crate::config::Level::Error);
        assert!(m.contains("no longer") && m.contains("3.6"), "{m}");
        let (_, m) = must("feature-gates", v(5));
        assert!(m.contains("new in 3.6"), "{m}");
        let (l, m) = must("no-such-key", None);
        assert_eq!(l, crate::config::Level::Error, "{m}");
        // Versions etcdplan has no table for fall back to every known key.
        assert_eq!(level("pre-vote", v(8)), None);
    }

    #[test]
    fn extra_values_render_as_yaml() {
        assert_eq!(yaml_value(&ExtraValue::Bool(true)), "true");
        assert_eq!(yaml_value(&ExtraValue::Integer(-3)), "-3");
        assert_eq!(yaml_value(&ExtraValue::Float(0.5)), "0.5");
        assert_eq!(yaml_value(&ExtraValue::Text("it's".into())), "'it''s'");
        assert_eq!(
            yaml_value(&ExtraValue::List(vec!["a".into(), "b".into()])),
            "['a', 'b']"
        );
    }
}
