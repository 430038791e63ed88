//! MariaDB GTID lists (`domain-server-seq`, comma separated): the dialect
//! seam. MySQL's `uuid:1-N` sets would be a sibling of this file.

use std::collections::BTreeMap;
use std::fmt;

/// One position per replication domain, as `@@gtid_binlog_pos`,
/// `@@gtid_slave_pos` and `Gtid_IO_Pos` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(BTreeMap<u32, (u32, u64)>);

#[derive(Debug, thiserror::Error)]
#[error("[{0}] is not a MariaDB GTID list")]
pub struct BadGtid(String);

impl GtidPos {
    pub fn parse(text: &str) -> Result<GtidPos, BadGtid> {
        let mut map = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let (Some(d), Some(s), Some(n), None) = (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(BadGtid(text.to_string()));
            };
            let parsed = (d.parse::<u32>(), s.parse::<u32>(), n.parse::<u64>());
            let (Ok(d), Ok(s), Ok(n)) = parsed else {
                return Err(BadGtid(text.to_string()));
            };
            map.insert(d, (s, n));
        }
        Ok(GtidPos(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sequence number reached in `domain` (0 when none).
    pub fn seq(&self, domain: u32) -> u64 {
        self.0.get(&domain).map_or(0, |(_, n)| *n)
    }

    /// This position with `domain` at `seq` (server id 0 when new).
    pub fn with(mut self, domain: u32, seq: u64) -> GtidPos {
        let server = self.0.get(&domain).map_or(0, |(s, _)| *s);
        self.0.insert(domain, (server, seq));
        self
    }

    /// The server that wrote the last transaction of `domain`.
    pub fn server(&self, domain: u32) -> u32 {
        self.0.get(&domain).map_or(0, |(s, _)| *s)
    }

    pub fn domains(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.keys().copied()
    }

    /// Whether every domain of `other` is reached here: a later seq, or the
    /// same transaction (the same seq from another server is another
    /// transaction: the histories forked).
    pub fn covers(&self, other: &GtidPos) -> bool {
        other.0.iter().all(|(d, (server, seq))| {
            self.seq(*d) > *seq || (self.seq(*d) == *seq && self.server(*d) == *server)
        })
    }

    /// Transactions `other` has that this position lacks, summed over domains.
    pub fn behind(&self, other: &GtidPos) -> u64 {
        other
            .0
            .keys()
            .map(|d| other.seq(*d).saturating_sub(self.seq(*d)))
            .sum()
    }
}

impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(d, (s, n))| format!("{d}-{s}-{n}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// `@@gtid_binlog_state`: every (domain, server) that wrote in the binlog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidState(BTreeMap<(u32, u32), u64>);

impl GtidState {
    pub fn parse(text: &str) -> Result<GtidState, BadGtid> {
        let mut map = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let one = GtidPos::parse(part)?;
            for (d, (s, n)) in one.0 {
                map.insert((d, s), n);
            }
        }
        Ok(GtidState(map))
    }

    /// The (domain, server) pairs here that `source` never wrote or saw:
    /// transactions that exist only on this node (errant).
    pub fn errant_against(&self, source: &GtidState) -> Vec<String> {
        self.0
            .iter()
            .filter(|((d, s), n)| source.0.get(&(*d, *s)).is_none_or(|m| *n > m))
            .map(|((d, s), n)| format!("{d}-{s}-{n}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compares_and_prints() {
        let a = GtidPos::parse("0-1-10,1-2-5").expect("list");
        let b = GtidPos::parse("0-2-12").expect("one");
        assert_eq!(a.to_string(), "0-1-10,1-2-5");
        assert!(b.covers(&GtidPos::parse("0-1-11").expect("x")));
        assert!(!a.covers(&b));
        assert_eq!(a.behind(&b), 2);
        assert_eq!(b.behind(&a), 5);
        assert!(GtidPos::parse("").expect("empty").is_empty());
        // The same seq written by two servers: two histories.
        let x = GtidPos::parse("0-11-657").expect("x");
        let y = GtidPos::parse("0-21-657").expect("y");
        assert!(!x.covers(&y) && !y.covers(&x) && x.covers(&x));
        for bad in ["0-1", "x-1-2", "0-1-2-3", "0-1-"] {
            assert!(GtidPos::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errant_transactions_are_those_the_source_never_had() {
        let source = GtidState::parse("0-1-100").expect("source");
        let clean = GtidState::parse("0-1-90").expect("clean");
        let errant = GtidState::parse("0-1-100,0-7-3").expect("errant");
        assert!(clean.errant_against(&source).is_empty());
        assert_eq!(errant.errant_against(&source), vec!["0-7-3".to_string()]);
    }
}
