//! Switch services (`set_readonly`, `configuring_SSL`): one YES/NO field
//! recorded as a cluster setting. Each is a `Switch` value in its own file.

use serde_json::{Value, json};

use super::schema::Fields;
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
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

impl Service for Switch {
    fn name(&self) -> &'static str {
        self.service
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // Setting a switch to the value it has changes nothing.
    fn idempotent(&self) -> bool {
        true
    }

    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let on = f.switch(self.field)?;
        f.finish()?;
        let _ = cx;
        Ok(Prepared {
            params: json!({ self.field: if on { "YES" } else { "NO" } }),
            secrets: Vec::new(),
        })
    }

    fn blocked_on_standby(&self) -> Option<&'static str> {
        self.restarts.then_some("restarts the database")
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        let (cluster_id, setting) = (cluster_id.to_string(), self.setting);
        let on = params[self.field] == "YES";
        Box::new(move |conn| {
            if conn
                .cluster(&cluster_id)
                .map_err(EffectError::Store)?
                .is_none()
            {
                return Err(EffectError::Refused(format!(
                    "cluster [{cluster_id}] no longer exists"
                )));
            }
            conn.set_setting(&cluster_id, setting, &Value::Bool(on))
                .map_err(EffectError::Store)
        })
    }
}
