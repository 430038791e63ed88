//! Request parameters: decoded once from the query string or form body.
//!
//! Decoding is strict where the signature depends on it: a repeated name or
//! bytes that are not UTF-8 after `%XX` decoding are refused rather than
//! guessed at, because the client signed something we cannot reproduce.

use percent_encoding::percent_decode;

use crate::error::ApiError;

/// Upper bound on the number of parameters in one request.
pub const MAX_PARAMS: usize = 512;

/// Decoded parameters, sorted by name (byte order, as the signature needs).
/// A sorted vector rather than a map: a request has about ten, and one sort
/// after parsing is cheaper than a tree insert (and a lookup for repeats) each.
#[derive(Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// Only names: values may hold a signature or a password.
impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Params {
    /// Parse one or more `application/x-www-form-urlencoded` sources into one set.
    pub fn parse(sources: &[&[u8]]) -> Result<Params, ApiError> {
        let mut pairs = Vec::with_capacity(16);
        for src in sources {
            for seg in src.split(|b| *b == b'&') {
                if seg.is_empty() {
                    continue;
                }
                let (name, value) = match seg.iter().position(|b| *b == b'=') {
                    Some(i) => (&seg[..i], &seg[i + 1..]),
                    None => (seg, &b""[..]),
                };
                let name = decode(name)?;
                if name.is_empty() {
                    return Err(ApiError::InvalidParameter(
                        "a parameter has an empty name".into(),
                    ));
                }
                let value = decode(value).map_err(|_| {
                    ApiError::invalid(&printable(&name), "is not valid UTF-8 after decoding")
                })?;
                if pairs.len() >= MAX_PARAMS {
                    return Err(ApiError::InvalidParameter(format!(
                        "too many parameters (at most {MAX_PARAMS})"
                    )));
                }
                pairs.push((name, value));
            }
        }
        pairs.sort_unstable_by(|a: &(String, String), b| a.0.cmp(&b.0));
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ApiError::invalid(&printable(&w[0].0), "is repeated"));
        }
        Ok(Params { pairs })
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Params
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut params = Params::default();
        for (k, v) in pairs {
            params.insert(k, v);
        }
        params
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.pairs.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).ok().map(|i| self.pairs[i].1.as_str())
    }

    pub fn take(&mut self, name: &str) -> Option<String> {
        self.find(name).ok().map(|i| self.pairs.remove(i).1)
    }

    /// Sets `name`, replacing a value it had.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.find(&name) {
            Ok(i) => self.pairs[i].1 = value,
            Err(i) => self.pairs.insert(i, (name, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// A required, non-empty parameter.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::missing(name)),
        }
    }

    /// An optional parameter; an empty value counts as absent.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A list parameter: `name.1`, `name.2`, … (1-based, in index order), or the
    /// scalar `name=` form the Python SDK sends for a single value.
    pub fn list(&self, name: &str) -> Result<Vec<&str>, ApiError> {
        let mut items: Vec<(u32, &str)> = Vec::new();
        // Every `name.N` sorts at or after `name.` (compared without making it).
        let from = self
            .pairs
            .partition_point(|(k, _)| k.bytes().lt(name.bytes().chain([b'.'])));
        for (k, v) in &self.pairs[from..] {
            let Some(idx) = k.strip_prefix(name).and_then(|rest| rest.strip_prefix('.')) else {
                break;
            };
            let n: u32 = idx
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::invalid(k, "needs a 1-based numeric index"))?;
            // An empty item (an unset shell variable) would widen the
            // request to everything: a polling script would read another
            // job's status.
            if v.is_empty() {
                return Err(ApiError::invalid(k, "is empty"));
            }
            items.push((n, v.as_str()));
        }
        items.sort_by_key(|(n, _)| *n);
        let mut out: Vec<&str> = items.into_iter().map(|(_, v)| v).collect();
        match self.get(name) {
            Some("") => return Err(ApiError::invalid(name, "is empty")),
            Some(v) => out.insert(0, v),
            None => {}
        }
        Ok(out)
    }

    /// An optional unsigned integer within `[min, max]`.
    pub fn int(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid(
                    name,
                    format!("must be an integer from {min} to {max}"),
                )),
            },
        }
    }
}

/// Form decoding: `+` is a space, then `%XX`; the result must be UTF-8.
fn decode(raw: &[u8]) -> Result<String, ApiError> {
    // Most names and many values need no decoding: one check, one copy.
    if !raw.iter().any(|b| matches!(b, b'+' | b'%')) {
        return std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| ApiError::InvalidParameter("a parameter name is not valid UTF-8".into()));
    }
    let plus_free: std::borrow::Cow<[u8]> = if raw.contains(&b'+') {
        raw.iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect::<Vec<u8>>()
            .into()
    } else {
        raw.into()
    };
    // Decoding never lengthens: one allocation, no regrowth byte by byte.
    let mut bytes = Vec::with_capacity(plus_free.len());
    bytes.extend(percent_decode(&plus_free));
    String::from_utf8(bytes)
        .map_err(|_| ApiError::InvalidParameter("a parameter name is not valid UTF-8".into()))
}

/// A name safe to echo in a message: control characters dropped, length capped.
pub fn printable(name: &str) -> String {
    let mut s: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if name.chars().count() > 64 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Params, ApiError> {
        Params::parse(&[s.as_bytes()])
    }

    #[test]
    fn decodes_plus_and_percent_and_skips_empty_segments() {
        let params = p("&&a=x+y%20z&&b=%2B&c").unwrap();
        assert_eq!(params.get("a"), Some("x y z"));
        assert_eq!(params.get("b"), Some("+"));
        assert_eq!(params.get("c"), Some(""));
        assert_eq!(params.len(), 3);
    }

    #[test]
    fn debug_shows_names_only() {
        let params =
            p("signature=c2VjcmV0&service_params=%7B%22password%22%3A%22pw%22%7D").unwrap();
        let shown = format!("{params:?}");
        assert!(shown.contains("service_params") && shown.contains("signature"));
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("pw"),
            "{shown}"
        );
    }

    #[test]
    fn repeated_key_is_refused() {
        let err = p("a=1&a=2").unwrap_err();
        assert_eq!(err.ret_code(), 1100);
        assert!(err.to_string().contains("[a] is repeated"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(p("a=%FF%FE").unwrap_err().ret_code(), 1100);
        assert_eq!(p("%FF=1").unwrap_err().ret_code(), 1100);
    }

    #[test]
    fn list_accepts_indexed_and_scalar_forms_in_index_order() {
        let params = p("jobs.10=c&jobs.2=b&jobs.1=a").unwrap();
        assert_eq!(params.list("jobs").unwrap(), vec!["a", "b", "c"]);
        let params = p("status=pending").unwrap();
        assert_eq!(params.list("status").unwrap(), vec!["pending"]);
        assert_eq!(
            p("jobs.0=x").unwrap().list("jobs").unwrap_err().ret_code(),
            1100
        );
        assert!(p("jobsx=1").unwrap().list("jobs").unwrap().is_empty());
        for empty in ["jobs.1=", "jobs=", "jobs.1=a&jobs.2="] {
            let e = p(empty).unwrap().list("jobs").unwrap_err();
            assert_eq!(e.ret_code(), 1100, "{empty}");
            assert!(e.to_string().contains("is empty"), "{empty}: {e}");
        }
    }

    #[test]
    fn list_finds_its_items_among_names_sorting_around_them() {
        // `-` and `+` sort before `.`, `a` and `/` after, `job` before `jobs`.
        let params =
            p("job.1=no&jobs=s&jobs-x=no&jobs%2B=no&jobs.2=b&jobs.1=a&jobs%2F=no&jobsa=no")
                .unwrap();
        assert_eq!(params.list("jobs").unwrap(), vec!["s", "a", "b"]);
        assert_eq!(params.list("job").unwrap(), vec!["no"]);
        assert!(params.list("jo").unwrap().is_empty());
        assert_eq!(params.list("jobs.1").unwrap(), vec!["a"]);
    }

    #[test]
    fn list_agrees_with_a_plain_scan_over_every_subset_of_names() {
        let names = [
            "a", "job", "job.1", "jobs", "jobs+", "jobs-x", "jobs.1", "jobs.2", "jobs.10", "jobs/",
            "jobsa", "z",
        ];
        // The plain scan: the scalar first, then `name.N` in index order.
        let scan = |params: &Params, name: &str| -> Vec<String> {
            let mut indexed: Vec<(u32, String)> = params
                .iter()
                .filter_map(|(k, v)| {
                    let n = k.strip_prefix(name)?.strip_prefix('.')?.parse().ok()?;
                    Some((n, v.to_string()))
                })
                .collect();
            indexed.sort();
            let scalar = params.get(name).map(str::to_string);
            scalar
                .into_iter()
                .chain(indexed.into_iter().map(|(_, v)| v))
                .collect()
        };
        for mask in 0u32..(1 << names.len()) {
            let params = Params::from_pairs(
                names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, n)| (*n, format!("v{n}"))),
            );
            for name in ["jobs", "job"] {
                let listed: Vec<String> = params
                    .list(name)
                    .unwrap()
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                assert_eq!(listed, scan(&params, name), "{name} in {params:?}");
            }
        }
    }

    #[test]
    fn int_bounds() {
        let params = p("limit=101&offset=abc&x=5").unwrap();
        assert_eq!(
            params.int("limit", 20, 1, 100).unwrap_err().ret_code(),
            1100
        );
        assert_eq!(params.int("offset", 0, 0, 10).unwrap_err().ret_code(), 1100);
        assert_eq!(params.int("x", 0, 0, 10).unwrap(), 5);
        assert_eq!(params.int("missing", 20, 1, 100).unwrap(), 20);
    }
}
