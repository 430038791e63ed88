//! `decouple`: the standby leaves its primary and becomes an independent primary.

use serde_json::Value;

use super::schema::Fields;
use super::topology::{self, Change};
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::Effect;

pub struct Decouple;

impl Service for Decouple {
    fn name(&self) -> &'static str {
        "decouple"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // A role change on real clusters: never repeated automatically.
    fn idempotent(&self) -> bool {
        false
    }

    fn prepare(&self, cx: &PrepareCx<'_>, f: Fields) -> Result<Prepared, ApiError> {
        topology::prepare(Change::Decouple, cx, f)
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        topology::effect(Change::Decouple, cluster_id)
    }
}
