//! `promote_standby`: MySQL Plus: stop DR sync and make the standby writable (`promote_standby.md`).

use serde_json::Value;

use super::schema::Fields;
use super::topology::{self, Change};
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::Effect;

pub struct PromoteStandby;

impl Service for PromoteStandby {
    fn name(&self) -> &'static str {
        "promote_standby"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // A role change on real clusters: never repeated automatically.
    fn idempotent(&self) -> bool {
        false
    }

    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        topology::prepare(Change::Promote, cx, f)
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        topology::effect(Change::Promote, cluster_id)
    }
}
