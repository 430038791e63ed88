//! What the DR benchmarks share: local MariaDB servers, a gateway on a
//! temporary data dir, clusters bound to the servers as the command line
//! binds them, and a signed client that waits for jobs.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::app::Gateway;
use crate::client::{Client, Credentials};
use crate::config::Config;
use crate::lab::{ADMIN_USER, Server};
use crate::secret::Secret;

pub type DynError = Box<dyn std::error::Error + Send + Sync>;

pub const ZONE: &str = "sh1a";

pub struct DrLab {
    pub servers: Vec<Server>,
    pub gw: Gateway,
    pub client: Client,
    pub owner: String,
    _dir: tempfile::TempDir,
}

impl DrLab {
    /// One server per id, and cluster `cluster_ids[i]` bound to server `i`.
    pub async fn start(server_ids: &[u32], cluster_ids: &[&str]) -> Result<DrLab, DynError> {
        let admin = format!("Adm{}#1", crate::ids::secret_access_key());
        let mut servers = Vec::new();
        for id in server_ids {
            servers.push(Server::start(*id, &admin).await?);
        }
        let dir = tempfile::Builder::new()
            .prefix("qcgate-bench-dr-")
            .tempdir()?;
        let cfg = Config {
            listen: "127.0.0.1:0".parse()?,
            data_dir: dir.path().to_path_buf(),
            model_delay_ms: 0,
            ..Config::default()
        };
        let gw = crate::app::start(&cfg).await?;
        let key = gw
            .first_key
            .clone()
            .ok_or("the new data dir has no first key")?;
        let creds = Credentials {
            access_key_id: key.access_key_id.clone(),
            secret_access_key: Secret::new(key.secret_access_key.clone()),
        };
        let client = Client::new(&format!("http://{}/iaas/", gw.addr), creds)?;
        let endpoints: Vec<String> = servers.iter().map(Server::endpoint).collect();
        let clusters: Vec<String> = cluster_ids.iter().map(|s| s.to_string()).collect();
        let (data, owner) = (dir.path().to_path_buf(), key.owner.clone());
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut db = crate::store::local::Local::open(&crate::store::local::Location {
                data_dir: data,
                store: None,
                master_key_file: None,
            })
            .map_err(|e| e.to_string())?;
            for ep in &endpoints {
                crate::admin::servers::register(
                    &mut db,
                    &Config::default(),
                    ep,
                    ZONE,
                    ADMIN_USER,
                    Secret::new(admin.clone()),
                )
                .map_err(|e| e.to_string())?;
            }
            for (id, ep) in clusters.iter().zip(&endpoints) {
                crate::admin::clusters::bind_servers(
                    &mut db,
                    id,
                    ZONE,
                    &owner,
                    "bench",
                    std::slice::from_ref(ep),
                )
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await??;
        Ok(DrLab {
            servers,
            gw,
            client,
            owner: key.owner,
            _dir: dir,
        })
    }

    /// A signed call; the reply, which must be `ret_code` 0.
    pub async fn call(&mut self, action: &str, params: &[(&str, &str)]) -> Result<Value, DynError> {
        let mut p = params.to_vec();
        p.push(("zone", ZONE));
        let r = self.client.call(action, &p).await?;
        if r["ret_code"] != 0 {
            return Err(format!("{action}: {r}").into());
        }
        Ok(r)
    }

    pub async fn service(
        &mut self,
        cluster: &str,
        service: &str,
        sp: &str,
    ) -> Result<String, DynError> {
        let mut p = vec![("cluster", cluster), ("service", service)];
        if !sp.is_empty() {
            p.push(("service_params", sp));
        }
        let r = self.call("RunClusterCustomService", &p).await?;
        r["job_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{service} on {cluster}: {r}").into())
    }

    /// Polls until the job ends; returns it and the time from the first poll.
    pub async fn wait(&mut self, job: &str) -> Result<(Value, Duration), DynError> {
        let t0 = Instant::now();
        loop {
            let r = self.call("DescribeJobs", &[("jobs.1", job)]).await?;
            let j = r["job_set"][0].clone();
            if j["status"] != "pending" && j["status"] != "working" {
                return Ok((j, t0.elapsed()));
            }
            if t0.elapsed() > Duration::from_secs(600) {
                return Err(format!("job {job} did not end within 600 s").into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits for a job that must succeed.
    pub async fn ok(&mut self, job: &str) -> Result<(Value, Duration), DynError> {
        let (j, took) = self.wait(job).await?;
        if j["status"] != "successful" {
            return Err(format!("job {job} failed: {}", j["error_message"]).into());
        }
        Ok((j, took))
    }
}

/// The `evidence:` line of a job's output.
pub fn evidence(j: &Value) -> Value {
    j["output"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("evidence: "))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null)
}

pub fn say(quiet: bool, text: &str) {
    if !quiet {
        eprintln!("{text}");
    }
}

pub fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 0.0;
    }
    let i = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}
