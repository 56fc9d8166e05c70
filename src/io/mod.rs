//! The two edges to the world: a host that runs commands, and the etcd API.
//!
//! `observe` and `execute` talk only to these traits, so the same code drives
//! real hosts and real etcd, while the pure stages never see either.

mod etcd;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;
mod host;
pub mod release;
mod ssh;

pub use etcd::{
    ApiAlarm, ApiMember, ApiStatus, AuthCall, ClientIdentity, ClientTls, DowngradeAction, EtcdApi,
    EtcdClient, EtcdError, EtcdErrorKind, RangePage, Timeouts,
};
pub use host::{
    CommandOutput, FRESH_NAME, Host, HostError, LocalHost, Progress, Script, fsync_line,
    remove_on_exit, shell_quote, write_file_part_script, write_file_script,
    write_owned_file_script,
};
pub use ssh::{SshHost, SshOptions, persist};

/// The machines etcdplan talks to, by address. With the local transport every
/// address is this machine.
#[derive(Clone, Default)]
pub struct HostMap {
    by_address: std::collections::BTreeMap<crate::model::Address, std::sync::Arc<dyn Host>>,
    everywhere: Option<std::sync::Arc<dyn Host>>,
}

impl HostMap {
    /// One host for every address (the local transport).
    pub fn everywhere(host: std::sync::Arc<dyn Host>) -> Self {
        Self {
            by_address: std::collections::BTreeMap::new(),
            everywhere: Some(host),
        }
    }

    /// Adds the host at an address.
    pub fn insert(&mut self, address: crate::model::Address, host: std::sync::Arc<dyn Host>) {
        self.by_address.insert(address, host);
    }

    /// The host at an address.
    pub fn get(&self, address: &crate::model::Address) -> Option<std::sync::Arc<dyn Host>> {
        self.by_address
            .get(address)
            .cloned()
            .or_else(|| self.everywhere.clone())
    }

    /// Whether an address has a host already.
    pub fn has(&self, address: &crate::model::Address) -> bool {
        self.everywhere.is_some() || self.by_address.contains_key(address)
    }

    /// Releases every connection.
    pub async fn close(&self) {
        for h in self.by_address.values().chain(self.everywhere.iter()) {
            h.close().await;
        }
    }
}
