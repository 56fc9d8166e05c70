//! `etcdplan endpoints`: the client endpoints of the cluster the etcdfile
//! describes, in the form a consumer reads (`render::endpoints`). Without
//! `--healthy` it reads only the etcdfile (no network), so it runs where the
//! consumer is configured.

use std::path::{Path, PathBuf};

use super::edges::{given_identity, read_only};
use super::{Cli, CliError, Outcome, load};
use crate::config::Desired;
use crate::render::{self, ClientFiles, EndpointSet, EndpointsFormat};

/// `--format`: the consumer the endpoints are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FormatArg {
    /// One URL a line.
    #[default]
    List,
    /// `export ETCDCTL_ENDPOINTS=…` (and ETCDCTL_CACERT/CERT/KEY with TLS).
    Etcdctl,
    /// `--etcd-servers=…` (and --etcd-cafile/certfile/keyfile with TLS).
    KubeApiserver,
    /// `KV_BACKEND=etcd` and `KV_ADDR=host:port,…` (StorageOS).
    KvAddr,
    /// `{"endpoints": [...], "tls": {...}}`.
    Json,
}

impl FormatArg {
    fn format(self) -> EndpointsFormat {
        match self {
            Self::List => EndpointsFormat::List,
            Self::Etcdctl => EndpointsFormat::Etcdctl,
            Self::KubeApiserver => EndpointsFormat::KubeApiserver,
            Self::KvAddr => EndpointsFormat::KvAddr,
            Self::Json => EndpointsFormat::Json,
        }
    }

    /// The NAME of `etcdplan pki client NAME` whose files the output names
    /// when no certificate is given.
    fn default_client(self) -> &'static str {
        match self {
            Self::KubeApiserver => "kube-apiserver",
            _ => "client",
        }
    }
}

/// `etcdplan endpoints …`
#[derive(Debug, clap::Args)]
pub struct EndpointsArgs {
    /// Only the voters that answer now, healthy (observes the cluster).
    #[arg(long)]
    pub healthy: bool,
    /// The consumer's form.
    #[arg(long, value_enum, default_value_t = FormatArg::List)]
    pub format: FormatArg,
    /// With client TLS and no --cert/--key (nor [client] cert): name the
    /// files `etcdplan pki client NAME` writes in the current folder
    /// (default: kube-apiserver for that format, else client).
    #[arg(long, value_name = "NAME")]
    pub client_name: Option<String>,
}

/// Prints the endpoints; exit 1 when none is known.
pub(super) async fn endpoints(
    cli: &Cli,
    args: &EndpointsArgs,
    out: &mut impl std::io::Write,
) -> Result<Outcome, CliError> {
    let (d, urls) = if args.healthy {
        let (loaded, live) = read_only(cli, false).await?;
        let urls = render::healthy_endpoints(&loaded.desired, &live);
        if urls.is_empty() && !loaded.desired.members.is_empty() {
            return Err(CliError::NoEndpoint(
                "no member of the etcdfile answers as a healthy voter now".into(),
            ));
        }
        (loaded.desired, urls)
    } else {
        let loaded = load(cli)?;
        let urls = loaded.desired.client_urls();
        (loaded.desired, urls)
    };
    if urls.is_empty() {
        return Err(CliError::NoEndpoint("the etcdfile names no member".into()));
    }
    let name = args
        .client_name
        .clone()
        .unwrap_or_else(|| args.format.default_client().to_owned());
    let tls = if d.tls.client {
        Some(client_files(cli, &d, &name)?)
    } else {
        None
    };
    let set = EndpointSet {
        endpoints: urls,
        tls,
    };
    let text = render::endpoints(&set, args.format.format())
        .map_err(|e| CliError::NoEndpoint(e.to_string()))?;
    out.write_all(text.as_bytes())?;
    Ok(Outcome::Ok)
}

/// The files a client uses over https: `--cacert`/`--cert`/`--key` (or
/// their ETCDCTL_* variables), then `[client]`, then the external CA file,
/// then what `etcdplan pki client NAME` writes by default (NAME.crt,
/// NAME.key and ca.crt in the current folder); made absolute.
fn client_files(cli: &Cli, d: &Desired, name: &str) -> Result<ClientFiles, CliError> {
    let cacert = cli
        .cacert
        .clone()
        .or_else(|| d.client.cacert.clone())
        .or_else(|| d.tls.external().map(|x| x.ca_file.clone()))
        .unwrap_or_else(|| PathBuf::from(crate::pki::CA_CERT));
    let (cert, key) = given_identity(cli)?
        .or_else(|| d.client.cert_and_key.clone())
        .unwrap_or_else(|| {
            (
                PathBuf::from(format!("{name}.crt")),
                PathBuf::from(format!("{name}.key")),
            )
        });
    Ok(ClientFiles {
        cacert: absolute(&cacert)?,
        cert: absolute(&cert)?,
        key: absolute(&key)?,
    })
}

fn absolute(p: &Path) -> Result<PathBuf, CliError> {
    Ok(std::path::absolute(p)?)
}
