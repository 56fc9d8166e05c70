//! The `[backup]` table: the snapshot folder on this machine, the schedule,
//! how many to keep, the copy command and the age recipient, each problem at
//! its line.

use std::str::FromStr as _;

use super::{PathSide, Validator};
use crate::config::desired::Backup;
use crate::config::diagnostic::Problem;
use crate::config::raw::RawEtcdfile;

impl Validator<'_> {
    /// `Some(None)`: no `[backup]`; `None`: it has an error (reported).
    pub(super) fn backup(&mut self, raw: &RawEtcdfile) -> Option<Option<Backup>> {
        let Some(b) = &raw.backup else {
            return Some(None);
        };
        let b = b.get_ref();
        let dir = match &b.dir {
            Some(d) => self.path(d, None, PathSide::Local, false),
            None => Some(self.ctx.base_dir.join("snapshots")),
        };
        let interval = match &b.interval {
            None => Some(None),
            Some(i) => {
                match crate::model::parse_duration(i.get_ref()) {
                    Ok(d) if d.as_secs() >= 1 => Some(Some(d)),
                    Ok(_) => {
                        self.push(
                            Problem::error(
                                "etcdfile::bad-backup-interval",
                                "interval must be at least 1s",
                            )
                            .label(i.span(), "too short")
                            .help("write how often a snapshot is taken, such as \"6h\" or \"30m\""),
                        );
                        None
                    }
                    Err(e) => {
                        self.push(
                        Problem::error("etcdfile::bad-backup-interval", format!("invalid interval: {e}"))
                            .label(i.span(), "not a duration")
                            .help("write a duration as etcd does: \"6h\", \"30m\", \"1h30m\", \"90s\""),
                    );
                        None
                    }
                }
            }
        };
        let keep = match &b.keep {
            None => Some(None),
            Some(k) => match u32::try_from(*k.get_ref()) {
                Ok(n) if n >= 1 => Some(Some(n)),
                _ => {
                    self.push(
                        Problem::error(
                            "etcdfile::bad-backup-keep",
                            "keep must be a whole number of at least 1",
                        )
                        .label(k.span(), "how many snapshots to keep")
                        .help("leave keep out to keep every snapshot"),
                    );
                    None
                }
            },
        };
        let copy_command = match &b.copy_command {
            None => Some(None),
            Some(c) => match crate::backup::check_template(c.get_ref()) {
                Ok(()) => Some(Some(c.get_ref().clone())),
                Err(e) => {
                    self.push(
                        Problem::error("etcdfile::bad-copy-command", e.to_string())
                            .label(c.span(), "in this command")
                            .help("{path} is replaced by the snapshot's path (its .age file with encrypt_to) and {manifest} by its manifest's, both shell-quoted: \"aws s3 cp {path} s3://bucket/etcd/\""),
                    );
                    None
                }
            },
        };
        let encrypt_to = match &b.encrypt_to {
            None => Some(None),
            Some(r) => match age::x25519::Recipient::from_str(r.get_ref().trim()) {
                Ok(_) => Some(Some(r.get_ref().trim().to_owned())),
                Err(e) => {
                    self.push(
                        Problem::error(
                            "etcdfile::bad-age-recipient",
                            format!("encrypt_to is not an age recipient: {e}"),
                        )
                        .label(r.span(), "expected age1…")
                        .help("write the public key `age-keygen` prints (\"age1…\"); its secret key stays off this machine"),
                    );
                    None
                }
            },
        };
        if encrypt_to.as_ref().is_some_and(Option::is_some)
            && copy_command.as_ref().is_some_and(Option::is_none)
            && let Some(r) = &b.encrypt_to
        {
            self.push(
                Problem::warning(
                    "etcdfile::encrypt-without-copy",
                    "encrypt_to is set without copy_command: nothing is encrypted",
                )
                .label(r.span(), "used only for the copy")
                .help("the encrypted file is what copy_command copies off this machine; the local snapshot stays as etcd wrote it"),
            );
        }
        Some(Some(Backup {
            dir: dir?,
            interval: interval?,
            keep: keep?,
            copy_command: copy_command?,
            encrypt_to: encrypt_to?,
        }))
    }
}
