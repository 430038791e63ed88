//! Features a service starts and another stops (data migration, the log
//! server, the Zabbix agent). A running feature is a cluster setting holding
//! its configuration; stopping it removes the setting.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service, current};
use crate::error::ApiError;
use crate::store::clusters::Cluster;
use crate::store::effect::{Effect, EffectError};

/// What a feature is called in messages, its setting and its stop service.
#[derive(Clone, Copy)]
pub struct Feature {
    pub what: &'static str,
    pub setting: &'static str,
    pub stop_service: &'static str,
}

impl Feature {
    fn running(self, settings: &Value) -> bool {
        settings.get(self.setting).is_some_and(|v| !v.is_null())
    }

    fn already(self, cluster_id: &str) -> String {
        format!(
            "{} is already running on cluster [{cluster_id}]; run {} first",
            self.what, self.stop_service
        )
    }

    fn not_running(self, cluster_id: &str) -> String {
        format!("{} is not running on cluster [{cluster_id}]", self.what)
    }

    /// Refuses a start while the feature runs.
    pub fn refuse_running(self, c: &Cluster) -> Result<(), ApiError> {
        if self.running(&c.settings) {
            return Err(ApiError::PermissionDenied(self.already(&c.cluster_id)));
        }
        Ok(())
    }

    /// The model of a start: records `config` as the running feature.
    pub fn start(self, cluster_id: &str, config: Value) -> Effect {
        let cluster_id = cluster_id.to_string();
        Box::new(move |conn| {
            let c = current(conn, &cluster_id)?;
            if self.running(&c.settings) {
                return Err(EffectError::Refused(
                    ApiError::PermissionDenied(self.already(&cluster_id)).to_string(),
                ));
            }
            conn.set_setting(&cluster_id, self.setting, &config)
                .map_err(EffectError::Store)
        })
    }
}

/// A stop service: refused when the feature is not running. `switch` is an
/// optional YES/NO field it takes (`clean_log`).
pub struct Stop {
    pub service: &'static str,
    pub feature: Feature,
    pub switch: Option<&'static str>,
}

impl Service for Stop {
    fn name(&self) -> &'static str {
        self.service
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // Stopping what is stopped is refused, not repeated.
    fn idempotent(&self) -> bool {
        true
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let mut params = json!({});
        if let Some(field) = self.switch {
            let on = f.opt_switch(field, false)?;
            params[field] = json!(if on { "YES" } else { "NO" });
        }
        f.finish()?;
        let c = cx.cluster;
        if !self.feature.running(&c.settings) {
            return Err(ApiError::PermissionDenied(
                self.feature.not_running(&c.cluster_id),
            ));
        }
        Ok(Prepared {
            params,
            secrets: Vec::new(),
        })
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        let (cluster_id, feature) = (cluster_id.to_string(), self.feature);
        Box::new(move |conn| {
            let c = current(conn, &cluster_id)?;
            if !feature.running(&c.settings) {
                return Err(EffectError::Refused(
                    ApiError::PermissionDenied(feature.not_running(&cluster_id)).to_string(),
                ));
            }
            conn.clear_setting(&cluster_id, feature.setting)
                .map_err(EffectError::Store)
        })
    }
}
