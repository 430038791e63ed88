//! Which `time_stamp` / `expires` pairs are still valid (notes §7 and §11).

use crate::clock::parse_ts;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct TimeWindow {
    /// Allowed |now − time_stamp| when no `expires` is sent (documented: 60 s).
    pub skew_secs: i64,
    /// Longest `expires − time_stamp` accepted (the CLI sends 20 min, docs show 1 h).
    pub max_expires_secs: i64,
}

impl Default for TimeWindow {
    fn default() -> Self {
        TimeWindow {
            skew_secs: 60,
            max_expires_secs: 3600,
        }
    }
}

impl TimeWindow {
    /// Returns the last second at which this request is valid.
    pub fn check(
        &self,
        now: i64,
        time_stamp: &str,
        expires: Option<&str>,
    ) -> Result<i64, ApiError> {
        let ts = parse_ts(time_stamp)
            .ok_or_else(|| ApiError::invalid("time_stamp", "must be YYYY-MM-DDThh:mm:ssZ (UTC)"))?;
        if ts > now + self.skew_secs {
            return Err(ApiError::RequestExpired(format!(
                "time_stamp [{time_stamp}] is in the future by more than {} s; check the client's clock",
                self.skew_secs
            )));
        }
        match expires {
            Some(exp) => {
                let exp_ts = parse_ts(exp).ok_or_else(|| {
                    ApiError::invalid("expires", "must be YYYY-MM-DDThh:mm:ssZ (UTC)")
                })?;
                if exp_ts - ts > self.max_expires_secs {
                    return Err(ApiError::RequestExpired(format!(
                        "expires [{exp}] is more than {} s after time_stamp",
                        self.max_expires_secs
                    )));
                }
                if now > exp_ts {
                    return Err(ApiError::RequestExpired(format!(
                        "the request expired at [{exp}]"
                    )));
                }
                Ok(exp_ts)
            }
            None => {
                if now - ts > self.skew_secs {
                    return Err(ApiError::RequestExpired(format!(
                        "time_stamp [{time_stamp}] is more than {} s old",
                        self.skew_secs
                    )));
                }
                Ok(ts + self.skew_secs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::format_ts;

    const NOW: i64 = 1_700_000_000;

    fn check(ts: i64, exp: Option<i64>) -> Result<i64, u32> {
        let exp = exp.map(format_ts);
        TimeWindow::default()
            .check(NOW, &format_ts(ts), exp.as_deref())
            .map_err(|e| e.ret_code())
    }

    #[test]
    fn without_expires_sixty_seconds_either_way() {
        assert!(check(NOW, None).is_ok());
        assert!(check(NOW - 60, None).is_ok());
        assert_eq!(check(NOW - 61, None), Err(1300));
        assert!(check(NOW + 60, None).is_ok());
        assert_eq!(check(NOW + 61, None), Err(1300));
    }

    #[test]
    fn with_expires_valid_until_expiry() {
        // the CLI's 20 minutes
        assert!(check(NOW - 1000, Some(NOW + 200)).is_ok());
        assert_eq!(check(NOW - 1300, Some(NOW - 100)), Err(1300));
        assert_eq!(check(NOW - 10, Some(NOW + 4000)), Err(1300));
        assert_eq!(check(NOW + 120, Some(NOW + 300)), Err(1300));
    }

    #[test]
    fn malformed_is_1100() {
        let w = TimeWindow::default();
        assert_eq!(
            w.check(NOW, "yesterday", None).unwrap_err().ret_code(),
            1100
        );
        assert_eq!(
            w.check(NOW, &format_ts(NOW), Some("soon"))
                .unwrap_err()
                .ret_code(),
            1100
        );
    }
}
