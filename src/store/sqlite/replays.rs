//! Which signed requests already stored a job, while they are still valid.
//!
//! Every job row carries its request's replay key and expiry, so the record
//! is durable with the job; this in-memory index over the recent rows answers
//! lookups and is rebuilt from them on open. A table keyed by the (random)
//! request digest wrote a page of its own per job, which cost the write path
//! about a third of its throughput.
//!
//! An entry is 16 bytes: 64 bits of a hash of the digest and where its job
//! is. A hit is confirmed against the job row's `replay_digest`, so two
//! requests that share a hash can never answer with each other's job (the
//! second one goes to the `replays` table instead).
//!
//! The index is two generations of [`CAP`]/2 entries, each allocated once:
//! new entries go to the current one, and nothing leaves it until it is the
//! old one. A hash table that loses entries while it takes new ones fills
//! with tombstones and then rehashes, which at this load means doubling it
//! (+8.9 MiB, and a copy of every entry while requests wait); so entries
//! leave the old generation by being marked dead, and it is cleared whole
//! before it becomes the current one again. They leave it as they expire;
//! when the current one fills before that, those that expire first move to
//! the `replay_spill` table, in its key order and a few hundred per commit,
//! so that none is left in the old generation when the current one is full
//! and the two swap. Lookups look there
//! only for requests that expire no later than the last entry moved: new
//! requests expire last, so a burst past the index costs a write ~1 µs of
//! sequential rows instead of a random page (with one generation of 32-byte
//! entries, `qcgate bench`'s third write round crossed it and every write
//! wrote a random page of `replays`: ~30 → ~55 µs of CPU per write).
//!
//! Only the writer thread adds entries. They stay pending (seen by the writer,
//! not by readers) until the transaction that stored their job commits, and
//! are removed again if their operation or the commit fails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use rusqlite::{Connection, OptionalExtension, params};
use sha2::Digest;

use super::writer::CommitListener;
use crate::store::StoreError;

use crate::clock::now_unix;
pub use crate::store::queue::Once;

/// Entries kept in memory, both generations: each is 7/8 of 2^18, the most
/// a table of 2^18 slots holds before it doubles (16 bytes and a control
/// byte a slot, ~8.5 MiB in all). About two minutes of 2000 new jobs per
/// second signed with `time_stamp` alone before any entry moves.
pub const CAP: usize = 458_752;

const SPILL_INSERT: &str =
    "INSERT OR IGNORE INTO replay_spill (expires, hash, seq) VALUES (?1, ?2, ?3)";

/// How often expired entries of the old generation are marked dead, in seconds.
const SWEEP_EVERY: i64 = 10;

/// How large the generations are and how entries move out of the old one.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// Entries of one generation.
    generation: usize,
    /// The old generation starts moving out once the current one has fewer
    /// free entries than this plus a quarter of the old one's: at up to a
    /// quarter as many new entries per commit as `per_batch`, it is then
    /// empty in time.
    headroom: usize,
    /// Entries moved by one commit: a few hundred sequential rows cost the
    /// writer under a millisecond, so no batch waits long on them.
    per_batch: usize,
    /// Entries chosen by one pass over the old generation (~1 ms a pass), a
    /// multiple of `per_batch`: a commit moves what is left of a pass.
    queue: usize,
}

impl Limits {
    fn of(cap: usize) -> Limits {
        let headroom = (cap / 112).max(1);
        Limits {
            generation: (cap / 2).max(1),
            headroom,
            per_batch: (headroom / 8).max(1),
            queue: headroom * 4,
        }
    }
}

/// An entry chosen to move to `replay_spill`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Spill {
    /// Sorted as the table's key is, so a run of them appends to it.
    expires: u32,
    key: i64,
    seq: u32,
}

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

    /// Marks it gone from the old generation (expired, moved, undone).
    fn kill(&mut self) {
        self.expires = 0;
    }

    fn dead(self) -> bool {
        self.expires == 0
    }

    /// Can move to `replay_spill`: committed, and found there by its expiry.
    fn movable(self, now: i64) -> bool {
        self.committed() && self.live(now) && self.expires < u32::MAX
    }
}

/// An expiry as kept: one past 2106 is kept as the last second that fits,
/// one before 1970 as 0 (already expired).
fn kept_expiry(expires: i64) -> u32 {
    u32::try_from(expires.max(0)).unwrap_or(u32::MAX)
}

#[derive(Default)]
struct Inner {
    /// New entries go here; only a failed batch's entries leave it.
    current: HashMap<Key, Entry>,
    /// The generation before: entries leave it (are marked dead) as they
    /// expire or move.
    old: HashMap<Key, Entry>,
    /// Entries of `old` not marked dead.
    old_left: usize,
    /// Added in the open transaction, in order.
    pending: Vec<Key>,
    /// `pending.len()` when the current operation started.
    op_start: usize,
    next_sweep: i64,
    /// New entries go to the table for want of room (said once in the log).
    full: bool,
    /// The old generation's next entries to move, the first to move last.
    queue: Vec<Spill>,
    /// `refill`'s histogram, kept: allocating it and the queue anew for
    /// each pass raised the peak resident memory by ~5 MiB (freed blocks of
    /// a few hundred KiB the allocator had not reused yet).
    counts: Vec<u32>,
    /// Moved by the open transaction: dropped from memory once it commits.
    moving: Vec<Spill>,
    /// Entries have moved to `replay_spill` (said once in the log).
    spilling: bool,
}

pub struct Replays {
    inner: Mutex<Inner>,
    limits: Limits,
    /// The `replays` table may hold live rows (a hash shared by two live
    /// requests, a pruned job's record, rows written before this index
    /// existed): lookups that miss memory look there too.
    table: AtomicBool,
    /// The latest expiry that `replay_spill` may hold: lookups for requests
    /// that expire later need not look there.
    spilled_upto: AtomicI64,
}

impl Replays {
    /// Rebuilds the index from the jobs created within `lookback_secs` (the
    /// longest a signed request stays valid).
    pub fn load(conn: &Connection, lookback_secs: i64) -> Result<Replays, StoreError> {
        Self::load_capped(conn, lookback_secs, CAP)
    }

    /// The newest entries make the old generation, and the current one
    /// starts empty; older entries go to `replay_spill`.
    fn load_capped(
        conn: &Connection,
        lookback_secs: i64,
        cap: usize,
    ) -> Result<Replays, StoreError> {
        Self::load_with(conn, lookback_secs, Limits::of(cap))
    }

    fn load_with(
        conn: &Connection,
        lookback_secs: i64,
        limits: Limits,
    ) -> Result<Replays, StoreError> {
        let now = now_unix();
        let mut inner = Inner {
            current: HashMap::with_capacity(limits.generation),
            old: HashMap::with_capacity(limits.generation),
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
            match Entry::pending(seq, expires) {
                Some(mut e)
                    if inner.old.len() < limits.generation && !inner.old.contains_key(&k) =>
                {
                    e.commit();
                    inner.old.insert(k, e);
                    inner.old_left += 1;
                }
                _ => overflow.push((expires, k as i64, seq)),
            }
        }
        drop(rows);
        overflow.sort_unstable();
        for (expires, k, seq) in &overflow {
            conn.prepare_cached(SPILL_INSERT)?
                .execute(params![expires, k, seq])?;
        }
        let spilled_upto: Option<i64> =
            conn.query_row("SELECT max(expires) FROM replay_spill", [], |r| r.get(0))?;
        let table = conn
            .prepare("SELECT 1 FROM replays WHERE expires >= ?1 LIMIT 1")?
            .exists([now])?;
        inner.next_sweep = now + SWEEP_EVERY;
        Ok(Replays {
            inner: Mutex::new(inner),
            limits,
            table: AtomicBool::new(table),
            spilled_upto: AtomicI64::new(spilled_upto.unwrap_or(i64::MIN)),
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
        if once.expires <= self.spilled_upto.load(Ordering::Acquire) {
            let id = conn
                .prepare_cached(
                    "SELECT j.id FROM replay_spill s JOIN jobs j ON j.seq = s.seq
                     WHERE s.expires = ?1 AND s.hash = ?2 AND j.replay_digest = ?3",
                )?
                .query_row(params![once.expires, *k as i64, once.digest], |r| r.get(0))
                .optional()?;
            if id.is_some() {
                return Ok(id);
            }
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
            inner.sweep(now, &self.limits);
        }
        // An entry still in use under the same hash is another request's
        // (this one was looked up first); its job keeps the entry.
        let free = inner.get(&k).is_none_or(|e| e.committed() && !e.live(now));
        if let (true, Some(entry)) = (free, Entry::pending(seq, once.expires)) {
            if inner.current.contains_key(&k) || inner.make_room(now, &self.limits) {
                inner.current.insert(k, entry);
                inner.pending.push(k);
                if std::mem::take(&mut inner.full) {
                    tracing::info!("the replay index has room again");
                }
                return Ok(());
            }
            if !std::mem::replace(&mut inner.full, true) {
                // The slow path an operator should know about: each job now
                // also writes a row of the table, at a random place in it.
                tracing::warn!(
                    live = inner.current.len() + inner.old_left,
                    "the replay index is full: requests are recorded in the replays table until entries expire or move"
                );
            }
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

    /// Deletes up to `limit` expired rows of `replay_spill` (no lookup reads
    /// them: a request is looked up only while it is valid); returns how many.
    pub fn drop_expired_spill(&self, conn: &Connection, limit: usize) -> Result<usize, StoreError> {
        Ok(conn
            .prepare_cached(
                "DELETE FROM replay_spill WHERE (expires, hash, seq) IN
                 (SELECT expires, hash, seq FROM replay_spill WHERE expires < ?1 LIMIT ?2)",
            )?
            .execute(params![now_unix(), limit as i64])?)
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

    /// Entries in memory, both generations.
    #[cfg(test)]
    fn in_memory(&self) -> usize {
        let inner = self.lock();
        inner.current.len() + inner.old_left
    }

    /// Writes the old generation's next entries to `replay_spill` when the
    /// current one would otherwise fill first; they leave memory once this
    /// transaction commits.
    fn spill(&self, conn: &Connection) -> Result<(), StoreError> {
        let rows = {
            let mut inner = self.lock();
            let room = inner.room(&self.limits);
            if inner.old_left == 0 || room > inner.old_left / 4 + self.limits.headroom {
                return Ok(());
            }
            let rows = inner.take_spill(now_unix(), &self.limits);
            if !rows.is_empty() && !std::mem::replace(&mut inner.spilling, true) {
                tracing::warn!(
                    live = inner.current.len() + inner.old_left,
                    "the replay index is nearly full: the records that expire first move to the replay_spill table"
                );
            }
            rows
        };
        let mut insert = conn.prepare_cached(SPILL_INSERT)?;
        for s in &rows {
            insert.execute(params![s.expires, s.key, s.seq])?;
        }
        self.lock().moving = rows;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent map.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn get(&self, k: &Key) -> Option<Entry> {
        self.current.get(k).or_else(|| self.old.get(k)).copied()
    }

    /// The entry of an open transaction under `k`, in either generation (a
    /// swap may have made its generation the old one).
    fn pending_mut(&mut self, k: &Key) -> Option<&mut Entry> {
        let in_current = self.current.get(k).is_some_and(|e| !e.committed());
        let map = if in_current {
            &mut self.current
        } else {
            &mut self.old
        };
        map.get_mut(k).filter(|e| !e.committed())
    }

    /// Undoes an entry of a failed operation or batch: removed from the
    /// current generation (`room` counts the tombstone), marked dead in the
    /// old one.
    fn remove_pending(&mut self, k: &Key) {
        if self.current.get(k).is_some_and(|e| !e.committed()) {
            self.current.remove(k);
        } else if let Some(e) = self.old.get_mut(k).filter(|e| !e.committed() && !e.dead()) {
            e.kill();
            self.old_left -= 1;
        }
    }

    /// Marks the old generation's entry under `k` dead if it is `seq`'s.
    fn kill_old(&mut self, k: &Key, seq: i64) {
        if let Some(e) = self.old.get_mut(k).filter(|e| !e.dead() && e.seq() == seq) {
            e.kill();
            self.old_left -= 1;
        }
    }

    /// Free entries in the current generation. `capacity()` is entries plus
    /// what can be added before the table rehashes, so a failed batch's
    /// tombstones count as used.
    fn room(&self, limits: &Limits) -> usize {
        self.current
            .capacity()
            .min(limits.generation)
            .saturating_sub(self.current.len())
    }

    /// Whether the current generation can take a new entry, swapping in the
    /// old one (cleared) when it is full and the old one has nothing left.
    fn make_room(&mut self, now: i64, limits: &Limits) -> bool {
        if self.room(limits) > 0 {
            return true;
        }
        if self.old_left > 0 {
            self.sweep(now, limits);
        }
        if self.old_left > 0 {
            return false;
        }
        if self.old.is_empty() && self.old.capacity() < limits.generation {
            // Tombstones with no entry left: `clear` would keep them.
            self.old = HashMap::with_capacity(limits.generation);
        }
        // Resets the control bytes, tombstones too: the table is as new.
        self.old.clear();
        std::mem::swap(&mut self.current, &mut self.old);
        self.old_left = self.old.len();
        self.queue.clear();
        self.room(limits) > 0
    }

    /// Marks the old generation's expired entries dead (removing them, or
    /// any entry of the current one, would leave tombstones).
    fn sweep(&mut self, now: i64, limits: &Limits) {
        for e in self.old.values_mut() {
            if e.committed() && !e.live(now) && !e.dead() {
                e.kill();
                self.old_left -= 1;
            }
        }
        self.next_sweep = now + SWEEP_EVERY;
        let live = self.current.len() + self.old_left;
        if self.spilling && self.old_left == 0 && live < limits.generation {
            self.spilling = false;
            tracing::info!(
                live,
                "the replay index has room again: records stay in memory"
            );
        }
    }

    /// Up to `per_batch` of the old generation's movable entries, those
    /// that expire first.
    fn take_spill(&mut self, now: i64, limits: &Limits) -> Vec<Spill> {
        let mut out = Vec::with_capacity(limits.per_batch);
        let mut refilled = false;
        while out.len() < limits.per_batch {
            let Some(s) = self.queue.pop() else {
                // Not with entries taken: they are still in the generation
                // until the commit, and would be chosen again.
                if !out.is_empty() || std::mem::replace(&mut refilled, true) {
                    break;
                }
                self.refill(now, limits.queue);
                continue;
            };
            // Swept since it was chosen, or its key taken by a new request.
            let same = self
                .old
                .get(&(s.key as u64))
                .is_some_and(|e| e.movable(now) && e.seq() == i64::from(s.seq));
            if same {
                out.push(s);
            }
        }
        out
    }

    /// Chooses the `n` of the old generation's movable entries first in
    /// `replay_spill`'s order, in two passes (a histogram, then a collection
    /// of the histogram's first buckets) rather than copying all of it: one
    /// second may hold a whole burst's entries. Buckets split each second by
    /// the top bits of the key, so each choice continues the key range of
    /// the one before and its rows append to the table.
    fn refill(&mut self, now: i64, n: usize) {
        /// Seconds told apart: the longest a request stays valid, and more.
        const SECONDS: usize = 4096;
        const PARTS: usize = 16;
        let movable = self.old.iter().filter(|(_, e)| e.movable(now));
        let Some(first) = movable.clone().map(|(_, e)| e.expires).min() else {
            return;
        };
        let bucket = |k: Key, e: &Entry| {
            let second = ((e.expires - first) as usize).min(SECONDS - 1);
            // The key's order as the table's signed integer.
            let part = ((k ^ (1 << 63)) >> 60) as usize;
            second * PARTS + part
        };
        let counts = &mut self.counts;
        counts.clear();
        counts.resize(SECONDS * PARTS, 0);
        for (&k, e) in movable.clone() {
            counts[bucket(k, e)] += 1;
        }
        let mut taken = 0;
        let last = counts
            .iter()
            .position(|&c| {
                taken += c as usize;
                taken >= n
            })
            .unwrap_or(counts.len());
        let mut chosen = std::mem::take(&mut self.queue);
        chosen.clear();
        chosen.reserve(taken);
        chosen.extend(
            movable
                .filter(|&(&k, e)| bucket(k, e) <= last)
                .map(|(&k, e)| Spill {
                    expires: e.expires,
                    key: k as i64,
                    seq: e.seq & !COMMITTED,
                }),
        );
        if chosen.len() > n {
            chosen.select_nth_unstable(n);
            chosen.truncate(n);
        }
        // Popped from the end: the first to move last.
        chosen.sort_unstable_by(|a, b| b.cmp(a));
        self.queue = chosen;
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
            inner.remove_pending(&k);
        }
    }

    fn before_commit(&self, conn: &Connection) {
        if let Err(e) = self.spill(conn) {
            // They stay in memory; without room, records go to `replays`.
            tracing::warn!(error = %e, "replay index: moving records to replay_spill failed");
            self.lock().moving.clear();
        }
    }

    fn batch_done(&self, committed: bool) {
        let mut inner = self.lock();
        let moved = std::mem::take(&mut inner.moving);
        if let (true, Some(last)) = (committed, moved.iter().map(|s| s.expires).max()) {
            // Raised before the entries leave memory: a reader that misses
            // them there then looks in the table, where they are committed.
            self.spilled_upto
                .fetch_max(i64::from(last), Ordering::AcqRel);
            for s in &moved {
                inner.kill_old(&(s.key as u64), i64::from(s.seq));
            }
        }
        let pending = std::mem::take(&mut inner.pending);
        for k in &pending {
            if committed {
                if let Some(e) = inner.pending_mut(k) {
                    e.commit();
                }
            } else {
                inner.remove_pending(k);
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
    fn a_full_generation_fills_its_table_without_doubling_it() {
        assert_eq!(std::mem::size_of::<(Key, Entry)>(), 16);
        let mut map: HashMap<Key, Entry> = HashMap::new();
        for i in 0..(CAP / 2) as u64 {
            let e = Entry::pending(i as i64, 0).expect("fits");
            map.insert(i, e);
        }
        // Room for exactly a generation: 2^18 slots, none to spare.
        assert_eq!(map.capacity(), CAP / 2);
        assert_eq!(Limits::of(CAP).generation, CAP / 2);
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
        NewJob::for_test("cl-test0001")
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
            &crate::store::sqlite::Tx::new(conn),
            r,
            None,
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

    /// Rows of `replay_spill`, live or not.
    fn spill_rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM replay_spill", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn load_rebuilds_from_job_rows_and_spills_past_the_cap() {
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
            &crate::store::sqlite::Tx::new(&conn),
            &r,
            None,
            None,
            None,
            &[(job(), gone.clone())],
            1000,
        )
        .expect("expired one");

        // A fresh index over the same rows, with generations of one entry:
        // the newest job's entry makes the old one, the other two go to
        // `replay_spill`, and are found there.
        let again = Replays::load_capped(&conn, 3600, 2).expect("load");
        for (d, id) in ["a", "b", "c"].iter().zip(&ids) {
            assert_eq!(
                again.committed(&conn, &once(d)).expect("q").as_ref(),
                Some(id),
                "{d}"
            );
        }
        assert_eq!(again.in_memory(), 1);
        assert_eq!(spill_rows(&conn), 2, "the entries past the generation");
        assert_eq!(table_rows(&conn), 0);
        assert_eq!(again.committed(&conn, &gone).expect("q"), None);

        // The current generation takes one entry; the next one finds it full
        // and the old one not yet moved out (no commit moved it), so it goes
        // to the `replays` table. Both are found.
        let mut new = Vec::new();
        for d in ["d", "e"] {
            again.op_started();
            let Enqueued::New(id) = jobs::enqueue(
                &crate::store::sqlite::Tx::new(&conn),
                &again,
                None,
                None,
                None,
                &[(job(), once(d))],
                1000,
            )
            .expect("enqueue")
            .remove(0) else {
                panic!("new")
            };
            new.push((d, id));
        }
        again.batch_done(true);
        for (d, id) in &new {
            assert_eq!(
                again.committed(&conn, &once(d)).expect("q").as_ref(),
                Some(id)
            );
        }
        assert_eq!(again.in_memory(), 2);
        assert_eq!(table_rows(&conn), 1);

        // Pruning keeps the table consulted while it holds a live row, and
        // stops once every row has expired and gone; expired spilled rows go.
        assert_eq!(jobs::prune(&conn, &again, 0, 10).expect("prune"), 0);
        assert!(again.consults_table());
        conn.execute_batch(&format!(
            "UPDATE replays SET expires = {0}; UPDATE replay_spill SET expires = {0};",
            now_unix() - 1
        ))
        .expect("expire");
        jobs::prune(&conn, &again, 0, 10).expect("prune");
        assert!(!again.consults_table());
        assert_eq!(table_rows(&conn), 0);
        assert_eq!(again.drop_expired_spill(&conn, 1).expect("drop"), 1);
        assert_eq!(again.drop_expired_spill(&conn, 10).expect("drop"), 1);
        assert_eq!(spill_rows(&conn), 0);
    }

    /// One batch as the writer runs it: each request in its operation,
    /// then the listener's last word before the commit, then the outcome.
    fn batch(conn: &Connection, r: &Replays, requests: &[Once], commit: bool) -> Vec<String> {
        conn.execute_batch("BEGIN").expect("begin");
        let mut ids = Vec::new();
        for o in requests {
            r.op_started();
            let out = jobs::enqueue(
                &crate::store::sqlite::Tx::new(conn),
                r,
                None,
                None,
                None,
                &[(job(), o.clone())],
                1_000_000,
            )
            .expect("enqueue");
            match out.into_iter().next() {
                Some(Enqueued::New(id)) => ids.push(id),
                other => panic!("{other:?}"),
            }
        }
        r.before_commit(conn);
        conn.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" })
            .expect("end");
        r.batch_done(commit);
        ids
    }

    #[test]
    fn the_old_generation_moves_out_in_expiry_order_before_the_current_one_fills() {
        let (_dir, conn) = db();
        // Tables as small as this still mark removed entries as tombstones:
        // 7/8 of 128 slots.
        let limits = Limits {
            generation: 112,
            headroom: 8,
            per_batch: 16,
            queue: 32,
        };
        let r = Replays::load_with(&conn, 3600, limits).expect("load");
        let capacities = || {
            let inner = r.lock();
            (inner.current.capacity(), inner.old.capacity())
        };
        let (start_current, start_old) = capacities();
        let now = now_unix();
        // Each request expires a second after the one before, out of order
        // within a batch, so what moves goes by expiry, not by arrival.
        let request = |i: i64| Once {
            digest: format!("req-{i}"),
            expires: now + 600 + i,
        };
        let mut stored = Vec::new();
        for b in 0..300 {
            let reqs = [1, 3, 0, 2].map(|i| request(b * 4 + i));
            let ids = batch(&conn, &r, &reqs, true);
            stored.extend(reqs.into_iter().zip(ids));
            assert!(r.in_memory() <= 2 * limits.generation, "batch {b}");
            let (current, old) = capacities();
            assert!(
                current <= start_current && old <= start_old,
                "batch {b}: grew"
            );
        }
        // Nothing went the slow way: the old generation was always empty
        // when the current one filled.
        assert_eq!(table_rows(&conn), 0);
        let moved = spill_rows(&conn) as usize;
        assert_eq!(moved + r.in_memory(), stored.len());
        let expiries: Vec<i64> = conn
            .prepare("SELECT expires FROM replay_spill ORDER BY expires")
            .expect("q")
            .query_map([], |row| row.get(0))
            .expect("q")
            .collect::<Result<_, _>>()
            .expect("rows");
        let first: Vec<i64> = (0..moved as i64).map(|i| now + 600 + i).collect();
        assert_eq!(expiries, first, "the entries that expire first moved");
        assert_eq!(
            r.spilled_upto.load(Ordering::Acquire),
            *first.last().expect("some moved")
        );
        // Every request, moved or not, still answers with its own job.
        for (o, id) in &stored {
            assert_eq!(
                r.committed(&conn, o).expect("q").as_ref(),
                Some(id),
                "{}",
                o.digest
            );
            assert_eq!(
                r.in_writer(&conn, o, &key(&o.digest)).expect("q").as_ref(),
                Some(id)
            );
        }
        let never = Once {
            digest: "never-sent".into(),
            expires: first[0],
        };
        assert_eq!(r.committed(&conn, &never).expect("q"), None);

        // A batch that rolls back keeps what it would have moved in memory.
        let spilled_upto = r.spilled_upto.load(Ordering::Acquire);
        let before = r.in_memory();
        batch(
            &conn,
            &r,
            &[10_000, 10_001, 10_002, 10_003].map(request),
            false,
        );
        assert_eq!(r.in_memory(), before);
        assert_eq!(spill_rows(&conn) as usize, moved);
        assert_eq!(r.spilled_upto.load(Ordering::Acquire), spilled_upto);
        for (o, id) in &stored {
            assert_eq!(r.committed(&conn, o).expect("q").as_ref(), Some(id));
        }

        // After a restart the moved entries are found in the table.
        let again = Replays::load(&conn, 3600).expect("load");
        assert_eq!(again.spilled_upto.load(Ordering::Acquire), spilled_upto);
        for (o, id) in &stored {
            assert_eq!(again.committed(&conn, o).expect("q").as_ref(), Some(id));
        }
    }

    #[test]
    fn each_choice_continues_where_the_last_ended_in_the_tables_order() {
        let now = now_unix();
        let mut inner = Inner::default();
        // A burst signed in one second, and a few requests that live longer.
        for i in 0..5000i64 {
            let expires = if i % 100 == 0 { now + 900 } else { now + 60 };
            let mut e = Entry::pending(i, expires).expect("fits");
            e.commit();
            inner.old.insert(key(&format!("r{i}")), e);
        }
        inner.old_left = inner.old.len();
        let mut order = Vec::new();
        loop {
            inner.refill(now, 700);
            if inner.queue.is_empty() {
                break;
            }
            while let Some(s) = inner.queue.pop() {
                inner.kill_old(&(s.key as u64), i64::from(s.seq));
                order.push(s);
            }
        }
        assert_eq!(order.len(), 5000);
        assert_eq!(inner.old_left, 0);
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "rows would not append to the table"
        );
        assert_eq!(order[4999].expires as i64, now + 900);
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
