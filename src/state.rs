//! What every request handler shares.

use std::time::Duration;

use crate::auth::{FailureThrottle, TimeWindow};
use crate::store::Store;
use crate::worker::servers::fleet::Fleet;

/// Shared by every request.
pub struct AppState {
    pub store: Store,
    pub throttle: FailureThrottle,
    pub max_open_jobs_per_owner: u64,
    pub window: TimeWindow,
    pub body_timeout: Duration,
    /// Registered servers, for reads that show their live state.
    pub fleet: Fleet,
    /// Who may read `/metrics`, and with which labels.
    pub metrics: crate::metrics::MetricsConfig,
}
