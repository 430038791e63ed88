//! `failover`: the standby becomes a primary when its primary is unavailable.

use serde_json::Value;

use super::schema::Fields;
use super::topology::{self, Change};
use super::{PrepareCx, Prepared, Service};
use crate::error::ApiError;
use crate::store::effect::Effect;

pub struct Failover;

impl Service for Failover {
    fn name(&self) -> &'static str {
        "failover"
    }

    fn roles(&self) -> &'static [&'static str] {
        &["maininstance"]
    }

    // A role change on real clusters: never repeated automatically.
    fn idempotent(&self) -> bool {
        false
    }

    /// `catch_up` (0|1, optional): on servers, when another standby of the
    /// same primary is further ahead, first take what it has instead of
    /// refusing.
    fn prepare(&self, cx: &PrepareCx<'_>, mut f: Fields) -> Result<Prepared, ApiError> {
        let catch_up = f.opt_int("catch_up", 0, 1, 0)?;
        let mut prepared = topology::prepare(Change::Failover, cx, f)?;
        if catch_up == 1 {
            prepared.params["catch_up"] = Value::from(1);
        }
        Ok(prepared)
    }

    fn model(&self, cluster_id: &str, _params: &Value) -> Effect {
        topology::effect(Change::Failover, cluster_id)
    }
}
