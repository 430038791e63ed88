//! What the switch services share (`set_readonly`, `configuring_SSL`): one
//! YES/NO field recorded as a cluster setting.

use serde_json::{Value, json};

use super::{PrepareCx, Prepared};
use crate::error::ApiError;
use crate::store::clusters;
use crate::store::effect::{Effect, EffectError};

/// A switch service: its `service_params` field and the setting it records.
pub struct Switch {
    pub service: &'static str,
    pub field: &'static str,
    pub setting: &'static str,
    /// It restarts the database: refused on a running DR standby, whose
    /// restarts and configuration changes the DR manual disables.
    pub restarts: bool,
}

impl Switch {
    pub fn prepare(
        &self,
        cx: &PrepareCx<'_>,
        mut f: super::schema::Fields,
    ) -> Result<Prepared, ApiError> {
        let on = f.switch(self.field)?;
        f.finish()?;
        let c = cx.cluster;
        if self.restarts && c.standby_of.is_some() {
            return Err(ApiError::PermissionDenied(format!(
                "{} restarts the database, which is disabled while cluster [{}] is a DR standby; run stop_standby or promote_standby first",
                self.service, c.cluster_id
            )));
        }
        if c.status != "active" {
            return Err(ApiError::PermissionDenied(format!(
                "cluster [{}] is {}",
                c.cluster_id, c.status
            )));
        }
        Ok(Prepared {
            params: json!({ self.field: if on { "YES" } else { "NO" } }),
            secrets: Vec::new(),
        })
    }

    pub fn effect(&self, cluster_id: &str, params: &Value) -> Effect {
        let (cluster_id, setting) = (cluster_id.to_string(), self.setting);
        let on = params[self.field] == "YES";
        Box::new(move |conn| {
            if clusters::get(conn, &cluster_id)
                .map_err(EffectError::Store)?
                .is_none()
            {
                return Err(EffectError::Refused(format!(
                    "cluster [{cluster_id}] no longer exists"
                )));
            }
            clusters::set_setting(conn, &cluster_id, setting, &Value::Bool(on))
                .map_err(EffectError::Store)
        })
    }
}
