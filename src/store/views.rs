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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rusqlite::Connection;
use rusqlite::hooks::Action;

use super::job_ids::JobIds;
use super::jobs::{self, JobEntry};
use super::writer::CommitListener;

/// Bytes of entries kept (~9k jobs of a typical `start_standby`).
pub const CAP_BYTES: usize = 8 << 20;

/// A row's entry once the batch commits; `None`: the row is gone.
type Staged = (i64, Option<Arc<JobEntry>>);

#[derive(Default)]
struct Inner {
    map: HashMap<i64, Arc<JobEntry>>,
    /// Seqs in the order they entered, oldest first; may name removed ones.
    order: VecDeque<i64>,
    bytes: usize,
}

impl Inner {
    fn put(&mut self, seq: i64, entry: Option<Arc<JobEntry>>) {
        let added = entry.as_ref().map_or(0, |e| e.footprint());
        let old = match entry {
            Some(e) => self.map.insert(seq, e),
            None => self.map.remove(&seq),
        };
        match &old {
            Some(o) => self.bytes -= o.footprint(),
            None if added > 0 => self.order.push_back(seq),
            None => {}
        }
        self.bytes += added;
    }

    fn evict(&mut self, cap: usize) {
        while self.bytes > cap {
            let Some(seq) = self.order.pop_front() else {
                break;
            };
            if let Some(e) = self.map.remove(&seq) {
                self.bytes -= e.footprint();
            }
        }
        // Removed entries leave their seq behind; drop them once they dominate.
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|s| map.contains_key(s));
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
    /// Read back before the commit; applied if it succeeds.
    staged: Mutex<Vec<Staged>>,
}

#[derive(Default)]
struct Provided {
    entries: Vec<Arc<JobEntry>>,
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
        }
    }

    /// Called by the writer's update hook for each change to a `jobs` row.
    pub fn touched(&self, action: Action, seq: i64) {
        lock(&self.touched).push((action, seq));
    }

    /// A row the writer just inserted, as it will read once committed: it
    /// need not be read back (unless the batch changes it again).
    pub fn provide(&self, entry: JobEntry) {
        lock(&self.provided).entries.push(Arc::new(entry));
    }

    /// The job with this id, if it is here.
    pub fn get(&self, id: &str) -> Option<Arc<JobEntry>> {
        let seq = self.ids.decode(id)?;
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.map.get(&seq).filter(|e| e.id == id).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries the touched rows will have once the batch commits.
    fn read_back(
        &self,
        conn: &Connection,
        mut touched: Vec<(Action, i64)>,
    ) -> Result<Vec<Staged>, super::StoreError> {
        touched.sort_by_key(|(_, seq)| *seq);
        let mut provided: HashMap<i64, Arc<JobEntry>> = lock(&self.provided)
            .entries
            .drain(..)
            .map(|e| (e.seq, e))
            .collect();
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut staged = Vec::new();
        for rows in touched.chunk_by(|a, b| a.1 == b.1) {
            let seq = rows[0].1;
            let inserted = rows.iter().any(|(a, _)| *a == Action::SQLITE_INSERT);
            if !inserted && !inner.map.contains_key(&seq) {
                continue;
            }
            let only_inserted = rows.iter().all(|(a, _)| *a == Action::SQLITE_INSERT);
            let entry = match provided.remove(&seq) {
                Some(e) if only_inserted => Some(e),
                _ => jobs::entry_by_seq(conn, seq)?.map(Arc::new),
            };
            staged.push((seq, entry));
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
    use super::*;
    use crate::clock::now_unix;
    use crate::store::jobs::{Described, Ending, JobFilter, NewJob};
    use crate::store::next_seq::NextSeq;
    use crate::store::replays::Replays;
    use crate::store::writer::Writer;
    use crate::store::{ReadPool, StoreError, db_path, open_rw};

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
            crate::store::announced::Announced::open(dir.path(), "clusters.changed")
                .expect("clusters"),
        );
        crate::store::watch_rows(&mut conn, views.clone(), clusters).expect("watch");
        let readers = ReadPool::new(path, 2, views.ids.clone(), None);
        let seqs = Arc::new(NextSeq::new(views.ids.clone()));
        let (writer, _) = Writer::spawn(conn, vec![views.clone()]);
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
                let out = jobs::enqueue(c, &replays, Some(&views), Some(&seqs), &items, 100)?;
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
        let one = {
            let s = setup(CAP_BYTES);
            let id = insert(&s, "usr-A");
            s.views.get(&id).expect("kept").footprint()
        };
        let s = setup(3 * one);
        let ids: Vec<String> = (0..10).map(|_| insert(&s, "usr-A")).collect();
        assert_eq!(s.views.len(), 3);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(s.views.get(id).is_some(), i >= 7, "job {i}");
            // Evicted or not, every job is still found.
            assert!(from_sql(&s, id, "usr-A").is_some());
        }
    }
}
