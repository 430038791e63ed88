//! Recent jobs as `DescribeJobs` shows them, kept in memory so that polling a
//! job by id costs no SQLite read (a read transaction's locks, a page read and
//! the row's JSON were a third of a `DescribeJobs` in a profile).
//!
//! Only the writer fills it. SQLite's update hook names every `jobs` row a
//! batch touches; just before the batch commits, the writer reads those rows
//! back (new jobs, and jobs already here) and the entries replace the old ones
//! once the commit succeeds. Readers never insert, so an entry is never older
//! than what a reader could find in the database: a miss falls back to SQL.
//! Jobs are changed only by the gateway's writer, so nothing else can make an
//! entry stale. (SQLite does not report a `DELETE` without `WHERE`, which it
//! runs as a truncation: jobs are only ever deleted by `seq`.)
//!
//! Entries are packed (`packed.rs`, ~6× smaller) in slots by seq
//! (`seq_ring.rs`): new jobs take increasing seqs, and the oldest go first.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, RwLock};

use rusqlite::Connection;
use rusqlite::hooks::Action;

use super::job_rows::{self, JobEntry};
use super::packed::{Packed, Packer};
use super::seq_ring::SeqRing;
use super::writer::CommitListener;
use crate::store::job_ids::JobIds;

/// The default budget (`job_views_mib`): bytes of entries kept, slots
/// included (~110k jobs of a typical `start_standby`: a few seconds of a burst).
pub const CAP_BYTES: usize = 24 << 20;

/// A row's entry once the batch commits; `None`: the row is gone.
type Staged = (i64, Option<Packed>);

const SLOT: usize = std::mem::size_of::<Option<Packed>>();

/// Past this many segments (jumps in seqs) the oldest goes, whatever it holds.
const MAX_SEGMENTS: usize = 8;

#[derive(Default)]
struct Inner {
    ring: SeqRing<Packed>,
    entries: usize,
    /// The entries' blocks and the examples they use, slots aside.
    bytes: usize,
    /// Entries using each example (by address), so it is charged once.
    examples: HashMap<usize, usize>,
}

impl Inner {
    fn held(&self) -> usize {
        self.bytes + self.ring.capacity() * SLOT
    }

    fn get(&self, seq: i64) -> Option<&Packed> {
        self.ring.get(seq)
    }

    fn charge(&mut self, p: &Packed) {
        let (example, len) = p.example();
        let users = self.examples.entry(example).or_insert(0);
        if *users == 0 {
            self.bytes += len;
        }
        *users += 1;
        self.bytes += p.footprint();
        self.entries += 1;
    }

    fn discharge(&mut self, p: &Packed) {
        let (example, len) = p.example();
        if let Some(users) = self.examples.get_mut(&example) {
            *users -= 1;
            if *users == 0 {
                self.examples.remove(&example);
                self.bytes -= len;
            }
        }
        self.bytes -= p.footprint();
        self.entries -= 1;
    }

    fn put(&mut self, seq: i64, entry: Option<Packed>) {
        let old = match entry {
            Some(new) => {
                self.charge(&new);
                // Older than what is kept: dropped again.
                self.ring.insert(seq, new).unwrap_or_else(Some)
            }
            None => self.ring.take(seq),
        };
        if let Some(old) = old {
            self.discharge(&old);
        }
    }

    /// Drops the oldest slots past `cap`, and empty ones at the front.
    fn evict(&mut self, cap: usize) {
        while self.held() > cap || self.ring.front_is_empty() || self.ring.segments() > MAX_SEGMENTS
        {
            match self.ring.pop_front() {
                Some(Some(old)) => self.discharge(&old),
                Some(None) => {}
                None => break,
            }
        }
    }
}

pub struct JobViews {
    ids: JobIds,
    cap_bytes: usize,
    inner: RwLock<Inner>,
    /// Rows of `jobs` the open batch changed, as the update hook reported them.
    touched: Mutex<Vec<(Action, i64)>>,
    /// Entries of rows the open batch inserted, handed over by the insert.
    provided: Mutex<Provided>,
    /// Read back and packed before the commit; applied if it succeeds.
    staged: Mutex<Vec<Staged>>,
    packer: Mutex<Packer>,
}

#[derive(Default)]
struct Provided {
    entries: Vec<JobEntry>,
    /// `entries.len()` when the current operation started.
    op_start: usize,
}

impl JobViews {
    pub fn new(ids: JobIds, cap_bytes: usize) -> JobViews {
        JobViews {
            ids,
            cap_bytes,
            inner: RwLock::default(),
            touched: Mutex::default(),
            provided: Mutex::default(),
            staged: Mutex::default(),
            packer: Mutex::default(),
        }
    }

    /// Called by the writer's update hook for each change to a `jobs` row.
    pub fn touched(&self, action: Action, seq: i64) {
        lock(&self.touched).push((action, seq));
    }

    /// A row the writer just inserted, as it will read once committed: it
    /// need not be read back (unless the batch changes it again).
    pub fn provide(&self, entry: JobEntry) {
        lock(&self.provided).entries.push(entry);
    }

    /// The job with this id, if it is here.
    pub fn get(&self, id: &str) -> Option<JobEntry> {
        let seq = self.ids.decode(id)?;
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.get(seq)?.unpack(seq).filter(|e| e.id == id)
    }

    /// Jobs kept.
    pub fn len(&self) -> usize {
        self.read().entries
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, slots included (at most the budget after each batch).
    pub fn held(&self) -> usize {
        self.read().held()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries the touched rows will have once the batch commits.
    fn read_back(
        &self,
        conn: &Connection,
        mut touched: Vec<(Action, i64)>,
    ) -> Result<Vec<Staged>, crate::store::StoreError> {
        touched.sort_by_key(|(_, seq)| *seq);
        let mut provided: HashMap<i64, JobEntry> = lock(&self.provided)
            .entries
            .drain(..)
            .map(|e| (e.seq, e))
            .collect();
        let mut packer = lock(&self.packer);
        let inner = self.read();
        let mut staged = Vec::new();
        for rows in touched.chunk_by(|a, b| a.1 == b.1) {
            let seq = rows[0].1;
            let inserted = rows.iter().any(|(a, _)| *a == Action::SQLITE_INSERT);
            if !inserted && inner.get(seq).is_none() {
                continue;
            }
            let only_inserted = rows.iter().all(|(a, _)| *a == Action::SQLITE_INSERT);
            let entry = match provided.remove(&seq) {
                Some(e) if only_inserted => Some(e),
                _ => job_rows::entry_by_seq(conn, seq)?,
            };
            staged.push((seq, entry.map(|e| packer.pack(&e))));
        }
        Ok(staged)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a consistent list.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CommitListener for JobViews {
    fn op_started(&self) {
        let mut provided = lock(&self.provided);
        provided.op_start = provided.entries.len();
    }

    /// A rolled-back row is read back as it is committed; only the entries
    /// its inserts handed over are dropped.
    fn op_failed(&self) {
        let mut provided = lock(&self.provided);
        let start = provided.op_start;
        provided.entries.truncate(start);
    }

    fn before_commit(&self, conn: &Connection) {
        let touched = std::mem::take(&mut *lock(&self.touched));
        if touched.is_empty() {
            return;
        }
        let seqs: Vec<i64> = touched.iter().map(|(_, seq)| *seq).collect();
        match self.read_back(conn, touched) {
            Ok(staged) => *lock(&self.staged) = staged,
            Err(e) => {
                // Dropped now, the rows are read from SQL until changed again.
                tracing::warn!(error = %e, "job views: reading back changed jobs failed");
                let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
                for seq in seqs {
                    inner.put(seq, None);
                }
            }
        }
    }

    fn batch_done(&self, committed: bool) {
        let staged = std::mem::take(&mut *lock(&self.staged));
        lock(&self.touched).clear();
        lock(&self.provided).entries.clear();
        if !committed || staged.is_empty() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for (seq, entry) in staged {
            inner.put(seq, entry);
        }
        inner.evict(self.cap_bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::now_unix;
    use crate::store::StoreError;
    use crate::store::jobs::{self, Described, Ending, JobFilter, NewJob};
    use crate::store::sqlite::next_seq::NextSeq;
    use crate::store::sqlite::replays::Replays;
    use crate::store::sqlite::writer::Writer;
    use crate::store::sqlite::{ReadPool, db_path, open_rw};

    struct Setup {
        _dir: tempfile::TempDir,
        views: Arc<JobViews>,
        seqs: Arc<NextSeq>,
        writer: Writer,
        readers: ReadPool,
    }

    fn setup(cap_bytes: usize) -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        let path = db_path(dir.path());
        let mut conn = open_rw(&path).expect("open");
        let ids = JobIds::load_or_create(&conn).expect("ids");
        let views = Arc::new(JobViews::new(ids, cap_bytes));
        let clusters = Arc::new(
            crate::store::sqlite::announced::Announced::open(dir.path(), "clusters.changed")
                .expect("clusters"),
        );
        crate::store::sqlite::watch_rows(&mut conn, views.clone(), clusters).expect("watch");
        let readers = ReadPool::new(path, 2, views.ids.clone(), None);
        let seqs = Arc::new(NextSeq::new(views.ids.clone()));
        let (writer, _) = Writer::spawn(conn, vec![views.clone()], std::time::Duration::ZERO);
        Setup {
            _dir: dir,
            views,
            seqs,
            writer,
            readers,
        }
    }

    fn job(owner: &str) -> NewJob {
        NewJob {
            owner: owner.into(),
            zone: "sh1a".into(),
            action: "RunClusterCustomService".into(),
            lane: "cl-views01".into(),
            resource_ids: vec!["cl-views01".into()],
            directive: r#"{"action":"RunClusterCustomService"}"#.into(),
            task: "{}".into(),
            secrets: None,
        }
    }

    fn insert(s: &Setup, owner: &str) -> String {
        let job = job(owner);
        s.writer
            .write_blocking(move |c| jobs::insert(c, &job))
            .expect("insert")
    }

    /// What SQL alone answers for this id (no entries in memory).
    fn from_sql(s: &Setup, id: &str, owner: &str) -> Option<String> {
        let none = JobViews::new(s.views.ids.clone(), 0);
        let filter = JobFilter {
            owner: owner.into(),
            ids: vec![id.into()],
            limit: 10,
            ..Default::default()
        };
        match jobs::describe(&s.readers, &none, &filter).expect("describe") {
            Described::Page(page, _) => page.first().map(|e| e.json.get().to_string()),
            Described::Missing(_) => None,
        }
    }

    #[test]
    fn a_committed_job_is_served_from_memory_and_follows_its_status() {
        let s = setup(CAP_BYTES);
        let id = insert(&s, "usr-A");
        let entry = s.views.get(&id).expect("a new job is kept");
        assert_eq!(entry.status, "pending");
        assert_eq!(
            Some(entry.json.get().to_string()),
            from_sql(&s, &id, "usr-A")
        );

        let claimed = s
            .writer
            .write_blocking(|c| jobs::claim(c, "w-1", 60))
            .expect("claim")
            .expect("a job to claim");
        assert_eq!(s.views.get(&id).expect("kept").status, "working");
        let (seq, lane) = (claimed.seq, claimed.lane.clone());
        s.writer
            .write_blocking(move |c| {
                jobs::finish(
                    c,
                    seq,
                    &lane,
                    &Ending::Failed {
                        code: 5000,
                        message: "standby unreachable".into(),
                    },
                )
            })
            .expect("finish");
        let entry = s.views.get(&id).expect("kept");
        assert_eq!(entry.status, "failed");
        assert!(entry.json.get().contains("standby unreachable"));
        assert_eq!(
            Some(entry.json.get().to_string()),
            from_sql(&s, &id, "usr-A")
        );
    }

    /// Enqueues a job as actions do (its entry handed over, not read back),
    /// then runs `then` in the same operation.
    fn enqueue(s: &Setup, digest: &str, then: fn(&Connection) -> Result<(), StoreError>) -> String {
        let replays = Arc::new(s.readers.with(|c| Replays::load(c, 600)).expect("replays"));
        let (views, seqs) = (s.views.clone(), s.seqs.clone());
        let items = vec![(
            job("usr-A"),
            jobs::Once {
                digest: digest.into(),
                expires: now_unix() + 600,
            },
        )];
        let out = s
            .writer
            .write_blocking(move |c| {
                let out = jobs::enqueue(c, &replays, Some(&views), Some(&seqs), None, &items, 100)?;
                then(c)?;
                Ok(out)
            })
            .expect("enqueue");
        match out.as_slice() {
            [jobs::Enqueued::New(id)] => id.clone(),
            other => panic!("not enqueued: {other:?}"),
        }
    }

    #[test]
    fn an_entry_handed_over_by_the_insert_equals_the_row_read_back() {
        let s = setup(CAP_BYTES);
        let id = enqueue(&s, "d-1", |_| Ok(()));
        let entry = s.views.get(&id).expect("kept");
        assert_eq!(entry.status, "pending");
        assert_eq!(
            Some(entry.json.get().to_string()),
            from_sql(&s, &id, "usr-A")
        );

        // Inserted and changed again in one batch: the row is read back.
        let id = enqueue(&s, "d-2", |c| {
            c.execute("UPDATE jobs SET status = 'working'", [])?;
            Ok(())
        });
        let entry = s.views.get(&id).expect("kept");
        assert_eq!(entry.status, "working");
        assert_eq!(
            Some(entry.json.get().to_string()),
            from_sql(&s, &id, "usr-A")
        );
    }

    #[test]
    fn another_owner_never_sees_a_kept_job() {
        let s = setup(CAP_BYTES);
        let id = insert(&s, "usr-A");
        assert!(s.views.get(&id).is_some());
        let filter = JobFilter {
            owner: "usr-B".into(),
            ids: vec![id.clone()],
            limit: 10,
            ..Default::default()
        };
        match jobs::describe(&s.readers, &s.views, &filter).expect("describe") {
            Described::Missing(missing) => assert_eq!(missing, id),
            Described::Page(..) => panic!("usr-B was shown usr-A's job"),
        }
    }

    #[test]
    fn a_rolled_back_operation_or_a_deleted_job_leaves_no_entry() {
        let s = setup(CAP_BYTES);
        let (tx, rx) = std::sync::mpsc::channel();
        let first = job("usr-A");
        let failed = s.writer.write_blocking(move |c| {
            let _ = tx.send(jobs::insert(c, &first)?);
            Err::<(), _>(StoreError::Closed)
        });
        assert!(failed.is_err());
        let undone = rx.recv().expect("the operation inserted before failing");
        assert!(s.views.get(&undone).is_none(), "a rolled-back job was kept");
        assert_eq!(from_sql(&s, &undone, "usr-A"), None);

        // The same when the insert handed its entry over.
        let replays = Arc::new(s.readers.with(|c| Replays::load(c, 600)).expect("replays"));
        let (tx, rx) = std::sync::mpsc::channel();
        let (views, item) = (s.views.clone(), job("usr-A"));
        let failed = s.writer.write_blocking(move |c| {
            let once = jobs::Once {
                digest: "d-undone".into(),
                expires: now_unix() + 600,
            };
            let out = jobs::enqueue(
                c,
                &replays,
                Some(&views),
                None,
                None,
                &[(item.clone(), once)],
                100,
            )?;
            let _ = tx.send(out);
            Err::<(), _>(StoreError::Closed)
        });
        assert!(failed.is_err());
        let out = rx
            .try_iter()
            .last()
            .expect("the operation enqueued before failing");
        let [jobs::Enqueued::New(undone)] = out.as_slice() else {
            panic!("not enqueued: {out:?}");
        };
        assert!(
            s.views.get(undone).is_none(),
            "a handed-over entry outlived its rollback"
        );
        assert_eq!(from_sql(&s, undone, "usr-A"), None);

        let id = insert(&s, "usr-A");
        let claimed = s
            .writer
            .write_blocking(|c| jobs::claim(c, "w-1", 60))
            .expect("claim")
            .expect("a job to claim");
        s.writer
            .write_blocking(move |c| {
                jobs::finish(c, claimed.seq, &claimed.lane, &Ending::Successful)
            })
            .expect("finish");
        assert_eq!(s.views.get(&id).expect("kept").status, "successful");
        let replays = Arc::new(s.readers.with(|c| Replays::load(c, 60)).expect("replays"));
        let pruned = s
            .writer
            .write_blocking(move |c| jobs::prune(c, &replays, now_unix() + 1, 100))
            .expect("prune");
        assert_eq!(pruned, 1);
        assert!(s.views.get(&id).is_none(), "a pruned job was kept");
    }

    #[test]
    fn a_seq_taken_behind_the_writers_back_is_noticed_and_the_job_stored_after_it() {
        let s = setup(CAP_BYTES);
        let seq = |id: &str| s.views.ids.decode(id).expect("an id of ours");
        let first = enqueue(&s, "d-first", |_| Ok(()));
        // These read their seqs from SQL: the writer's counter holds the
        // first of them as its next.
        let others = [insert(&s, "usr-A"), insert(&s, "usr-A")];
        assert_eq!(seq(&others[0]), seq(&first) + 1);
        let next = enqueue(&s, "d-next", |_| Ok(()));
        assert_eq!(seq(&next), seq(&others[1]) + 1);
        let kept = s.views.get(&next).expect("kept");
        assert_eq!(
            Some(kept.json.get().to_string()),
            from_sql(&s, &next, "usr-A")
        );
    }

    #[test]
    fn the_budget_keeps_the_newest_jobs() {
        // What the first job holds (its example too), and each one after it.
        let (first, each) = {
            let s = setup(CAP_BYTES);
            insert(&s, "usr-A");
            let first = s.views.held();
            (0..9).for_each(|_| drop(insert(&s, "usr-A")));
            (first, (s.views.held() - first) / 9)
        };
        let cap = first + 3 * each;
        let s = setup(cap);
        let ids: Vec<String> = (0..10).map(|_| insert(&s, "usr-A")).collect();
        let kept = s.views.len();
        assert!((2..10).contains(&kept), "{kept} kept");
        assert!(s.views.held() <= cap);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(s.views.get(id).is_some(), i >= 10 - kept, "job {i}");
            // Evicted or not, every job is still found.
            assert!(from_sql(&s, id, "usr-A").is_some());
        }
    }

    fn packed(packer: &mut Packer, seq: i64) -> Packed {
        packer.pack(&JobEntry {
            seq,
            id: format!("j-{seq:011}"),
            owner: "usr-A".into(),
            zone: "sh1a".into(),
            status: "pending".into(),
            action: "StartClusters".into(),
            resource_ids: "cl-views01".into(),
            json: crate::written::Written::of(&seq).expect("json"),
        })
    }

    #[test]
    fn every_entry_and_example_is_charged_while_held_and_only_then() {
        let mut packer = Packer::default();
        let mut inner = Inner::default();
        inner.put(10, Some(packed(&mut packer, 10)));
        let first = inner.held();
        inner.put(12, Some(packed(&mut packer, 12)));
        assert_eq!(inner.entries, 2);
        assert!(inner.held() - first < first, "the example is charged once");
        assert_eq!(
            inner.get(12).and_then(|p| p.unpack(12)).map(|e| e.id),
            Some("j-00000000012".to_string())
        );

        // Older than the ring: not kept, nor charged.
        let before = (inner.held(), inner.entries);
        inner.put(5, Some(packed(&mut packer, 5)));
        inner.put(11, None);
        assert_eq!((inner.held(), inner.entries), before);

        // A removal at the front lets the ring move on; a budget of nothing
        // empties it, and nothing is charged any more, examples included.
        inner.put(10, None);
        inner.evict(usize::MAX);
        assert_eq!((inner.ring.slots(), inner.entries), (1, 1));
        inner.evict(0);
        assert_eq!((inner.ring.slots(), inner.entries, inner.bytes), (0, 0, 0));
        assert!(inner.examples.is_empty());
    }

    #[test]
    fn past_eight_jumps_in_seqs_the_oldest_segment_goes() {
        let mut packer = Packer::default();
        let mut inner = Inner::default();
        for k in 0..9 {
            let seq = k * 1_000_000;
            inner.put(seq, Some(packed(&mut packer, seq)));
        }
        inner.evict(usize::MAX);
        assert_eq!((inner.ring.segments(), inner.entries), (MAX_SEGMENTS, 8));
        assert!(inner.get(0).is_none() && inner.get(1_000_000).is_some());
    }
}
