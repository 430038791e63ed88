//! The hosts an executor may be told to connect to. Whatever `service_params`
//! name, a job aimed elsewhere fails before anything runs, so the gateway
//! cannot be used to probe a network. Names are compared, never resolved.

use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct AllowList {
    nets: Vec<(IpAddr, u8)>,
    names: Vec<String>,
}

/// Loopback only.
pub const DEFAULT: [&str; 3] = ["127.0.0.0/8", "::1", "localhost"];

impl AllowList {
    /// Entries are IP addresses, CIDR networks or host names.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, String> {
        let mut list = AllowList {
            nets: Vec::new(),
            names: Vec::new(),
        };
        for e in entries {
            let e = e.as_ref().trim();
            let (addr, bits) = match e.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (e, None),
            };
            match addr.parse::<IpAddr>() {
                Ok(ip) => {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let bits = match bits {
                        None => max,
                        Some(b) => {
                            b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
                                format!("allow_hosts entry {e:?}: bad prefix length")
                            })?
                        }
                    };
                    list.nets.push((ip, bits));
                }
                Err(_) if bits.is_none() && !e.is_empty() => {
                    list.names.push(e.to_ascii_lowercase())
                }
                Err(_) => {
                    return Err(format!(
                        "allow_hosts entry {e:?} is not an IP, network or name"
                    ));
                }
            }
        }
        Ok(list)
    }

    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) => self
                .nets
                .iter()
                .any(|(net, bits)| contains(*net, *bits, ip)),
            Err(_) => self.names.iter().any(|n| n.eq_ignore_ascii_case(host)),
        }
    }
}

fn contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_loopback_only() {
        let a = AllowList::parse(&DEFAULT).expect("parses");
        for ok in ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "LOCALHOST"] {
            assert!(a.allows(ok), "{ok}");
        }
        for no in [
            "192.168.0.232",
            "10.0.0.1",
            "::2",
            "example.com",
            "0.0.0.0",
            "",
        ] {
            assert!(!a.allows(no), "{no}");
        }
    }

    #[test]
    fn networks_and_bad_entries() {
        let a = AllowList::parse(&["10.1.0.0/16", "db.internal"]).expect("parses");
        assert!(a.allows("10.1.200.3") && !a.allows("10.2.0.1") && a.allows("db.internal"));
        assert!(AllowList::parse(&["10.0.0.0/40"]).is_err());
        assert!(AllowList::parse(&["bad/8"]).is_err());
        let all = AllowList::parse(&["0.0.0.0/0"]).expect("parses");
        assert!(all.allows("8.8.8.8") && !all.allows("::1"));
    }
}
