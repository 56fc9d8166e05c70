//! The etcdfile on disk: read it, look at the etcd releases its `binary_source`
//! names on this machine, then validate with the core's pure parser
//! ([`etcdplan_core::config`], re-exported here whole).

use std::path::{Path, PathBuf};

pub use etcdplan_core::config::*;

/// Reads and validates an etcdfile from disk. Loading runs programs on this
/// machine only for `binary_source` (each release's `--version`, with a
/// deadline), before anything touches a host.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut ctx = Context {
        base_dir: abs.parent().map(Path::to_owned).unwrap_or_default(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        file_hash: hash(&text),
        releases: Default::default(),
    };
    let name = path.display().to_string();
    // Without releases, binary_source is resolved but not looked at; only a
    // file that names one is parsed again with what was found there.
    let first = parse(&name, text.clone(), &ctx)?;
    let Some(source) = first.desired.etcd.binary_source else {
        return Ok(first);
    };
    let found = crate::io::release::find(&source.path).map_err(|e| e.to_string());
    ctx.releases.insert(source.path, found);
    parse(&name, text, &ctx)
}
