//! The two edges to the world: a host that runs commands, and the etcd API.
//!
//! `observe` and `execute` talk only to these traits, so the same code drives
//! real hosts and real etcd, while the pure stages never see either.

mod etcd;
mod host;
mod ssh;

pub use etcd::{ApiAlarm, ApiMember, ApiStatus, EtcdApi, EtcdClient, EtcdError, Timeouts};
pub use host::{CommandOutput, Host, HostError, LocalHost, Script, shell_quote, write_file_script};
pub use ssh::{SshHost, SshOptions};

/// The host each member runs on, by member name.
pub type HostMap = std::collections::BTreeMap<crate::model::MemberName, std::sync::Arc<dyn Host>>;
