//! The etcd releases on the operator's machine that `binary_source` names:
//! found, each one's `--version` run (with a deadline) and its sha256 taken,
//! so a binary that is not etcd, or not the version asked for, is refused
//! before any host is touched.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::{Release, ReleaseTool};
use crate::model::EtcdVersion;

/// How long `etcd --version` may take.
const VERSION_DEADLINE: Duration = Duration::from_secs(10);

/// Why `binary_source` gives no usable release.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Nothing at the path.
    #[error("{} does not exist", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// A folder without an etcd binary in the places releases keep it.
    #[error("no etcd binary in {} (looked for etcd, bin/etcd and usr/bin/etcd, also one folder down)", path.display())]
    NoEtcd {
        /// The folder.
        path: PathBuf,
    },
    /// A file that does not say it is etcd.
    #[error("{} is not an etcd binary: `--version` printed {output:?}", path.display())]
    NotEtcd {
        /// The file.
        path: PathBuf,
        /// What it printed (first line), or why it did not run.
        output: String,
    },
    /// Two different binaries claim the same version.
    #[error("{} and {} both say they are etcd {version} but differ", a.display(), b.display())]
    Ambiguous {
        /// One.
        a: PathBuf,
        /// The other.
        b: PathBuf,
        /// The version.
        version: EtcdVersion,
    },
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Where a release folder keeps its etcd binary.
const LAYOUTS: [&str; 3] = ["etcd", "bin/etcd", "usr/bin/etcd"];

/// The releases at `path` (a binary, a release folder, or a folder of them),
/// newest first.
///
/// # Errors
/// A [`ReleaseError`] when nothing usable is there or a candidate is not etcd.
pub fn find(path: &Path) -> Result<Vec<Release>, ReleaseError> {
    if !path.exists() {
        return Err(ReleaseError::Missing {
            path: path.to_owned(),
        });
    }
    let candidates = if path.is_dir() {
        let mut found = in_folder(path);
        if found.is_empty() {
            let mut subs: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| ReleaseError::Read {
                    path: path.to_owned(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            subs.sort();
            found = subs.iter().flat_map(|s| in_folder(s)).collect();
        }
        if found.is_empty() {
            return Err(ReleaseError::NoEtcd {
                path: path.to_owned(),
            });
        }
        found
    } else {
        vec![path.to_owned()]
    };
    let mut releases: Vec<Release> = Vec::new();
    for c in candidates {
        let r = inspect(&c)?;
        match releases.iter().find(|x| x.version == r.version) {
            Some(x) if x.sha256 != r.sha256 => {
                return Err(ReleaseError::Ambiguous {
                    a: x.path.clone(),
                    b: r.path,
                    version: r.version,
                });
            }
            Some(_) => {}
            None => releases.push(r),
        }
    }
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    Ok(releases)
}

fn in_folder(dir: &Path) -> Vec<PathBuf> {
    LAYOUTS
        .iter()
        .map(|l| dir.join(l))
        .find(|p| p.is_file())
        .into_iter()
        .collect()
}

/// Runs `file --version` and hashes the file.
fn inspect(file: &Path) -> Result<Release, ReleaseError> {
    let not_etcd = |output: String| ReleaseError::NotEtcd {
        path: file.to_owned(),
        output,
    };
    let out = run_version(file).map_err(not_etcd)?;
    let version = EtcdVersion::from_version_output(&out)
        .ok_or_else(|| not_etcd(out.lines().next().unwrap_or("").to_owned()))?;
    Ok(Release {
        path: file.to_owned(),
        version,
        sha256: sha256_file(file)?,
        etcdutl: etcdutl_beside(file, version)?,
    })
}

/// The `etcdutl` next to a release's etcd, when it says it is of the same
/// release (`etcdutl version`); none otherwise (3.4 has none).
fn etcdutl_beside(file: &Path, version: EtcdVersion) -> Result<Option<ReleaseTool>, ReleaseError> {
    let Some(tool) = file
        .parent()
        .map(|d| d.join("etcdutl"))
        .filter(|t| t.is_file())
    else {
        return Ok(None);
    };
    let said = run_with(&tool, "version").unwrap_or_default();
    let same = said
        .lines()
        .filter_map(|l| l.strip_prefix("etcdutl version: "))
        .any(|v| EtcdVersion::parse(v.trim()) == Some(version));
    if !same {
        return Ok(None);
    }
    Ok(Some(ReleaseTool {
        sha256: sha256_file(&tool)?,
        path: tool,
    }))
}

/// `file --version`'s output, within [`VERSION_DEADLINE`].
fn run_version(file: &Path) -> Result<String, String> {
    run_with(file, "--version")
}

/// `file ARG`'s output, within [`VERSION_DEADLINE`].
fn run_with(file: &Path, arg: &str) -> Result<String, String> {
    let mut child = Command::new(file)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("it does not run: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < VERSION_DEADLINE => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", VERSION_DEADLINE.as_secs()));
            }
        }
    }
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    Ok(out)
}

/// sha256 of a file, hex.
///
/// # Errors
/// The file cannot be read.
fn sha256_file(file: &Path) -> Result<String, ReleaseError> {
    let read = |source| ReleaseError::Read {
        path: file.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(file).map_err(read)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(read)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::model::hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(path: &Path, body: &str) {
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")));
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn releases_are_found_in_the_layouts_releases_use_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        script(&root.join("a/usr/bin/etcd"), "echo 'etcd Version: 3.5.16'");
        script(&root.join("b/etcd"), "echo 'etcd Version: 3.6.5'");
        let found = find(root).unwrap_or_else(|e| panic!("{e}"));
        let versions: Vec<String> = found.iter().map(|r| r.version.to_string()).collect();
        assert_eq!(versions, ["3.6.5", "3.5.16"]);
        assert_eq!(found[1].sha256.len(), 64);
        // A folder that is one release.
        let one = find(&root.join("a")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.len(), 1);
        // Not etcd.
        script(&root.join("c/etcd"), "echo hello");
        let err = find(&root.join("c/etcd")).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("is not an etcd binary")),
            "{err:?}"
        );
        assert!(matches!(
            find(&root.join("nothing")),
            Err(ReleaseError::Missing { .. })
        ));
        std::fs::create_dir_all(root.join("empty/sub")).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            find(&root.join("empty")),
            Err(ReleaseError::NoEtcd { .. })
        ));
    }
}
