//! etcdplan: plan and apply changes to an etcd cluster without losing quorum.
//!
//! # Layout
//!
//! The pipeline runs left to right; everything before `execute` is pure or read-only.
//!
//! - [`model`]: the vocabulary (names, ids, ports, URLs, sizes, quorum maths).
//! - [`config`]: `etcdfile.toml` → validated [`config::Desired`], with diagnostics.
//! - [`hostfiles`]: the files etcdplan owns on a host, rendered from `Desired`.
//! - [`io`]: the two edges to the world: [`io::Host`] (commands) and [`io::EtcdApi`].
//! - [`service`]: how etcd runs on a host (the `process` service), as host commands.
//! - [`observe`]: the live cluster and hosts → [`observe::Live`].
//! - [`diff`]: `Desired × Live` → changes (pure).
//! - [`plan`]: changes → an ordered graph of steps with gates (pure).
//! - [`render`]: plans and status for people (text) and scripts (JSON).
//! - [`execute`]: walks a plan through the two edges, one disruption at a time.
//! - [`pki`]: the operator's CA and the certificates issued from it (local only).
//! - [`watch`]: what wakes the watch loop, what it reports, and when.
//! - [`view`]: where apply and watch report progress: text for people or JSON Lines.
//! - [`cli`]: the command line; the only place that wires real edges together.

pub mod cli;
pub mod config;
pub mod diff;
pub mod execute;
pub mod hostfiles;
pub mod io;
pub mod model;
pub mod observe;
pub mod pki;
pub mod plan;
pub mod render;
pub mod service;
pub mod view;
pub mod watch;
