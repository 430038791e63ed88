-- qcgate schema. Times are unix seconds (UTC) unless the name says _ms.

-- Settings of this database: the job id key, the lowest seq a new job may take.
CREATE TABLE IF NOT EXISTS meta (
  name   TEXT PRIMARY KEY,
  value
) WITHOUT ROWID;

-- Ids of jobs stored before ids were derived from seq (random, then).
CREATE TABLE IF NOT EXISTS legacy_job_ids (
  id   TEXT PRIMARY KEY,
  seq  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_keys (
  id          TEXT PRIMARY KEY,
  secret      TEXT NOT NULL,
  owner       TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);

CREATE TABLE IF NOT EXISTS clusters (
  id           TEXT PRIMARY KEY,
  owner        TEXT NOT NULL,
  zone         TEXT NOT NULL,
  name         TEXT NOT NULL DEFAULT '',
  status       TEXT NOT NULL DEFAULT 'active',
  dr_role      TEXT NOT NULL DEFAULT 'primary',   -- primary | standby
  standby_of   TEXT,                              -- source cluster id while a standby
  sync_way     TEXT,                              -- full | increment
  sync_status  TEXT,                              -- NORMAL while syncing
  create_time  INTEGER NOT NULL,
  status_time  INTEGER NOT NULL,
  settings     TEXT NOT NULL DEFAULT '{}'         -- what custom services set: readonly, ssl, …
);
CREATE INDEX IF NOT EXISTS clusters_owner ON clusters(owner, id);

-- The nodes of a cluster: an HA pair of maininstance nodes by default.
CREATE TABLE IF NOT EXISTS nodes (
  id           TEXT PRIMARY KEY,                  -- cln-xxxxxxxx
  cluster_id   TEXT NOT NULL,
  role         TEXT NOT NULL,                     -- maininstance | readinstance | analysis | proxy
  is_primary   INTEGER NOT NULL DEFAULT 0,        -- the maininstance node that takes writes
  status       TEXT NOT NULL DEFAULT 'active',
  create_time  INTEGER NOT NULL,
  restart_time INTEGER,                           -- last restart_node / RestartClusterService
  rebuild_time INTEGER                            -- last rebuildme
);
CREATE INDEX IF NOT EXISTS nodes_cluster ON nodes(cluster_id, id);

-- Database accounts made by add_user / add_ck_user (never their passwords).
CREATE TABLE IF NOT EXISTS accounts (
  cluster_id   TEXT NOT NULL,
  engine       TEXT NOT NULL,                     -- mysql | clickhouse
  user         TEXT NOT NULL,
  host         TEXT NOT NULL,                     -- one host or network per mysql row; ClickHouse: its networks
  db           TEXT NOT NULL DEFAULT '',
  priv         TEXT NOT NULL DEFAULT '',
  ssl          INTEGER NOT NULL DEFAULT 0,
  create_time  INTEGER NOT NULL,
  PRIMARY KEY (cluster_id, engine, user, host)
) WITHOUT ROWID;

-- seq gives submission order; id is what clients see: job_id(seq), a keyed
-- permutation (store/job_ids.rs), so lookups by id go through seq.
CREATE TABLE IF NOT EXISTS jobs (
  seq            INTEGER PRIMARY KEY,
  id             TEXT NOT NULL,
  owner          TEXT NOT NULL,
  zone           TEXT NOT NULL,
  action         TEXT NOT NULL,
  -- Not `status IN (…)`: an IN list of more than two values builds a
  -- temporary b-tree each time the check runs (every insert, every status change).
  status         TEXT NOT NULL CHECK (status = 'pending' OR status = 'working' OR status = 'successful' OR status = 'failed'),
  lane           TEXT NOT NULL,                   -- jobs of one lane run one at a time, in seq order
  resource_ids   TEXT NOT NULL,
  directive      TEXT NOT NULL,                   -- the request, secrets removed
  task           TEXT NOT NULL,                   -- what the executor needs, secrets removed
  secrets        TEXT,                            -- secret fields, sealed; NULL once the job ends
  error_codes    TEXT NOT NULL DEFAULT '',
  error_message  TEXT NOT NULL DEFAULT '',
  output         TEXT NOT NULL DEFAULT '',      -- what a command executor printed, secrets removed
  create_time    INTEGER NOT NULL,
  status_time    INTEGER NOT NULL,
  enqueued_ms    INTEGER NOT NULL,
  started_ms     INTEGER,
  lease_owner    TEXT,
  lease_expires  INTEGER,
  attempts       INTEGER NOT NULL DEFAULT 0,
  replay_digest  TEXT,                            -- the signed request that stored the job (see replays)
  replay_expires INTEGER,                         -- until when that request could be sent again
  lane_prev      INTEGER                          -- the lane's job queued before this one, if still open then
);
CREATE INDEX IF NOT EXISTS jobs_owner_seq ON jobs(owner, seq);
CREATE INDEX IF NOT EXISTS jobs_working ON jobs(lease_expires) WHERE status = 'working';

CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(status_time) WHERE status IN ('successful', 'failed');

-- A signed request that stored a job, so the same request received again
-- answers with the same job (kept while the request is still valid). The
-- job rows' replay_digest columns are the record, indexed in memory
-- (store/replays.rs); here only requests that share the index's hash with
-- another live one, and those whose job was pruned first.
CREATE TABLE IF NOT EXISTS replays (
  expires  INTEGER NOT NULL,
  digest   TEXT NOT NULL,
  job_id   TEXT NOT NULL,
  PRIMARY KEY (expires, digest)
) WITHOUT ROWID;

-- The in-memory index's entries that expire first, moved here when it is
-- nearly full: its 64-bit hash of the request's digest and the job's seq
-- (the job row's replay_digest confirms a match). Keyed by expiry first so
-- that entries moved in order append to the table.
CREATE TABLE IF NOT EXISTS replay_spill (
  expires  INTEGER NOT NULL,
  hash     INTEGER NOT NULL,
  seq      INTEGER NOT NULL,
  PRIMARY KEY (expires, hash, seq)
) WITHOUT ROWID;

-- Open (pending or working) jobs per owner, for the queue quota.
CREATE TABLE IF NOT EXISTS owner_open (
  owner  TEXT PRIMARY KEY,
  open   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- One row per lane so a claim is an index lookup, however long the backlog.
-- A lane's open jobs form a list: head is the oldest (the one to run or
-- running), tail the newest, and each job's lane_prev names the one before
-- it. An index on (lane, seq) would take a write on a page of its own per
-- job, one place per lane; lane_prev values are recent seqs, so the index
-- on them (jobs_lane_next, made in migrate) grows at its right edge.
CREATE TABLE IF NOT EXISTS lanes (
  lane     TEXT PRIMARY KEY,
  pending  INTEGER NOT NULL DEFAULT 0,
  busy     INTEGER NOT NULL DEFAULT 0,
  ready_at INTEGER NOT NULL DEFAULT 0,  -- a job backing off before a retry holds its lane until then
  head     INTEGER,
  tail     INTEGER
) WITHOUT ROWID;
-- The lanes a worker can claim from are indexed by lanes_claimable (made in
-- migrate, after head exists): busy = 0 AND head IS NOT NULL.

-- MariaDB servers qcgate may manage (`qcgate servers add`). A server is a
-- node of at most one cluster; a cluster whose nodes are servers runs its
-- jobs on them (clusters.backend = 'servers').
CREATE TABLE IF NOT EXISTS servers (
  endpoint      TEXT PRIMARY KEY,                 -- host:port as registered
  zone          TEXT NOT NULL,
  admin_user    TEXT NOT NULL,
  admin_secret  TEXT NOT NULL,                    -- the admin password, sealed
  server_id     INTEGER NOT NULL,
  version       TEXT NOT NULL DEFAULT '',
  cluster_id    TEXT,                             -- NULL while free
  node_id       TEXT,
  create_time   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS servers_cluster ON servers(cluster_id);

-- The steps of a job that acts on servers, recorded as each one begins and
-- ends, so that a gateway stopped mid-way can tell what was done.
CREATE TABLE IF NOT EXISTS job_steps (
  job_seq  INTEGER NOT NULL,
  n        INTEGER NOT NULL,
  at_ms    INTEGER NOT NULL,
  step     TEXT NOT NULL,
  outcome  TEXT NOT NULL,                         -- begin | done | failed | info
  detail   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_seq, n)
) WITHOUT ROWID;

-- DR tasks (seed 002): a source and a standby, and the replication between
-- them, with its pre-checks, progress, logs and comparisons.
CREATE TABLE IF NOT EXISTS dr_tasks (
  id               TEXT PRIMARY KEY,              -- drt-xxxxxxxx
  owner            TEXT NOT NULL,
  zone             TEXT NOT NULL,
  name             TEXT NOT NULL,
  description      TEXT NOT NULL DEFAULT '',
  direction        TEXT NOT NULL DEFAULT 'standby',
  standby_cluster  TEXT NOT NULL,                 -- the cluster that receives
  source_cluster   TEXT,                          -- a registered source, or NULL
  source_endpoint  TEXT NOT NULL DEFAULT '',      -- an external source's host:port
  source_user      TEXT NOT NULL DEFAULT '',
  source_secret    TEXT,                          -- its password, sealed
  sync_way         TEXT NOT NULL DEFAULT 'full',
  objects          TEXT NOT NULL DEFAULT '["*"]',
  flow_control     TEXT NOT NULL DEFAULT '{}',
  migrate_definer  INTEGER NOT NULL DEFAULT 0,
  status           TEXT NOT NULL,
  status_time      INTEGER NOT NULL,
  create_time      INTEGER NOT NULL,
  last_error       TEXT NOT NULL DEFAULT '',
  precheck         TEXT,                          -- the latest pre-check, JSON
  precheck_time    INTEGER,
  start_at         INTEGER,                       -- a scheduled start
  progress         TEXT                           -- the latest sample, JSON
);
CREATE INDEX IF NOT EXISTS dr_tasks_owner ON dr_tasks(owner, create_time);

CREATE TABLE IF NOT EXISTS dr_task_logs (
  task_id  TEXT NOT NULL,
  n        INTEGER NOT NULL,
  time_ms  INTEGER NOT NULL,
  level    TEXT NOT NULL,                         -- info | warning | error
  code     TEXT NOT NULL,
  job_id   TEXT NOT NULL DEFAULT '',
  message  TEXT NOT NULL,
  PRIMARY KEY (task_id, n)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS dr_compares (
  id           TEXT PRIMARY KEY,                  -- drc-xxxxxxxx
  task_id      TEXT NOT NULL,
  types        TEXT NOT NULL,                     -- JSON list: objects, lines, contents
  status       TEXT NOT NULL,                     -- WAITING_FOR_RUNNING | RUNNING | SUCCESSFUL | FAILED
  at_gtid      TEXT NOT NULL DEFAULT '',
  create_time  INTEGER NOT NULL,
  finish_time  INTEGER,
  result       TEXT NOT NULL DEFAULT '{}',
  error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS dr_compares_task ON dr_compares(task_id, create_time);
