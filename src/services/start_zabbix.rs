//! `start_zabbix` (MySQL Plus `enable_zabbix.md`): run the Zabbix agent,
//! reporting to `zabbix_server_ip`.

use serde_json::{Value, json};

use super::features::Feature;
use super::schema::Fields;
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::Effect;

pub const ZABBIX: Feature = Feature {
    what: "the Zabbix agent",
    setting: "zabbix",
    stop_service: "stop_zabbix",
};

pub struct StartZabbix;

impl Service for StartZabbix {
    fn name(&self) -> &'static str {
        "start_zabbix"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn dial_targets(&self, params: &Value) -> Vec<String> {
        params["zabbix_server_ip"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect()
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let port = f.opt_int("zabbix_agent_port", 8802, 65534, 10050)?;
        let server = f.checked("zabbix_server_ip", "an IP address", |s| {
            s.parse::<std::net::IpAddr>().is_ok()
        })?;
        f.finish()?;
        ZABBIX.refuse_running(cx.cluster)?;
        Ok(Prepared {
            params: json!({ "zabbix_agent_port": port, "zabbix_server_ip": server }),
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        ZABBIX.start(cluster_id, params.clone())
    }
}
