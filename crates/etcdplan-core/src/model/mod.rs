//! The shared vocabulary of etcdplan: validated domain types with no I/O.
//!
//! Everything that flows inward from the etcdfile or the live cluster is parsed
//! once into these types, so later stages never re-check strings.

mod compaction;
mod db;
mod id;
mod names;
mod net;
mod quorum;
mod size;
mod text;
mod version;

pub use compaction::{Compaction, CompactionMode, DurationError, Retention, parse_duration};
pub use db::{DEFAULT_QUOTA, DbFigures};
pub use id::{ClusterId, MemberId};
pub use names::{ClusterName, MemberName, NameError, UserName, UserNameError};
pub use net::{Address, Endpoint, Port, Scheme};
pub use quorum::{Quorum, quorum, tolerance};
pub use size::{ByteSize, SizeError, human};
pub use version::{EtcdVersion, MinorVersion, VersionError, VersionSpec};

/// Quotes a word for POSIX sh: left as is when it holds only characters sh
/// reads literally, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,@+".contains(c))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Bytes as lowercase hex, the way sha256 sums and fingerprints are shown.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
