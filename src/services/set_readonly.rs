//! `set_readonly`: toggle the primary's read-only mode (used on the source before a DR switch).

use serde_json::Value;

use super::schema::Fields;
use super::settings::Switch;
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::Effect;

pub struct SetReadonly;

const SWITCH: Switch = Switch {
    service: "set_readonly",
    field: "readonly",
    setting: "readonly",
    restarts: false,
};

impl Service for SetReadonly {
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
