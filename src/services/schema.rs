//! Helpers for validating `service_params` field by field. Each error names the
//! field and never echoes a value (values may be passwords).

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::secret::Secret;

/// Largest `service_params` accepted, in bytes of JSON.
pub const MAX_SERVICE_PARAMS: usize = 64 * 1024;

/// Parses `service_params`: URL-decoded already, must be a JSON object.
pub fn parse(raw: Option<&str>) -> Result<Map<String, Value>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.trim().is_empty()) else {
        return Ok(Map::new());
    };
    if raw.len() > MAX_SERVICE_PARAMS {
        return Err(ApiError::invalid(
            "service_params",
            format!("is larger than {MAX_SERVICE_PARAMS} bytes"),
        ));
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("service_params", "must be a JSON object")),
        Err(e) => Err(ApiError::invalid(
            "service_params",
            format!(
                "is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )),
    }
}

/// The fields of one `service_params` object; `finish` refuses leftovers.
pub struct Fields {
    map: Map<String, Value>,
    /// `service_params` was not sent at all.
    absent: bool,
}

fn field_name(name: &str) -> String {
    format!("service_params.{name}")
}

impl Fields {
    pub fn new(map: Map<String, Value>, absent: bool) -> Self {
        Fields { map, absent }
    }

    fn missing(&self, name: &str) -> ApiError {
        if self.absent {
            ApiError::missing("service_params")
        } else {
            ApiError::missing(&field_name(name))
        }
    }

    fn bad(name: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError::invalid(&field_name(name), why)
    }

    /// A required string.
    pub fn string(&mut self, name: &str) -> Result<String, ApiError> {
        match self.opt_string(name)? {
            Some(v) => Ok(v),
            None => Err(self.missing(name)),
        }
    }

    pub fn opt_string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Self::bad(name, "must be a string")),
        }
    }

    /// A required string checked by `valid`; `expect` says what is allowed.
    pub fn checked(
        &mut self,
        name: &str,
        expect: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<String, ApiError> {
        let v = self.string(name)?;
        if valid(&v) {
            Ok(v)
        } else {
            Err(Self::bad(name, format!("must be {expect}")))
        }
    }

    /// A required string from a fixed set.
    pub fn one_of(&mut self, name: &str, allowed: &[&str]) -> Result<String, ApiError> {
        self.checked(name, &format!("one of {}", allowed.join(", ")), |v| {
            allowed.contains(&v)
        })
    }

    /// A required integer in `[min, max]`; a string of digits is tolerated
    /// because the documentation's own example sends one.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> Result<i64, ApiError> {
        let n = match self.map.remove(name) {
            None | Some(Value::Null) => return Err(self.missing(name)),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(_) => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Self::bad(
                name,
                format!("must be an integer from {min} to {max}"),
            )),
        }
    }

    /// A required secret that may come under several names (`passwd` or
    /// `password`); two different values are refused.
    pub fn secret(&mut self, names: &[&str], max_len: usize) -> Result<Secret, ApiError> {
        let mut found: Option<(String, &str)> = None;
        for name in names {
            match self.map.remove(*name) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    if let Some((prev, prev_name)) = &found {
                        if *prev != s {
                            return Err(ApiError::InvalidParameter(format!(
                                "parameters [{}] and [{}] disagree; send one of them",
                                field_name(prev_name),
                                field_name(name)
                            )));
                        }
                    } else {
                        found = Some((s, name));
                    }
                }
                Some(_) => return Err(Self::bad(name, "must be a string")),
            }
        }
        match found {
            None => Err(self.missing(names[0])),
            Some((s, name)) if s.is_empty() || s.chars().count() > max_len => Err(Self::bad(
                name,
                format!("must be 1 to {max_len} characters"),
            )),
            Some((s, _)) => Ok(Secret::new(s)),
        }
    }

    /// A required switch: `YES`/`NO`, or `ON`/`OFF` as the docs' examples
    /// send, in any case (notes §11).
    pub fn switch(&mut self, name: &str) -> Result<bool, ApiError> {
        let v = self.string(name)?;
        match v.to_ascii_uppercase().as_str() {
            "YES" | "ON" => Ok(true),
            "NO" | "OFF" => Ok(false),
            _ => Err(Self::bad(name, "must be YES or NO")),
        }
    }

    /// Refuses any field the schema did not consume.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::InvalidParameter(format!(
                "parameter [{}] is not a field of this service",
                field_name(&crate::params::printable(k))
            ))),
        }
    }
}

/// A host name or IP address (what a DBA would type for a source database).
pub fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
}

/// A database account name.
pub fn is_db_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        Fields::new(v.as_object().cloned().unwrap_or_default(), false)
    }

    #[test]
    fn parse_errors_name_service_params_and_never_echo_content() {
        let e = parse(Some(r#"{"passwd":"Hunter2!"#)).unwrap_err();
        assert_eq!(e.ret_code(), 1100);
        assert!(e.to_string().contains("[service_params] is not valid JSON"));
        assert!(!e.to_string().contains("Hunter2"));
        assert_eq!(parse(Some("[1]")).unwrap_err().ret_code(), 1100);
        assert!(parse(None).unwrap().is_empty());
    }

    #[test]
    fn deep_json_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse(Some(&deep)).unwrap_err().ret_code(), 1100);
    }

    #[test]
    fn secret_accepts_either_name_but_not_two_different_values() {
        let mut f = fields(json!({"password": "a"}));
        assert_eq!(f.secret(&["passwd", "password"], 64).unwrap().expose(), "a");
        let mut f = fields(json!({"passwd": "a", "password": "a"}));
        assert!(f.secret(&["passwd", "password"], 64).is_ok());
        let mut f = fields(json!({"passwd": "a", "password": "b"}));
        let e = f.secret(&["passwd", "password"], 64).unwrap_err();
        assert!(e.to_string().contains("disagree") && !e.to_string().contains("\"a\""));
        let mut f = fields(json!({}));
        assert!(
            f.secret(&["passwd", "password"], 64)
                .unwrap_err()
                .to_string()
                .contains("[service_params.passwd] is required")
        );
    }

    #[test]
    fn int_and_leftovers() {
        let mut f = fields(json!({"port": 3306, "p2": "3307", "p3": 70000, "p4": 1.5, "x": 1}));
        assert_eq!(f.int("port", 1, 65535).unwrap(), 3306);
        assert_eq!(f.int("p2", 1, 65535).unwrap(), 3307);
        assert_eq!(f.int("p3", 1, 65535).unwrap_err().ret_code(), 1100);
        assert_eq!(f.int("p4", 1, 65535).unwrap_err().ret_code(), 1100);
        let e = f.finish().unwrap_err();
        assert!(e.to_string().contains("[service_params.x] is not a field"));
    }
}
