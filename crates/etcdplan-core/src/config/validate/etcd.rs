//! The `[etcd]` table: quota, compaction, the binary and where releases come from.

use std::path::PathBuf;

use toml::Spanned;

use super::{PathSide, Validator};
use crate::config::desired::{BinarySource, EtcdSettings, Transport};
use crate::config::diagnostic::Problem;
use crate::config::raw::{RawCompactionMode, RawEtcdfile, SizeValue};
use crate::model::{ByteSize, Compaction, CompactionMode};

const DEFAULT_QUOTA: u64 = 2 << 30;
const QUOTA_WARN: u64 = 8 << 30;

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
        Some(EtcdSettings {
            quota_backend_bytes: quota?,
            compaction: compaction?,
            binary: binary?,
            binary_source: binary_source?,
        })
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
