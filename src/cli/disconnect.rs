//! `etcdplan disconnect`: closes the ssh masters that earlier commands left
//! running (`--ssh-persist`), whatever etcdfile they were made for.

use std::io::Write;

use super::{CliError, Outcome};
use crate::io::persist::RuntimeDir;

/// Asks every master in the runtime folder to exit (each under a deadline),
/// removes its files, and says what it closed.
pub(super) async fn disconnect(out: &mut impl Write) -> Result<Outcome, CliError> {
    let dir = match RuntimeDir::existing() {
        Ok(Some(dir)) => dir,
        Ok(None) => {
            writeln!(out, "No ssh connections are open.")?;
            return Ok(Outcome::Ok);
        }
        Err(e) => return Err(CliError::Usage(e.to_string())),
    };
    let masters = dir.masters();
    if masters.is_empty() {
        writeln!(out, "No ssh connections are open.")?;
        return Ok(Outcome::Ok);
    }
    // Read before closing: closing removes the file that names the target.
    let targets: Vec<String> = masters.iter().map(|m| m.target()).collect();
    let closed = futures::future::join_all(masters.iter().map(|m| m.close())).await;
    for (target, answered) in targets.iter().zip(closed) {
        if answered {
            writeln!(out, "Closed the ssh connection to {target}.")?;
        } else {
            writeln!(
                out,
                "Removed the stale socket of {target} (no master answered)."
            )?;
        }
    }
    Ok(Outcome::Ok)
}
