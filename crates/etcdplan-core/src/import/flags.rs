//! etcd's command-line flags as etcd's own `flag.FlagSet` reads them: the table of
//! flags (name, type, the minor versions that know it), Go's flag syntax, the
//! `ETCD_*` variable of each flag, and the typed value each one parses to.
//!
//! The table was taken from etcd's source (`etcdmain/config.go` of v3.4.45,
//! `server/etcdmain/config.go` of v3.5.33, `server/embed/config.go` and
//! `server/etcdmain/config.go` of v3.6.14), so an import is exact for those
//! versions: a flag etcd would refuse is an error here too, not a guess.

use std::time::Duration;

use super::Value;

/// How etcd parses a flag's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `fs.StringVar`.
    Str,
    /// `fs.BoolVar`: `--flag` alone is true; a value needs `=`.
    Bool,
    /// `fs.UintVar`, `Uint64Var`, `flags.NewUint32Value`.
    Uint,
    /// `fs.IntVar`, `Int64Var`.
    Int,
    /// `fs.DurationVar` (Go's `time.ParseDuration`).
    Duration,
    /// A comma-separated list of URLs (`flags.NewUniqueURLsWithExceptions`).
    Urls,
    /// A comma-separated list of strings (`flags.NewStringsValue`, `NewUniqueStringsValue`).
    Strings,
    /// One of a fixed set of words (`flags.NewSelectiveStringValue`).
    Enum(&'static [&'static str]),
    /// Accepted for compatibility and ignored by etcd (`flags.IgnoredFlag`, a boolean flag).
    Ignored,
}

/// etcd 3.4.
pub const V34: u8 = 1;
/// etcd 3.5.
pub const V35: u8 = 2;
/// etcd 3.6.
pub const V36: u8 = 4;
const ALL: u8 = V34 | V35 | V36;

use Kind::{Bool, Duration as Dur, Int, Str, Strings, Uint, Urls};

/// One flag etcd defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// The name without dashes, which is also the setting's key in [`super::Settings`].
    pub name: &'static str,
    /// How its text is parsed.
    pub kind: Kind,
    /// The minor versions that define it ([`V34`] | [`V35`] | [`V36`]).
    pub versions: u8,
}

const CLUSTER_STATE: Kind = Kind::Enum(&["new", "existing"]);
const FALLBACK: Kind = Kind::Enum(&["exit", "proxy"]);
const PROXY: Kind = Kind::Enum(&["off", "readonly", "on"]);
const V2_DEPRECATION: Kind = Kind::Enum(&["not-yet", "write-only", "write-only-drop-data", "gone"]);

#[rustfmt::skip]
const TABLE: &[(&str, Kind, u8)] = &[
    ("advertise-client-urls", Urls, ALL),
    ("auth-token", Str, ALL),
    ("auth-token-ttl", Uint, ALL),
    ("auto-compaction-mode", Str, ALL),
    ("auto-compaction-retention", Str, ALL),
    ("auto-tls", Bool, ALL),
    ("backend-batch-interval", Dur, ALL),
    ("backend-batch-limit", Int, ALL),
    ("backend-bbolt-freelist-type", Str, V35 | V36),
    ("bcrypt-cost", Uint, ALL),
    ("bootstrap-defrag-threshold-megabytes", Uint, V36),
    ("cert-file", Str, ALL),
    ("cipher-suites", Strings, ALL),
    ("client-cert-allowed-hostname", Strings, ALL),
    ("client-cert-auth", Bool, ALL),
    ("client-cert-file", Str, V35 | V36),
    ("client-crl-file", Str, ALL),
    ("client-key-file", Str, V35 | V36),
    ("compact-hash-check-time", Dur, V36),
    ("compaction-batch-limit", Int, V36),
    ("compaction-sleep-interval", Dur, V36),
    ("config-file", Str, ALL),
    ("corrupt-check-time", Dur, V36),
    ("cors", Urls, ALL),
    ("data-dir", Str, ALL),
    ("debug", Bool, V34),
    ("discovery", Str, ALL),
    ("discovery-cacert", Str, V36),
    ("discovery-cert", Str, V36),
    ("discovery-dial-timeout", Dur, V36),
    ("discovery-endpoints", Strings, V36),
    ("discovery-fallback", FALLBACK, ALL),
    ("discovery-insecure-skip-tls-verify", Bool, V36),
    ("discovery-insecure-transport", Bool, V36),
    ("discovery-keepalive-time", Dur, V36),
    ("discovery-keepalive-timeout", Dur, V36),
    ("discovery-key", Str, V36),
    ("discovery-password", Str, V36),
    ("discovery-proxy", Str, ALL),
    ("discovery-request-timeout", Dur, V36),
    ("discovery-srv", Str, ALL),
    ("discovery-srv-name", Str, ALL),
    ("discovery-token", Str, V36),
    ("discovery-user", Str, V36),
    ("distributed-tracing-address", Str, V36),
    ("distributed-tracing-instance-id", Str, V36),
    ("distributed-tracing-sampling-rate", Int, V36),
    ("distributed-tracing-service-name", Str, V36),
    ("downgrade-check-time", Dur, V36),
    ("election-timeout", Uint, ALL),
    ("enable-distributed-tracing", Bool, V36),
    ("enable-grpc-gateway", Bool, ALL),
    ("enable-log-rotation", Bool, V35 | V36),
    ("enable-pprof", Bool, ALL),
    ("enable-v2", Bool, V34 | V35),
    ("experimental-backend-bbolt-freelist-type", Str, V34),
    ("experimental-bootstrap-defrag-threshold-megabytes", Uint, V35 | V36),
    ("experimental-compact-hash-check-enabled", Bool, V35 | V36),
    ("experimental-compact-hash-check-time", Dur, V35 | V36),
    ("experimental-compaction-batch-limit", Int, ALL),
    ("experimental-compaction-sleep-interval", Dur, V35 | V36),
    ("experimental-corrupt-check-time", Dur, ALL),
    ("experimental-distributed-tracing-address", Str, V35 | V36),
    ("experimental-distributed-tracing-instance-id", Str, V35 | V36),
    ("experimental-distributed-tracing-sampling-rate", Int, V35 | V36),
    ("experimental-distributed-tracing-service-name", Str, V35 | V36),
    ("experimental-downgrade-check-time", Dur, V35 | V36),
    ("experimental-enable-distributed-tracing", Bool, V35 | V36),
    ("experimental-enable-lease-checkpoint", Bool, ALL),
    ("experimental-enable-lease-checkpoint-persist", Bool, ALL),
    ("experimental-enable-v2v3", Str, V34 | V35),
    ("experimental-initial-corrupt-check", Bool, ALL),
    ("experimental-memory-mlock", Bool, V35 | V36),
    ("experimental-peer-skip-client-san-verification", Bool, ALL),
    ("experimental-snapshot-catchup-entries", Uint, V35 | V36),
    ("experimental-stop-grpc-service-on-defrag", Bool, V35 | V36),
    ("experimental-txn-mode-write-with-shared-buffer", Bool, V35 | V36),
    ("experimental-warning-apply-duration", Dur, ALL),
    ("experimental-warning-unary-request-duration", Dur, V36),
    ("experimental-watch-progress-notify-interval", Dur, ALL),
    ("force-new-cluster", Bool, ALL),
    ("grpc-keepalive-interval", Dur, ALL),
    ("grpc-keepalive-min-time", Dur, ALL),
    ("grpc-keepalive-timeout", Dur, ALL),
    ("heartbeat-interval", Uint, ALL),
    ("host-whitelist", Strings, ALL),
    ("initial-advertise-peer-urls", Urls, ALL),
    ("initial-cluster", Str, ALL),
    ("initial-cluster-state", CLUSTER_STATE, ALL),
    ("initial-cluster-token", Str, ALL),
    ("initial-election-tick-advance", Bool, ALL),
    ("key-file", Str, ALL),
    ("listen-client-http-urls", Urls, ALL),
    ("listen-client-urls", Urls, ALL),
    ("listen-metrics-urls", Urls, ALL),
    ("listen-peer-urls", Urls, ALL),
    ("log-format", Str, V36),
    ("log-level", Str, ALL),
    ("log-output", Strings, V34),
    ("log-outputs", Strings, ALL),
    ("log-package-levels", Str, V34),
    ("log-rotation-config-json", Str, V35 | V36),
    ("logger", Str, ALL),
    ("max-concurrent-streams", Uint, ALL),
    ("max-learners", Int, V36),
    ("max-request-bytes", Uint, ALL),
    ("max-snapshots", Uint, ALL),
    ("max-txn-ops", Uint, ALL),
    ("max-wals", Uint, ALL),
    ("memory-mlock", Bool, V36),
    ("metrics", Str, ALL),
    ("name", Str, ALL),
    ("next-cluster-version-compatible", Bool, V34),
    ("peer-auto-tls", Bool, ALL),
    ("peer-cert-allowed-cn", Strings, ALL),
    ("peer-cert-allowed-hostname", Strings, ALL),
    ("peer-cert-file", Str, ALL),
    ("peer-client-cert-auth", Bool, ALL),
    ("peer-client-cert-file", Str, V35 | V36),
    ("peer-client-key-file", Str, V35 | V36),
    ("peer-crl-file", Str, ALL),
    ("peer-key-file", Str, ALL),
    ("peer-skip-client-san-verification", Bool, V36),
    ("peer-trusted-ca-file", Str, ALL),
    ("pre-vote", Bool, ALL),
    ("proxy", PROXY, V34 | V35),
    ("proxy-dial-timeout", Uint, V34 | V35),
    ("proxy-failure-wait", Uint, V34 | V35),
    ("proxy-read-timeout", Uint, V34 | V35),
    ("proxy-refresh-interval", Uint, V34 | V35),
    ("proxy-write-timeout", Uint, V34 | V35),
    ("quota-backend-bytes", Int, ALL),
    ("raft-read-timeout", Dur, V35 | V36),
    ("raft-write-timeout", Dur, V35 | V36),
    ("self-signed-cert-validity", Uint, V35 | V36),
    ("snapshot-catchup-entries", Uint, V36),
    ("snapshot-count", Uint, ALL),
    ("socket-reuse-address", Bool, V35 | V36),
    ("socket-reuse-port", Bool, V35 | V36),
    ("strict-reconfig-check", Bool, ALL),
    ("tls-max-version", Str, ALL),
    ("tls-min-version", Str, ALL),
    ("trusted-ca-file", Str, ALL),
    ("unsafe-no-fsync", Bool, ALL),
    ("v2-deprecation", V2_DEPRECATION, V35 | V36),
    ("version", Bool, ALL),
    ("wal-dir", Str, ALL),
    ("warning-apply-duration", Dur, V36),
    ("warning-unary-request-duration", Dur, V36),
    ("watch-progress-notify-interval", Dur, V36),
    ("feature-gates", Str, V36),
    // etcd accepts these for compatibility with etcd 2 and ignores them.
    ("cluster-active-size", Kind::Ignored, ALL),
    ("cluster-remove-delay", Kind::Ignored, ALL),
    ("cluster-sync-interval", Kind::Ignored, ALL),
    ("config", Kind::Ignored, ALL),
    ("force", Kind::Ignored, ALL),
    ("max-result-buffer", Kind::Ignored, ALL),
    ("max-retry-attempts", Kind::Ignored, ALL),
    ("peer-heartbeat-interval", Kind::Ignored, ALL),
    ("peer-election-timeout", Kind::Ignored, ALL),
    ("retry-interval", Kind::Ignored, ALL),
    ("snapshot", Kind::Ignored, ALL),
    ("v", Kind::Ignored, ALL),
    ("vv", Kind::Ignored, ALL),
];

/// The flag of that name (without dashes), in any version.
pub fn lookup(name: &str) -> Option<Flag> {
    TABLE
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(name, kind, versions)| Flag {
            name,
            kind,
            versions,
        })
}

/// The version bit of a minor version of etcd 3, if the table covers it.
pub fn version_bit(minor: u32) -> Option<u8> {
    match minor {
        4 => Some(V34),
        5 => Some(V35),
        6 => Some(V36),
        _ => None,
    }
}

/// etcd's `flags.FlagToEnv("ETCD", name)`: `initial-cluster-token` → `ETCD_INITIAL_CLUSTER_TOKEN`.
pub fn env_name(flag: &str) -> String {
    format!("ETCD_{}", flag.replace('-', "_").to_uppercase())
}

/// The flag an `ETCD_*` variable sets, if etcd has one.
pub fn for_env(var: &str) -> Option<Flag> {
    TABLE
        .iter()
        .find(|(n, _, _)| env_name(n) == var)
        .and_then(|(n, _, _)| lookup(n))
}

/// A flag as written on a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUse {
    /// The flag.
    pub flag: Flag,
    /// Its text (`"true"` for a boolean flag given alone).
    pub text: String,
    /// The index in the arguments (after argv\[0\]) of the word that named the flag.
    pub arg: usize,
    /// The index of the word holding the value when it was the next word (`--name x`).
    pub value_arg: Option<usize>,
}

/// Why etcd would refuse a command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// Go's "bad flag syntax".
    #[error("bad flag syntax: {0}")]
    Syntax(String),
    /// Go's "flag provided but not defined".
    #[error("etcd has no flag -{0}")]
    Unknown(String),
    /// A non-boolean flag at the end with no value.
    #[error("flag -{0} needs an argument")]
    NeedsArgument(String),
    /// etcd's "'%s' is not a valid flag": a word that is not a flag, where etcd stops reading flags.
    #[error("{0:?} is not a valid flag (etcd refuses words that are not flags)")]
    NotAFlag(String),
}

/// Reads the arguments after argv\[0\] as Go's `flag.FlagSet.Parse` does: one or two
/// dashes, `-flag=value`, `-flag value` (not for booleans), `--` ends the flags.
pub fn parse_args(args: &[String]) -> Result<Vec<FlagUse>, FlagError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = args[i].as_str();
        if s.len() < 2 || !s.starts_with('-') {
            return Err(FlagError::NotAFlag(s.to_owned()));
        }
        let body = if let Some(rest) = s.strip_prefix("--") {
            if rest.is_empty() {
                // "--" ends the flags; etcd refuses anything after it.
                return match args.get(i + 1) {
                    Some(extra) => Err(FlagError::NotAFlag(extra.clone())),
                    None => Ok(out),
                };
            }
            rest
        } else {
            &s[1..]
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(FlagError::Syntax(s.to_owned()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag = lookup(name).ok_or_else(|| FlagError::Unknown(name.to_owned()))?;
        let arg = i;
        i += 1;
        let (text, value_arg) = match (inline, flag.kind) {
            (Some(v), _) => (v.to_owned(), None),
            (None, Kind::Bool | Kind::Ignored) => ("true".to_owned(), None),
            (None, _) => match args.get(i) {
                Some(v) => {
                    i += 1;
                    (v.clone(), Some(arg + 1))
                }
                None => return Err(FlagError::NeedsArgument(name.to_owned())),
            },
        };
        out.push(FlagUse {
            flag,
            text,
            arg,
            value_arg,
        });
    }
    Ok(out)
}

/// Parses a flag's (or an `ETCD_*` variable's) text as etcd does; the error says why
/// etcd would refuse it.
pub fn parse_value(kind: Kind, text: &str) -> Result<Value, String> {
    match kind {
        Kind::Str | Kind::Ignored => Ok(Value::Str(text.to_owned())),
        Kind::Bool => parse_bool(text).map(Value::Bool),
        Kind::Uint => parse_uint(text).map(Value::Uint),
        Kind::Int => parse_int(text).map(Value::Int),
        Kind::Duration => parse_go_duration(text).map(Value::Duration),
        Kind::Urls | Kind::Strings => Ok(Value::List(split_list(text))),
        Kind::Enum(words) => {
            if words.contains(&text) {
                Ok(Value::Str(text.to_owned()))
            } else {
                Err(format!("{text:?} is not one of {}", words.join(", ")))
            }
        }
    }
}

/// A comma-separated list as etcd splits it (an empty text is an empty list).
pub fn split_list(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split(',').map(|s| s.trim().to_owned()).collect()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean")),
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x`, `0o`, `0b`, or a leading `0` for octal.
fn parse_uint(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not an unsigned integer");
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (r, 2)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (r, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return Err(bad());
    }
    u64::from_str_radix(digits, radix).map_err(|_| bad())
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an integer");
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n = i128::from(parse_uint(rest).map_err(|_| bad())?);
    i64::try_from(if neg { -n } else { n }).map_err(|_| bad())
}

/// Go's `time.ParseDuration` (`"300ms"`, `"1h2m"`, `"1.5s"`, `"0"`); etcd's negative
/// durations make no sense for any of its flags and are refused here.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as \"300ms\" or \"1m30s\"");
    let rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(format!("{s:?} is a negative duration"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos: f64 = 0.0;
    let mut r = rest;
    while !r.is_empty() {
        let num_end = r
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num = &r[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        r = &r[num_end..];
        let unit_end = r
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(r.len());
        let per = match &r[..unit_end] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        nanos += n * per;
        r = &r[unit_end..];
    }
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(bad());
    }
    // Whole nanoseconds, as Go keeps them.
    Ok(Duration::from_nanos(nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|&a| a.to_owned()).collect()
    }

    #[test]
    fn go_flag_syntax_one_or_two_dashes_equals_or_next_word() {
        let uses = parse_args(&args(&[
            "-name",
            "a",
            "--data-dir=/d",
            "--client-cert-auth",
            "-peer-client-cert-auth=false",
            "--snapshot-count",
            "-5",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(&str, &str)> = uses
            .iter()
            .map(|u| (u.flag.name, u.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("name", "a"),
                ("data-dir", "/d"),
                ("client-cert-auth", "true"),
                ("peer-client-cert-auth", "false"),
                // a value word is taken even when it starts with a dash, as Go does
                ("snapshot-count", "-5"),
            ]
        );
        assert_eq!(uses[0].value_arg, Some(1));
    }

    #[test]
    fn what_etcd_refuses_on_its_command_line() {
        assert_eq!(
            parse_args(&args(&["--client-cert-auth", "false"])),
            Err(FlagError::NotAFlag("false".into()))
        );
        assert_eq!(
            parse_args(&args(&["--no-such-flag=1"])),
            Err(FlagError::Unknown("no-such-flag".into()))
        );
        assert_eq!(
            parse_args(&args(&["--name"])),
            Err(FlagError::NeedsArgument("name".into()))
        );
        assert_eq!(
            parse_args(&args(&["---name=x"])),
            Err(FlagError::Syntax("---name=x".into()))
        );
        assert_eq!(
            parse_args(&args(&["--name=a", "--", "x"])),
            Err(FlagError::NotAFlag("x".into()))
        );
        assert!(parse_args(&args(&["--name=a", "--"])).is_ok());
    }

    #[test]
    fn values_parse_as_go_parses_them() {
        assert_eq!(parse_value(Kind::Uint, "0x10"), Ok(Value::Uint(16)));
        assert_eq!(parse_value(Kind::Uint, "010"), Ok(Value::Uint(8)));
        assert!(parse_value(Kind::Uint, "-1").is_err());
        assert_eq!(
            parse_value(Kind::Int, "-8589934592"),
            Ok(Value::Int(-8_589_934_592))
        );
        assert_eq!(parse_value(Kind::Bool, "T"), Ok(Value::Bool(true)));
        assert!(parse_value(Kind::Bool, "yes").is_err());
        assert_eq!(
            parse_value(Kind::Duration, "1m30.5s"),
            Ok(Value::Duration(Duration::from_millis(90_500)))
        );
        assert_eq!(
            parse_value(Kind::Duration, "0"),
            Ok(Value::Duration(Duration::ZERO))
        );
        assert!(parse_value(Kind::Duration, "10").is_err());
        assert!(parse_value(CLUSTER_STATE, "old").is_err());
        assert_eq!(
            parse_value(Kind::Urls, "http://a:1,http://b:2"),
            Ok(Value::List(vec!["http://a:1".into(), "http://b:2".into()]))
        );
    }

    #[test]
    fn env_names_follow_flag_to_env() {
        assert_eq!(
            env_name("initial-cluster-token"),
            "ETCD_INITIAL_CLUSTER_TOKEN"
        );
        assert_eq!(
            for_env("ETCD_HEARTBEAT_INTERVAL").map(|f| f.name),
            Some("heartbeat-interval")
        );
        assert_eq!(for_env("ETCD_NO_SUCH"), None);
        let heartbeat = lookup("heartbeat-interval").map(|f| f.versions);
        assert_eq!(heartbeat, Some(V34 | V35 | V36));
        assert_eq!(lookup("enable-v2").map(|f| f.versions), Some(V34 | V35));
    }
}
