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
    access_key_id: Option<String>,
    #[arg(long, env = "QCGATE_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    /// Added as zone= unless a zone parameter is given.
    #[arg(long)]
    zone: Option<String>,
    /// Send a form POST instead of GET.
    #[arg(long)]
    post: bool,
    /// For an action that answers job_id(s): poll DescribeJobs until every
    /// job ends; exit non-zero, printing its error, when one failed.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 2).
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
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
    let (Some(id), Some(secret)) = (&args.access_key_id, &args.secret_access_key) else {
        return Err(
            "no access key: give --access-key-id and --secret-access-key, \
                    or set QCGATE_ACCESS_KEY_ID and QCGATE_SECRET_ACCESS_KEY \
                    (qcgate serve printed the first key; qcgate keys create makes more)"
                .into(),
        );
    };
    let creds = Credentials {
        access_key_id: id.clone(),
        secret_access_key: Secret::new(secret.clone()),
    };
    let mut client = Client::new(&args.endpoint, creds)
        .map_err(|e| format!("the endpoint {} is not usable: {e}", args.endpoint))?;
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = super::runtime()?
        .block_on(async {
            if args.post {
                client.call_post(&args.action, &borrowed).await
            } else {
                client.call(&args.action, &borrowed).await
            }
        })
        .map_err(|e| {
            format!(
                "could not reach {} ({e}); is qcgate serve running there? (--endpoint)",
                args.endpoint
            )
        })?;
    outln!("{}", serde_json::to_string_pretty(&reply)?)?;
    let ok = reply.get("ret_code").and_then(|v| v.as_i64()) == Some(0);
    if !ok {
        return Ok(ExitCode::from(1));
    }
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = job_ids(&reply);
    if jobs.is_empty() {
        eprintln!(
            "qcgate: {} answered no job_id; nothing to wait for",
            args.action
        );
        return Ok(ExitCode::SUCCESS);
    }
    let zone = pairs
        .iter()
        .find(|(k, _)| k == "zone")
        .map(|(_, v)| v.clone());
    let limit = std::time::Duration::from_secs(args.timeout);
    super::runtime()?.block_on(wait(&mut client, &jobs, zone.as_deref(), limit))
}

/// Every job id a reply names: `job_id`, `job_ids` {resource: job}.
fn job_ids(reply: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = reply["job_id"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(map) = reply["job_ids"].as_object() {
        ids.extend(map.values().filter_map(|v| v.as_str().map(str::to_string)));
    }
    ids
}

/// Polls until every job ends, a spinner showing each status.
async fn wait(
    client: &mut Client,
    jobs: &[String],
    zone: Option<&str>,
    limit: std::time::Duration,
) -> CliResult {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let started = std::time::Instant::now();
    let mut last: Vec<serde_json::Value>;
    loop {
        let mut params: Vec<(String, String)> = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (format!("jobs.{}", i + 1), j.clone()))
            .collect();
        if let Some(z) = zone {
            params.push(("zone".into(), z.to_string()));
        }
        let borrowed: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = client.call("DescribeJobs", &borrowed).await?;
        if r["ret_code"] != 0 {
            bar.finish_and_clear();
            return Err(format!("DescribeJobs: {r}").into());
        }
        last = r["job_set"].as_array().cloned().unwrap_or_default();
        let open = last
            .iter()
            .filter(|j| j["status"] == "pending" || j["status"] == "working")
            .count();
        let shown: Vec<String> = last
            .iter()
            .map(|j| {
                format!(
                    "{} {}",
                    j["job_id"].as_str().unwrap_or("?"),
                    j["status"].as_str().unwrap_or("?")
                )
            })
            .collect();
        bar.set_message(shown.join(", "));
        if open == 0 && last.len() == jobs.len() {
            break;
        }
        if started.elapsed() > limit {
            bar.finish_and_clear();
            eprintln!(
                "qcgate: still running after {} s: {}",
                limit.as_secs(),
                shown.join(", ")
            );
            return Ok(ExitCode::from(2));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    bar.finish_and_clear();
    let mut failed = false;
    for j in &last {
        let id = j["job_id"].as_str().unwrap_or("?");
        if j["status"] == "successful" {
            eprintln!("{id} successful");
        } else {
            failed = true;
            eprintln!(
                "{id} {}: {}",
                j["status"].as_str().unwrap_or("?"),
                j["error_message"].as_str().unwrap_or("")
            );
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
