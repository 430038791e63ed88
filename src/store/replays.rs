//! Which signed requests already stored a job, while they are still valid.
//!
//! Every job row carries its request's replay key and expiry, so the record
//! is durable with the job; this in-memory index over the recent rows answers
//! lookups and is rebuilt from them on open. A table keyed by the (random)
//! request digest wrote a page of its own per job, which cost the write path
//! about a third of its throughput. Past [`CAP`] live entries, new ones go to
//! the `replays` table as before, so memory stays bounded under any load.
//!
//! An entry is 16 bytes: 64 bits of a hash of the digest and where its job
//! is. A hit is confirmed against the job row's `replay_digest`, so two
//! requests that share a hash can never answer with each other's job (the
//! second one goes to the table instead). With 32-byte entries (a 128-bit
//! key, a 64-bit seq) the index held half as many jobs in the same memory,
//! and `qcgate bench` crossed it within a few seconds of writes: every job
//! after that also wrote a random page of the table, which raised the
//! gateway's CPU per write from ~30 to ~55 µs.
//!
//! Only the writer thread adds entries. They stay pending (seen by the writer,
//! not by readers) until the transaction that stored their job commits, and
//! are removed again if their operation or the commit fails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, OptionalExtension, params};
use sha2::Digest;

use super::StoreError;
use super::jobs::Once;
use super::writer::CommitListener;
use crate::clock::now_unix;

/// Live entries kept in memory: 7/8 of 2^19, the most a table of 2^19 slots
/// holds before it doubles (16 bytes and a control byte a slot, ~8.5 MiB).
/// About four minutes of 2000 new jobs per second signed with `time_stamp`
/// alone. The table is allocated at this size up front: growing it copied
/// every entry on the writer's thread while requests waited, and the old
/// table stayed resident (peak 67.5 against 60.5 MiB in a `bench` run).
pub const CAP: usize = 458_752;

/// How often expired entries are dropped, in seconds.
const SWEEP_EVERY: i64 = 10;

/// The in-memory key of a request: 64 bits of a hash of its digest.
/// The writer computes it once per job, for the lookup and the record.
pub type Key = u64;

pub fn key(digest: &str) -> Key {
    let hash = sha2::Sha256::digest(digest.as_bytes());
    let mut k = [0u8; 8];
    k.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(k)
}

/// A job's seq and its request's expiry, in 8 bytes: the seq's top bit says
/// whether the batch that stored it committed.
#[derive(Clone, Copy)]
struct Entry {
    seq: u32,
    /// Unix seconds; a signed request's expiry is minutes away.
    expires: u32,
}

const COMMITTED: u32 = 1 << 31;

impl Entry {
    /// `None` for a seq past 2^31 - 1: such a job's record goes to the table.
    fn pending(seq: i64, expires: i64) -> Option<Entry> {
        let seq = u32::try_from(seq).ok().filter(|s| s & COMMITTED == 0)?;
        Some(Entry {
            seq,
            expires: kept_expiry(expires),
        })
    }

    fn seq(self) -> i64 {
        i64::from(self.seq & !COMMITTED)
    }

    fn committed(self) -> bool {
        self.seq & COMMITTED != 0
    }

    fn commit(&mut self) {
        self.seq |= COMMITTED;
    }

    fn live(self, now: i64) -> bool {
        i64::from(self.expires) >= now
    }
}

/// An expiry as kept: one past 2106 is kept as the last second that fits,
/// one before 1970 as 0 (already expired).
fn kept_expiry(expires: i64) -> u32 {
    u32::try_from(expires.max(0)).unwrap_or(u32::MAX)
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    /// Added in the open transaction, in order.
    pending: Vec<Key>,
    /// `pending.len()` when the current operation started.
    op_start: usize,
    next_sweep: i64,
    /// New entries go to the table for want of room (said once in the log).
    full: bool,
}

pub struct Replays {
    inner: Mutex<Inner>,
    /// Live entries kept in memory ([`CAP`] but in tests).
    cap: usize,
    /// The `replays` table may hold live rows (an overflow, or rows written
    /// before this index existed): lookups that miss memory look there too.
    table: AtomicBool,
}

impl Replays {
    /// Rebuilds the index from the jobs created within `lookback_secs` (the
    /// longest a signed request stays valid).
    pub fn load(conn: &Connection, lookback_secs: i64) -> Result<Replays, StoreError> {
        Self::load_capped(conn, lookback_secs, CAP)
    }

    fn load_capped(
        conn: &Connection,
        lookback_secs: i64,
        cap: usize,
    ) -> Result<Replays, StoreError> {
        let now = now_unix();
        let mut inner = Inner {
            map: HashMap::with_capacity(cap),
            ..Inner::default()
        };
        let mut overflow = Vec::new();
        let mut stmt = conn.prepare(
            "SELECT seq, create_time, replay_digest, replay_expires FROM jobs ORDER BY seq DESC",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if r.get::<_, i64>(1)? < now - lookback_secs {
                break;
            }
            let (Some(digest), Some(expires)) = (r.get::<_, Option<String>>(2)?, r.get(3)?) else {
                continue;
            };
            if expires < now {
                continue;
            }
            let seq: i64 = r.get(0)?;
            let k = key(&digest);
            let kept = match Entry::pending(seq, expires) {
                Some(mut e) if inner.map.len() < cap && !inner.map.contains_key(&k) => {
                    e.commit();
                    inner.map.insert(k, e);
                    true
                }
                _ => false,
            };
            if !kept {
                overflow.push((digest, expires, seq));
            }
        }
        drop(rows);
        for (digest, expires, seq) in overflow {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO replays (expires, digest, job_id)
                 SELECT ?1, ?2, id FROM jobs WHERE seq = ?3",
            )?
            .execute(params![expires, digest, seq])?;
        }
        let table = conn
            .prepare("SELECT 1 FROM replays WHERE expires >= ?1 LIMIT 1")?
            .exists([now])?;
        inner.next_sweep = now + SWEEP_EVERY;
        Ok(Replays {
            inner: Mutex::new(inner),
            cap,
            table: AtomicBool::new(table),
        })
    }

    /// The job this request already stored, as readers see it (committed only).
    pub fn committed(&self, conn: &Connection, once: &Once) -> Result<Option<String>, StoreError> {
        self.find(conn, once, &key(&once.digest), false)
    }

    /// The same, inside the writer's transaction (its own pending entries
    /// too); `k` is `key(&once.digest)`.
    pub fn in_writer(
        &self,
        conn: &Connection,
        once: &Once,
        k: &Key,
    ) -> Result<Option<String>, StoreError> {
        self.find(conn, once, k, true)
    }

    fn find(
        &self,
        conn: &Connection,
        once: &Once,
        k: &Key,
        pending: bool,
    ) -> Result<Option<String>, StoreError> {
        let now = now_unix();
        if once.expires < now {
            return Ok(None);
        }
        let seq = self
            .lock()
            .map
            .get(k)
            .and_then(|e| (e.live(now) && (e.committed() || pending)).then(|| e.seq()));
        if let Some(seq) = seq {
            // The row confirms the hash: another request may share it.
            let id = conn
                .prepare_cached("SELECT id FROM jobs WHERE seq = ?1 AND replay_digest = ?2")?
                .query_row(params![seq, once.digest], |r| r.get(0))
                .optional()?;
            if id.is_some() {
                return Ok(id);
            }
            // Pruned (`jobs::prune` moved the record to the table), or
            // another request's entry.
        }
        if !self.table.load(Ordering::Acquire) {
            return Ok(None);
        }
        Ok(conn
            .prepare_cached("SELECT job_id FROM replays WHERE expires = ?1 AND digest = ?2")?
            .query_row(params![once.expires, once.digest], |r| r.get(0))
            .optional()?)
    }

    /// Records that job `seq` was stored for `once` (key `k`); writer thread
    /// only, inside the transaction that stored the job.
    pub fn record(
        &self,
        conn: &Connection,
        once: &Once,
        k: Key,
        seq: i64,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let now = now_unix();
        if now >= inner.next_sweep {
            inner.map.retain(|_, e| e.live(now) || !e.committed());
            inner.next_sweep = now + SWEEP_EVERY;
        }
        // An entry still in use under the same hash is another request's
        // (this one was looked up first); its job keeps the entry.
        let free = match inner.map.get(&k) {
            None => inner.map.len() < self.cap,
            Some(e) => e.committed() && !e.live(now),
        };
        if let (true, Some(entry)) = (free, Entry::pending(seq, once.expires)) {
            inner.map.insert(k, entry);
            inner.pending.push(k);
            if std::mem::take(&mut inner.full) {
                tracing::info!("the replay index has room again");
            }
            return Ok(());
        }
        if inner.map.len() >= self.cap && !std::mem::replace(&mut inner.full, true) {
            // The slow path an operator should know about: each job now also
            // writes a row of the table, at a random place in it.
            tracing::warn!(
                live = inner.map.len(),
                "the replay index is full: requests are recorded in the replays table until entries expire"
            );
        }
        drop(inner);
        // Set before the row exists, so no reader can miss it once committed.
        self.table_in_use();
        conn.prepare_cached(
            "INSERT OR REPLACE INTO replays (expires, digest, job_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![once.expires, once.digest, id])?;
        Ok(())
    }

    /// The `replays` table now holds live rows: lookups that miss memory
    /// must look there too.
    pub fn table_in_use(&self) {
        self.table.store(true, Ordering::Release);
    }

    /// The table holds no live row (writer thread, which alone adds them).
    pub fn table_unused(&self) {
        self.table.store(false, Ordering::Release);
    }

    #[cfg(test)]
    fn consults_table(&self) -> bool {
        self.table.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent map.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CommitListener for Replays {
    fn op_started(&self) {
        let mut inner = self.lock();
        inner.op_start = inner.pending.len();
    }

    fn op_failed(&self) {
        let mut inner = self.lock();
        let start = inner.op_start;
        let undone: Vec<Key> = inner.pending.drain(start..).collect();
        for k in undone {
            inner.map.remove(&k);
        }
    }

    fn batch_done(&self, committed: bool) {
        let mut inner = self.lock();
        let pending = std::mem::take(&mut inner.pending);
        for k in &pending {
            if committed {
                if let Some(e) = inner.map.get_mut(k) {
                    e.commit();
                }
            } else {
                inner.map.remove(k);
            }
        }
        inner.pending = pending;
        inner.pending.clear();
        inner.op_start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::{self, Enqueued, NewJob};

    #[test]
    fn a_full_index_fills_its_table_without_doubling_it() {
        assert_eq!(std::mem::size_of::<(Key, Entry)>(), 16);
        let mut map: HashMap<Key, Entry> = HashMap::new();
        for i in 0..CAP as u64 {
            let e = Entry::pending(i as i64, 0).expect("fits");
            map.insert(i, e);
        }
        // Room for exactly the cap: 2^19 slots, none to spare.
        assert_eq!(map.capacity(), CAP);
        let mut e = Entry::pending((1 << 31) - 1, 9).expect("the last seq kept");
        assert!(!e.committed());
        e.commit();
        assert_eq!(
            (e.seq(), e.committed(), e.expires),
            ((1 << 31) - 1, true, 9)
        );
        assert!(Entry::pending(1 << 31, 9).is_none(), "goes to the table");
        assert_eq!(
            (
                kept_expiry(-5),
                kept_expiry(1_800_000_000),
                kept_expiry(i64::MAX)
            ),
            (0, 1_800_000_000, u32::MAX)
        );
    }

    fn job() -> NewJob {
        NewJob {
            owner: "usr-TEST0001".into(),
            zone: "sh1a".into(),
            action: "RunClusterCustomService".into(),
            lane: "cl-test0001".into(),
            resource_ids: vec!["cl-test0001".into()],
            directive: "{}".into(),
            task: "{}".into(),
            secrets: None,
        }
    }

    /// Every call gives the same expiry: a record in the table is found by
    /// its expiry exactly, so two calls either side of a second's turn must
    /// not differ (this made a test fail now and then).
    fn once(digest: &str) -> Once {
        static EXPIRES: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| now_unix() + 600);
        Once {
            digest: digest.into(),
            expires: *EXPIRES,
        }
    }

    /// Rows of the `replays` table, live or not.
    fn table_rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM replays", [], |r| r.get(0))
            .expect("count")
    }

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tmp");
        let conn = crate::store::open_rw(&crate::store::db_path(dir.path())).expect("db");
        (dir, conn)
    }

    /// One writer operation: enqueue inside a savepoint, as the writer runs it.
    fn enqueue(conn: &Connection, r: &Replays, digest: &str) -> Enqueued {
        r.op_started();
        let out = jobs::enqueue(
            &crate::store::Tx::new(conn),
            r,
            None,
            None,
            &[(job(), once(digest))],
            1000,
        )
        .expect("enqueue");
        out.into_iter().next().expect("one")
    }

    #[test]
    fn readers_see_an_entry_only_once_its_batch_commits() {
        let (_dir, conn) = db();
        let r = Replays::load(&conn, 3600).expect("load");
        conn.execute_batch("BEGIN").expect("begin");
        let Enqueued::New(id) = enqueue(&conn, &r, "d1") else {
            panic!("new")
        };
        assert_eq!(r.committed(&conn, &once("d1")).expect("q"), None);
        assert_eq!(
            r.in_writer(&conn, &once("d1"), &key("d1"))
                .expect("q")
                .as_deref(),
            Some(id.as_str())
        );
        // The same request again in the same batch is a replay.
        assert_eq!(enqueue(&conn, &r, "d1"), Enqueued::Replayed(id.clone()));
        conn.execute_batch("COMMIT").expect("commit");
        r.batch_done(true);
        assert_eq!(
            r.committed(&conn, &once("d1")).expect("q").as_deref(),
            Some(id.as_str())
        );
        // An expired request is never a replay.
        let expired = Once {
            expires: now_unix() - 1,
            ..once("d1")
        };
        assert_eq!(r.committed(&conn, &expired).expect("q"), None);
    }

    #[test]
    fn a_failed_operation_or_commit_leaves_no_entry() {
        let (_dir, conn) = db();
        let r = Replays::load(&conn, 3600).expect("load");
        conn.execute_batch("BEGIN").expect("begin");
        let Enqueued::New(kept) = enqueue(&conn, &r, "kept") else {
            panic!("new")
        };
        let Enqueued::New(_) = enqueue(&conn, &r, "undone") else {
            panic!("new")
        };
        r.op_failed();
        assert_eq!(
            r.in_writer(&conn, &once("undone"), &key("undone"))
                .expect("q"),
            None
        );
        assert!(
            r.in_writer(&conn, &once("kept"), &key("kept"))
                .expect("q")
                .is_some()
        );
        conn.execute_batch("COMMIT").expect("commit");
        r.batch_done(true);
        assert_eq!(r.committed(&conn, &once("kept")).expect("q"), Some(kept));

        conn.execute_batch("BEGIN").expect("begin");
        let Enqueued::New(_) = enqueue(&conn, &r, "lost") else {
            panic!("new")
        };
        conn.execute_batch("ROLLBACK").expect("rollback");
        r.batch_done(false);
        assert_eq!(
            r.in_writer(&conn, &once("lost"), &key("lost")).expect("q"),
            None
        );
    }

    #[test]
    fn load_rebuilds_from_job_rows_and_spills_past_the_cap_to_the_table() {
        let (_dir, conn) = db();
        let r = Replays::load(&conn, 3600).expect("load");
        let mut ids = Vec::new();
        for d in ["a", "b", "c"] {
            let Enqueued::New(id) = enqueue(&conn, &r, d) else {
                panic!("new")
            };
            ids.push(id);
        }
        r.batch_done(true);
        let gone = Once {
            expires: now_unix() - 5,
            ..once("old")
        };
        r.op_started();
        jobs::enqueue(
            &crate::store::Tx::new(&conn),
            &r,
            None,
            None,
            &[(job(), gone.clone())],
            1000,
        )
        .expect("expired one");

        // A fresh index over the same rows, with room for two entries only.
        let again = Replays::load_capped(&conn, 3600, 2).expect("load");
        for (d, id) in ["a", "b", "c"].iter().zip(&ids) {
            assert_eq!(
                again.committed(&conn, &once(d)).expect("q").as_ref(),
                Some(id),
                "{d}"
            );
        }
        let spilled = table_rows(&conn);
        assert_eq!(spilled, 1, "one entry past the cap went to the table");
        assert_eq!(again.committed(&conn, &gone).expect("q"), None);

        // New entries past the cap go to the table too, and are found there.
        again.op_started();
        let Enqueued::New(d) = jobs::enqueue(
            &crate::store::Tx::new(&conn),
            &again,
            None,
            None,
            &[(job(), once("d"))],
            1000,
        )
        .expect("enqueue")
        .remove(0) else {
            panic!("new")
        };
        again.batch_done(true);
        assert_eq!(again.committed(&conn, &once("d")).expect("q"), Some(d));
        let rows = table_rows(&conn);
        assert_eq!(rows, 2);

        // Pruning keeps the table consulted while it holds a live row, and
        // stops once every row has expired and gone.
        assert_eq!(jobs::prune(&conn, &again, 0, 10).expect("prune"), 0);
        assert!(again.consults_table());
        conn.execute("UPDATE replays SET expires = ?1", [now_unix() - 1])
            .expect("expire");
        jobs::prune(&conn, &again, 0, 10).expect("prune");
        assert!(!again.consults_table());
        let rows = table_rows(&conn);
        assert_eq!(rows, 0);
    }

    #[test]
    fn requests_that_share_a_hash_each_answer_with_their_own_job() {
        let (_dir, conn) = db();
        // Indexes nothing yet: the jobs below are stored through `first`.
        let shared = Replays::load(&conn, 3600).expect("load");
        let first = Replays::load(&conn, 3600).expect("load");
        let mut stored = Vec::new();
        for d in ["a", "b"] {
            let Enqueued::New(id) = enqueue(&conn, &first, d) else {
                panic!("new")
            };
            let seq: i64 = conn
                .query_row("SELECT seq FROM jobs WHERE id = ?1", [&id], |r| r.get(0))
                .expect("seq");
            stored.push((d, id, seq));
        }
        first.batch_done(true);
        shared.op_started();
        for (d, id, seq) in &stored {
            shared.record(&conn, &once(d), 7, *seq, id).expect("record");
        }
        shared.batch_done(true);
        for (d, id, _) in &stored {
            assert_eq!(
                shared.in_writer(&conn, &once(d), &7).expect("q").as_ref(),
                Some(id),
                "{d}"
            );
        }
        let spilled = table_rows(&conn);
        assert_eq!(spilled, 1, "the second request under the hash");
        assert_eq!(shared.in_writer(&conn, &once("c"), &7).expect("q"), None);
    }

    #[test]
    fn rows_older_than_the_lookback_are_not_loaded() {
        let (_dir, conn) = db();
        let r = Replays::load(&conn, 3600).expect("load");
        let Enqueued::New(_) = enqueue(&conn, &r, "x") else {
            panic!("new")
        };
        r.batch_done(true);
        conn.execute("UPDATE jobs SET create_time = create_time - 7200", [])
            .expect("age");
        let again = Replays::load(&conn, 3600).expect("load");
        assert_eq!(again.committed(&conn, &once("x")).expect("q"), None);
    }
}
