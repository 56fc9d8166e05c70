//! The CA certificates this machine holds for the cluster, as `observe` records
//! them: the current one in `ca_dir` and, during a rotation, the previous one.
//! Only certificates are read (public); the CA key is `Ca::load`'s business.

use std::path::Path;

use super::{CA_CERT, PREVIOUS_DIR};

/// The current CA certificate (PEM) in `ca_dir` and the previous one a
/// rotation keeps in `ca_dir/previous`; `None` for each that is absent.
pub fn local_cas(ca_dir: &Path) -> (Option<String>, Option<String>) {
    let read = |dir: &Path| std::fs::read_to_string(dir.join(CA_CERT)).ok();
    (read(ca_dir), read(&ca_dir.join(PREVIOUS_DIR)))
}
