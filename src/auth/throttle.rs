//! Throttles signature guessing: after `limit` failed signatures for one
//! access key id within `window`, that id is refused (2500) until the window
//! ends, correct signature or not. Unknown ids are counted the same way, so
//! the throttle reveals nothing about which ids exist.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;
use crate::params::printable;

/// Most ids tracked at once; beyond it, expired entries are dropped first.
const MAX_TRACKED: usize = 10_000;

pub struct FailureThrottle {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<String, (u32, Instant)>>,
}

impl FailureThrottle {
    pub fn new(limit: u32, window: Duration) -> Self {
        FailureThrottle {
            limit: limit.max(1),
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, key_id: &str) -> Result<(), ApiError> {
        let Ok(seen) = self.seen.lock() else {
            return Ok(());
        };
        match seen.get(key_id) {
            Some((n, since)) if *n >= self.limit && since.elapsed() < self.window => {
                let wait = self.window.saturating_sub(since.elapsed()).as_secs() + 1;
                Err(ApiError::QuotaExceeded(format!(
                    "too many failed signatures for access key [{}]; retry in {wait} s",
                    printable(key_id)
                )))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key_id: &str) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() >= MAX_TRACKED && !seen.contains_key(key_id) {
            let window = self.window;
            seen.retain(|_, (_, since)| since.elapsed() < window);
            if seen.len() >= MAX_TRACKED {
                return;
            }
        }
        let entry = seen
            .entry(key_id.chars().take(64).collect())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_until_the_window_ends() {
        let t = FailureThrottle::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(t.check("AK").is_ok());
            t.record_failure("AK");
        }
        assert_eq!(t.check("AK").unwrap_err().ret_code(), 2500);
        assert!(t.check("OTHER").is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.check("AK").is_ok());
    }
}
