//! How a copy is fed to its target: at most `max_mbps` during the DR task's
//! flow-control periods (DRS applies flow control to the initial copy
//! only), without the objects' `DEFINER` clauses when the task says not to
//! migrate them, and counted, for the task's progress.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Clone, Default)]
pub struct Shaping {
    pub max_bytes_per_sec: Option<u64>,
    /// Minutes of the day (UTC), `[start, end)`; empty: all day.
    pub periods: Vec<(u32, u32)>,
    pub strip_definer: bool,
    /// Bytes fed so far, across every target, and the bytes to feed in all
    /// (0 until the copy's size is known).
    pub fed: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
    /// Tables created so far on the targets, and in all.
    pub tables_fed: Arc<AtomicU64>,
    pub tables_total: Arc<AtomicU64>,
}

impl Shaping {
    /// A DR task's `flow_control` and `migrate_definer`.
    pub fn from_task(flow: &Value, migrate_definer: bool) -> Shaping {
        let minute = |v: &Value| -> Option<u32> {
            let (h, m) = v.as_str()?.split_once(':')?;
            Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
        };
        let periods = flow["periods"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((minute(&p["start"])?, minute(&p["end"])?)))
                    .collect()
            })
            .unwrap_or_default();
        Shaping {
            max_bytes_per_sec: flow["max_mbps"].as_u64().map(|m| m * 1024 * 1024),
            periods,
            strip_definer: !migrate_definer,
            fed: Arc::default(),
            total: Arc::default(),
            tables_fed: Arc::default(),
            tables_total: Arc::default(),
        }
    }

    /// Whether the limit applies now.
    fn limited(&self) -> bool {
        if self.max_bytes_per_sec.is_none() {
            return false;
        }
        if self.periods.is_empty() {
            return true;
        }
        let now = (crate::clock::now_unix().rem_euclid(86_400) / 60) as u32;
        self.periods.iter().any(|(a, b)| {
            if a < b {
                (*a..*b).contains(&now)
            } else {
                now >= *a || now < *b
            }
        })
    }

    /// Streams the file at `path` into `to`, shaped.
    pub async fn feed(
        &self,
        path: &std::path::Path,
        mut to: tokio::process::ChildStdin,
    ) -> std::io::Result<()> {
        let file = tokio::fs::File::open(path).await?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut line = Vec::new();
        let started = Instant::now();
        let mut sent = 0u64;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                break;
            }
            // Only statements that define objects: data lines stay as they are.
            let ddl = line.starts_with(b"/*!") || line.starts_with(b"CREATE");
            let out = if self.strip_definer && ddl {
                strip_definers(&line)
            } else {
                line.clone()
            };
            if out.starts_with(b"CREATE TABLE") {
                self.tables_fed.fetch_add(1, Ordering::Relaxed);
            }
            to.write_all(&out).await?;
            sent += out.len() as u64;
            self.fed.fetch_add(out.len() as u64, Ordering::Relaxed);
            if let Some(rate) = self.max_bytes_per_sec.filter(|_| self.limited()) {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        to.shutdown().await
    }
}

/// The line without its `` DEFINER=`user`@`host` `` clauses (views,
/// triggers, routines and events then belong to the account restoring).
pub fn strip_definers(line: &[u8]) -> Vec<u8> {
    const KEY: &[u8] = b"DEFINER=`";
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(KEY)
            && let Some(len) = definer_len(&line[i..])
        {
            i += len;
            // The space that followed it goes too.
            if line.get(i) == Some(&b' ') {
                i += 1;
            }
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

/// The length of `` DEFINER=`u`@`h` `` at the start of `s`.
fn definer_len(s: &[u8]) -> Option<usize> {
    let mut i = 9; // after DEFINER=`
    let quoted = |s: &[u8], mut i: usize| -> Option<usize> {
        // A quoted name ends at a backquote not doubled.
        loop {
            match s.get(i)? {
                b'`' if s.get(i + 1) == Some(&b'`') => i += 2,
                b'`' => return Some(i + 1),
                _ => i += 1,
            }
        }
    };
    i = quoted(s, i)?;
    if s.get(i) != Some(&b'@') || s.get(i + 1) != Some(&b'`') {
        return None;
    }
    quoted(s, i + 2)
}

/// How many tables a dump creates (its `CREATE TABLE` lines).
pub fn tables_in(path: &std::path::Path) -> u64 {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(path) else {
        return 0;
    };
    std::io::BufReader::new(f)
        .split(b'\n')
        .filter_map(Result::ok)
        .filter(|l| l.starts_with(b"CREATE TABLE"))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definers_go_and_the_rest_stays() {
        let line =
            b"/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */ VIEW v AS SELECT 1\n";
        assert_eq!(
            String::from_utf8(strip_definers(line)).expect("utf8"),
            "/*!50013 SQL SECURITY DEFINER */ VIEW v AS SELECT 1\n"
        );
        let odd = b"CREATE DEFINER=`a``b`@`%` PROCEDURE p() BEGIN END";
        assert_eq!(
            strip_definers(odd),
            b"CREATE PROCEDURE p() BEGIN END".to_vec()
        );
        let not_one = b"SELECT 'DEFINER=`x`'";
        assert_eq!(strip_definers(not_one), not_one.to_vec());
    }

    #[test]
    fn periods_and_rates_come_from_the_task() {
        let s = Shaping::from_task(
            &serde_json::json!({"max_mbps": 2, "periods": [{"start": "22:00", "end": "02:00"}]}),
            false,
        );
        assert_eq!(s.max_bytes_per_sec, Some(2 * 1024 * 1024));
        assert_eq!(s.periods, vec![(1320, 120)]);
        assert!(s.strip_definer);
        assert!(!Shaping::from_task(&serde_json::json!({}), true).limited());
    }
}
