//! Actions, dispatched on `action=` after authentication. Each action is one
//! file; registering it is one line in `REGISTRY`.

mod describe_jobs;
mod run_cluster_custom_service;

use serde_json::{Map, Value};

use crate::BoxFuture;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::params::Params;

/// The payload keys of a successful reply; the edge adds `action` and `ret_code`.
pub type Reply = Map<String, Value>;

/// Everything a handler may use: the authenticated caller and the parameters.
pub struct Context<'a> {
    pub state: &'a AppState,
    pub caller: &'a Caller,
    pub params: &'a Params,
}

pub trait Action: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn handle<'a>(&'a self, cx: &'a Context<'a>) -> BoxFuture<'a, Result<Reply, ApiError>>;
}

static REGISTRY: &[&dyn Action] = &[
    &describe_jobs::DescribeJobs,
    &run_cluster_custom_service::RunClusterCustomService,
];

pub fn find(name: &str) -> Option<&'static dyn Action> {
    REGISTRY.iter().copied().find(|a| a.name() == name)
}

pub fn names() -> Vec<&'static str> {
    let mut v: Vec<_> = REGISTRY.iter().map(|a| a.name()).collect();
    v.sort_unstable();
    v
}

/// `zone`, required and lower-case.
pub fn zone(params: &Params) -> Result<&str, ApiError> {
    let z = params.required("zone")?;
    if crate::ids::is_zone(z) {
        Ok(z)
    } else {
        Err(ApiError::invalid(
            "zone",
            "must be a lower-case zone id such as pek3a",
        ))
    }
}
