//! `etcdplan alerts`: the Prometheus rule file for the cluster the etcdfile
//! describes. It reads only the etcdfile (no network), so it can run where
//! the rules are deployed.

use super::{Cli, CliError, Outcome, load};
use crate::render;

/// Prints the rules (`render::alerts`) for the Prometheus job `job`.
pub(super) fn alerts(
    cli: &Cli,
    job: &str,
    out: &mut impl std::io::Write,
) -> Result<Outcome, CliError> {
    let loaded = load(cli)?;
    let text = render::alerts(&loaded.desired, job).map_err(|e| CliError::Usage(e.to_string()))?;
    out.write_all(text.as_bytes())?;
    Ok(Outcome::Ok)
}
