//! The `[etcd]` table: quota, compaction, the binary and where releases come
//! from, and the raft timings and request size every member must share.

use std::path::PathBuf;

use toml::Spanned;

use super::{PathSide, Validator};
use crate::config::desired::{BinarySource, EtcdSettings, Millis, Transport};
use crate::config::diagnostic::Problem;
use crate::config::raw::{RawCompactionMode, RawEtcdfile, SizeValue};
use crate::model::{ByteSize, Compaction, CompactionMode};

const DEFAULT_QUOTA: u64 = 2 << 30;
const QUOTA_WARN: u64 = 8 << 30;
/// etcd's defaults for the raft timings (`embed.NewConfig`).
const DEFAULT_HEARTBEAT_MS: u64 = 100;
const DEFAULT_ELECTION_MS: u64 = 1000;
/// etcd refuses longer election timeouts (`maxElectionMs` in embed/config.go).
const MAX_ELECTION_MS: u64 = 50_000;
/// Above this etcd warns at start (`recommendedMaxRequestBytes`, 10MiB).
const REQUEST_WARN: u64 = 10 << 20;

impl Validator<'_> {
    pub(super) fn etcd(&mut self, raw: &RawEtcdfile, transport: Transport) -> Option<EtcdSettings> {
        let e = &raw.etcd;
        let quota = match &e.quota_backend_bytes {
            None => Some(ByteSize(DEFAULT_QUOTA)),
            Some(q) => self.size(q),
        };
        if let (Some(q), Some(span)) = (quota, e.quota_backend_bytes.as_ref().map(Spanned::span)) {
            if q.bytes() > QUOTA_WARN {
                self.push(
                    Problem::warning(
                        "etcdfile::large-quota",
                        format!("quota_backend_bytes = {q} is above 8GiB"),
                    )
                    .label(span, "above etcd's suggested maximum")
                    .help("etcd warns above 8GiB: large databases make snapshots, restarts and defragmentation slow"),
                );
            } else if q.bytes() == 0 {
                self.push(
                    Problem::warning(
                        "etcdfile::zero-quota",
                        "quota_backend_bytes = 0 means etcd's default of 2GiB",
                    )
                    .label(span, "0 bytes"),
                );
            }
        }
        let mode = match e.auto_compaction_mode.as_ref().map(|m| *m.get_ref()) {
            Some(RawCompactionMode::Periodic) => CompactionMode::Periodic,
            Some(RawCompactionMode::Revision) | None => CompactionMode::Revision,
        };
        let compaction = match &e.auto_compaction_retention {
            None => Compaction::new(
                mode,
                match mode {
                    CompactionMode::Revision => "1000",
                    CompactionMode::Periodic => "1h",
                },
            )
            .ok(),
            Some(r) => match Compaction::new(mode, &r.get_ref().text()) {
                Ok(c) => Some(c),
                Err(msg) => {
                    let mut p = Problem::error(
                        "etcdfile::bad-retention",
                        "auto_compaction_retention does not fit auto_compaction_mode",
                    )
                    .label(r.span(), msg);
                    match &e.auto_compaction_mode {
                        Some(m) => p = p.label(m.span(), format!("the mode is {mode}")),
                        None => {
                            p = p.help(format!(
                                "auto_compaction_mode defaults to \"revision\"; set auto_compaction_mode = \"{}\" for a duration",
                                "periodic"
                            ));
                        }
                    }
                    self.push(p);
                    None
                }
            },
        };
        let binary = match &e.binary {
            None => Some(PathBuf::from("/usr/bin/etcd")),
            Some(b) => self.path(b, None, PathSide::Host(transport), false),
        };
        let binary_source = match &e.binary_source {
            None => Some(None),
            Some(b) => self.path(b, None, PathSide::Local, false).map(|path| {
                Some(BinarySource {
                    path,
                    span: b.span(),
                    releases: Vec::new(),
                })
            }),
        };
        let (heartbeat, election) = self.raft_timings(e);
        let max_request = match &e.max_request_bytes {
            None => Some(None),
            Some(r) => self.size(r).map(|b| {
                if b.bytes() == 0 {
                    self.push(
                        Problem::warning(
                            "etcdfile::zero-request-size",
                            "max_request_bytes = 0 means etcd's default of 1.5MiB",
                        )
                        .label(r.span(), "0 bytes"),
                    );
                } else if b.bytes() > REQUEST_WARN {
                    self.push(
                        Problem::warning(
                            "etcdfile::large-request-size",
                            format!("max_request_bytes = {b} is above 10MiB"),
                        )
                        .label(r.span(), "above etcd's recommended maximum")
                        .help("etcd warns above 10MiB: large requests slow down every member's raft log and snapshots"),
                    );
                }
                Some(b)
            }),
        };
        Some(EtcdSettings {
            quota_backend_bytes: quota?,
            compaction: compaction?,
            binary: binary?,
            binary_source: binary_source?,
            heartbeat_interval: heartbeat?,
            election_timeout: election?,
            max_request_bytes: max_request?,
        })
    }

    /// heartbeat_interval and election_timeout, with etcd's own rules between
    /// them (embed/config.go `Validate`): the election timeout at least five
    /// heartbeats and at most 50s. Defaults take part in the check, as in etcd.
    #[allow(clippy::type_complexity)]
    fn raft_timings(
        &mut self,
        e: &crate::config::raw::RawEtcd,
    ) -> (Option<Option<Millis>>, Option<Option<Millis>>) {
        let mut read = |v: &Option<Spanned<SizeValue>>, key: &str| match v {
            None => Some(None),
            Some(v) => self.millis(v, key).map(Some),
        };
        let hb = read(&e.heartbeat_interval, "heartbeat_interval");
        let el = read(&e.election_timeout, "election_timeout");
        if let Some(Some(h)) = hb
            && h.0 == 0
            && let Some(span) = e.heartbeat_interval.as_ref().map(Spanned::span)
        {
            self.push(
                Problem::error("etcdfile::bad-raft-timing", "heartbeat_interval must be at least 1ms")
                    .label(span, "0ms")
                    .help("etcd's default is 100ms; set it to the round trip between members or a little more"),
            );
            return (None, el);
        }
        let (Some(h), Some(l)) = (hb, el) else {
            return (hb, el);
        };
        let hv = h.map_or(DEFAULT_HEARTBEAT_MS, |m| m.0);
        let lv = l.map_or(DEFAULT_ELECTION_MS, |m| m.0);
        let span_of = |v: &Option<Spanned<SizeValue>>| v.as_ref().map(Spanned::span);
        if lv > MAX_ELECTION_MS
            && let Some(span) = span_of(&e.election_timeout)
        {
            self.push(
                Problem::error(
                    "etcdfile::bad-raft-timing",
                    format!("election_timeout = {lv}ms is longer than etcd allows (50000ms)"),
                )
                .label(span, "etcd refuses to start with this")
                .help("etcd's default is 1s; a few seconds covers even slow links"),
            );
            return (hb, None);
        }
        if hv.saturating_mul(5) > lv {
            let mut p = Problem::error(
                "etcdfile::bad-raft-timing",
                format!(
                    "election_timeout ({lv}ms) must be at least 5 times heartbeat_interval ({hv}ms)"
                ),
            );
            let mut defaults = String::new();
            match span_of(&e.heartbeat_interval) {
                Some(s) => p = p.label(s, format!("heartbeat {hv}ms")),
                None => defaults.push_str(" (heartbeat_interval defaults to 100ms)"),
            }
            match span_of(&e.election_timeout) {
                Some(s) => p = p.label(s, format!("election timeout {lv}ms")),
                None => defaults.push_str(" (election_timeout defaults to 1000ms)"),
            }
            self.push(p.help(format!(
                "etcd refuses to start otherwise{defaults}; set election_timeout to at least \"{}ms\" (etcd suggests about 10 heartbeats)",
                hv.saturating_mul(5)
            )));
            return (hb, None);
        }
        (hb, el)
    }

    /// A duration in whole milliseconds: "100ms", "1s", or a bare integer of
    /// milliseconds, as etcd's flags take it.
    fn millis(&mut self, v: &Spanned<SizeValue>, key: &str) -> Option<Millis> {
        let text = v.get_ref().text();
        let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse::<u64>()
                .map_err(|_| "the number is too large".to_owned())
        } else {
            crate::model::parse_duration(&text)
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    if d.subsec_nanos() % 1_000_000 != 0 {
                        Err("etcd takes whole milliseconds".to_owned())
                    } else {
                        u64::try_from(d.as_millis())
                            .map_err(|_| "the duration is too long".to_owned())
                    }
                })
        };
        match parsed {
            Ok(ms) => Some(Millis(ms)),
            Err(why) => {
                self.push(
                    Problem::error("etcdfile::bad-duration", format!("invalid {key} {text:?}: {why}"))
                        .label(v.span(), "not a duration etcdplan accepts")
                        .help("write a duration such as \"100ms\" or \"1s\", or a whole number of milliseconds"),
                );
                None
            }
        }
    }

    fn size(&mut self, v: &Spanned<SizeValue>) -> Option<ByteSize> {
        let text = v.get_ref().text();
        match ByteSize::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                let fix = match &e {
                    crate::model::SizeError::DecimalUnit(u) => {
                        let b = u.trim_end_matches(['B', 'b']).to_ascii_uppercase();
                        format!(
                            " (did you mean \"{}{b}iB\"?)",
                            text.trim_end_matches(u.as_str())
                        )
                    }
                    crate::model::SizeError::Space => format!(" (\"{}\")", text.replace(' ', "")),
                    _ => String::new(),
                };
                self.push(
                    Problem::error("etcdfile::bad-size", format!("invalid size {text:?}: {e}"))
                        .label(v.span(), "not a size etcdplan accepts")
                        .help(format!(
                            "write an integer number of bytes or a whole number with KiB, MiB, GiB or TiB, no space{fix}"
                        )),
                );
                None
            }
        }
    }
}
