//! `configuring_SSL`: turn SSL on or off (restarts the database).

use serde_json::Value;

use super::schema::Fields;
use super::settings::Switch;
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::Effect;

pub struct ConfiguringSsl;

const SWITCH: Switch = Switch {
    service: "configuring_SSL",
    field: "configssl",
    setting: "ssl",
    restarts: true,
};

impl Service for ConfiguringSsl {
    fn name(&self) -> &'static str {
        SWITCH.service
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // Setting a switch to the value it has changes nothing.
    fn idempotent(&self) -> bool {
        true
    }

    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        SWITCH.prepare(cx, f)
    }

    fn model(&self, cluster_id: &str, params: &Value) -> Effect {
        SWITCH.effect(cluster_id, params)
    }
}
