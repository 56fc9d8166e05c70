//! etcdplan: plan and apply changes to an etcd cluster without losing quorum.
//!
//! # Layout
//!
//! Two crates. `etcdplan-core` (re-exported here) is the pure pipeline: no
//! I/O crate is among its dependencies, so the compiler keeps it pure. This
//! crate holds the edges and what drives them.
//!
//! From the core: [`model`], [`config`] (plus [`config::load`], which reads the
//! file and looks at `binary_source` on this machine), [`cert`], [`live`],
//! [`hostfiles`], [`diff`], [`plan`], [`render`].
//!
//! Here:
//! - [`io`]: the two edges to the world: [`io::Host`] (commands) and [`io::EtcdApi`].
//! - [`service`]: how etcd runs on a host (`systemd` or `process`), as host commands.
//! - [`observe`]: the live cluster and hosts → [`live::Live`].
//! - [`execute`]: walks a plan through the two edges, one disruption at a time.
//! - [`pki`]: the operator's CA on disk and the certificates issued from it.
//! - [`history`]: the record each walk of a plan leaves in etcd (`etcdplan history`).
//! - [`watch`]: what wakes the watch loop, what it reports, and when.
//! - [`view`]: where apply and watch report progress: text for people or JSON Lines.
//! - [`cli`]: the command line; the only place that wires real edges together.

pub use etcdplan_core::{
    backup as backup_core, cert, diff, hostfiles, import, live, model, plan, render,
};

pub mod backup;
pub mod cli;
pub mod config;
pub mod execute;
pub mod history;
pub mod io;
pub mod observe;
pub mod pki;
pub mod service;
pub mod view;
pub mod watch;
