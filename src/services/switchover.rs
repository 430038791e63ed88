//! `switchover`: roles swap with its primary, with no data loss (run on the standby).

use serde_json::Value;

use super::schema::Fields;
use super::topology::{self, Change};
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::Effect;

pub struct Switchover;

impl Service for Switchover {
    fn name(&self) -> &'static str {
        "switchover"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // A role change on real clusters: never repeated automatically.
    fn idempotent(&self) -> bool {
        false
    }

    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        topology::prepare(Change::Switchover, cx, f)
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        topology::effect(Change::Switchover, cluster_id)
    }
}
