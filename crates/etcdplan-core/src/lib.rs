//! etcdplan's pure core: everything between the etcdfile and the plan a person
//! reads, with no I/O. The binary crate `etcdplan` holds the edges (hosts over
//! ssh or locally, the etcd API, service managers, releases and the CA on
//! disk), observes and executes; this crate cannot reach the network, the
//! hosts or etcd, because none of those crates is among its dependencies.
//!
//! # Layout (the pipeline, left to right)
//!
//! - [`model`]: the vocabulary (names, ids, ports, URLs, sizes, versions, quorum maths).
//! - [`config`]: etcdfile text → validated [`config::Desired`], with diagnostics;
//!   facts from outside the file (its folder, releases found) come in as data.
//! - [`cert`]: what a certificate says (read with x509-parser; issuing is on the edge).
//! - [`live`]: the live cluster and hosts as data ([`live::Live`]), filled in by `observe`.
//! - [`hostfiles`]: the files etcdplan owns on a host, rendered from `Desired`.
//! - [`import`]: what a hand-built etcd runs with, from its unit, environment and flags.
//! - [`diff`]: `Desired × Live` → changes and blockers.
//! - [`plan`]: changes → an ordered graph of steps with gates.
//! - [`render`]: plans and status for people (text) and scripts (JSON).
//! - [`history`]: the record each apply leaves in etcd, and which to prune.

pub mod backup;
pub mod cert;
pub mod config;
pub mod diff;
pub mod history;
pub mod hostfiles;
pub mod import;
pub mod live;
pub mod model;
pub mod plan;
pub mod render;
