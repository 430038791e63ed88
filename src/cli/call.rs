//! `qcgate call ACTION key=value…`: a signing client for trying the gateway.

use std::process::ExitCode;

use super::CliResult;
use crate::cli::outln;
use crate::client::{Client, Credentials};
use crate::secret::Secret;

#[derive(clap::Args)]
pub struct Args {
    /// The action, e.g. DescribeJobs.
    action: String,
    /// Parameters as key=value (lists as jobs.1=…; JSON values are encoded for you).
    params: Vec<String>,
    #[arg(long, default_value = "http://127.0.0.1:7777/iaas/")]
    endpoint: String,
    #[arg(long, env = "QCGATE_ACCESS_KEY_ID")]
    access_key_id: String,
    #[arg(long, env = "QCGATE_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
    /// Added as zone= unless a zone parameter is given.
    #[arg(long)]
    zone: Option<String>,
    /// Send a form POST instead of GET.
    #[arg(long)]
    post: bool,
}

pub fn run(args: Args) -> CliResult {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("parameter {p:?} is not key=value"))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    if let Some(z) = &args.zone
        && !pairs.iter().any(|(k, _)| k == "zone")
    {
        pairs.push(("zone".into(), z.clone()));
    }
    let creds = Credentials {
        access_key_id: args.access_key_id.clone(),
        secret_access_key: Secret::new(args.secret_access_key.clone()),
    };
    let mut client = Client::new(&args.endpoint, creds)?;
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = super::runtime()?.block_on(async {
        if args.post {
            client.call_post(&args.action, &borrowed).await
        } else {
            client.call(&args.action, &borrowed).await
        }
    })?;
    outln!("{}", serde_json::to_string_pretty(&reply)?)?;
    let ok = reply.get("ret_code").and_then(|v| v.as_i64()) == Some(0);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
