-- qcgate schema on PostgreSQL: the same tables as the SQLite file, shaped
-- for several gateways at once (row locks instead of one serial writer).
-- Times are unix seconds (UTC) unless the name says _ms.

CREATE TABLE IF NOT EXISTS meta (
  name   TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS access_keys (
  id          TEXT PRIMARY KEY,
  secret      TEXT NOT NULL,
  owner       TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  revoked_at  BIGINT
);

CREATE TABLE IF NOT EXISTS clusters (
  id           TEXT PRIMARY KEY,
  owner        TEXT NOT NULL,
  zone         TEXT NOT NULL,
  name         TEXT NOT NULL DEFAULT '',
  status       TEXT NOT NULL DEFAULT 'active',
  dr_role      TEXT NOT NULL DEFAULT 'primary',
  standby_of   TEXT,
  sync_way     TEXT,
  sync_status  TEXT,
  create_time  BIGINT NOT NULL,
  status_time  BIGINT NOT NULL,
  settings     TEXT NOT NULL DEFAULT '{}',
  backend      TEXT NOT NULL DEFAULT 'model'
);
CREATE INDEX IF NOT EXISTS clusters_owner ON clusters(owner, id);

-- n keeps the order nodes were added in (SQLite's rowid).
CREATE TABLE IF NOT EXISTS nodes (
  n            BIGSERIAL,
  id           TEXT PRIMARY KEY,
  cluster_id   TEXT NOT NULL,
  role         TEXT NOT NULL,
  is_primary   BOOLEAN NOT NULL DEFAULT FALSE,
  status       TEXT NOT NULL DEFAULT 'active',
  create_time  BIGINT NOT NULL,
  restart_time BIGINT,
  rebuild_time BIGINT
);
CREATE INDEX IF NOT EXISTS nodes_cluster ON nodes(cluster_id, id);

CREATE TABLE IF NOT EXISTS accounts (
  cluster_id   TEXT NOT NULL,
  engine       TEXT NOT NULL,
  "user"       TEXT NOT NULL,
  host         TEXT NOT NULL,
  db           TEXT NOT NULL DEFAULT '',
  priv         TEXT NOT NULL DEFAULT '',
  ssl          BOOLEAN NOT NULL DEFAULT FALSE,
  create_time  BIGINT NOT NULL,
  PRIMARY KEY (cluster_id, engine, "user", host)
);

-- seq comes from job_seq; id is job_id(seq) (store/job_ids.rs, its key in
-- meta). A lane's jobs run one at a time in seq order (see lanes).
CREATE SEQUENCE IF NOT EXISTS job_seq;
CREATE TABLE IF NOT EXISTS jobs (
  seq            BIGINT PRIMARY KEY,
  id             TEXT NOT NULL,
  owner          TEXT NOT NULL,
  zone           TEXT NOT NULL,
  action         TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('pending', 'working', 'successful', 'failed')),
  lane           TEXT NOT NULL,
  resource_ids   TEXT NOT NULL,
  directive      TEXT NOT NULL,
  task           TEXT NOT NULL,
  secrets        TEXT,
  error_codes    TEXT NOT NULL DEFAULT '',
  error_message  TEXT NOT NULL DEFAULT '',
  output         TEXT NOT NULL DEFAULT '',
  create_time    BIGINT NOT NULL,
  status_time    BIGINT NOT NULL,
  enqueued_ms    BIGINT NOT NULL,
  started_ms     BIGINT,
  lease_owner    TEXT,
  lease_expires  BIGINT,               -- on the database's clock
  attempts       BIGINT NOT NULL DEFAULT 0,
  open_shard     SMALLINT NOT NULL DEFAULT 0  -- the owner_open row that counts it
);
CREATE INDEX IF NOT EXISTS jobs_owner_seq ON jobs(owner, seq);
CREATE INDEX IF NOT EXISTS jobs_lane_open ON jobs(lane, seq) WHERE status IN ('pending', 'working');
CREATE INDEX IF NOT EXISTS jobs_working ON jobs(lease_expires) WHERE status = 'working';
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(status_time) WHERE status IN ('successful', 'failed');

-- One row per lane, locked by whoever changes the lane: a submission (from
-- before it draws its seq, so a lane's seqs commit in order), a claim, a
-- job's end. head is the lane's oldest open job (running, or the next to
-- run); a claim takes a lane that is not busy, by its head.
CREATE TABLE IF NOT EXISTS lanes (
  lane      TEXT PRIMARY KEY,
  head      BIGINT,
  busy      BOOLEAN NOT NULL DEFAULT FALSE,
  ready_at  BIGINT NOT NULL DEFAULT 0   -- a job backing off holds its lane until then
);
CREATE INDEX IF NOT EXISTS lanes_claimable ON lanes(head) WHERE NOT busy AND head IS NOT NULL;

-- A signed request that stored a job: unique, so the same request sent to
-- two gateways stores one job.
CREATE TABLE IF NOT EXISTS replays (
  digest   TEXT PRIMARY KEY,
  job_id   TEXT NOT NULL,
  expires  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS replays_expires ON replays(expires);

-- Open (pending or working) jobs per owner, for the queue quota, counted
-- over a few rows (shards) so that concurrent submissions do not wait on one.
CREATE TABLE IF NOT EXISTS owner_open (
  owner  TEXT NOT NULL,
  shard  SMALLINT NOT NULL,
  open   BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (owner, shard)
);

CREATE TABLE IF NOT EXISTS servers (
  endpoint      TEXT PRIMARY KEY,
  zone          TEXT NOT NULL,
  admin_user    TEXT NOT NULL,
  admin_secret  TEXT NOT NULL,
  server_id     BIGINT NOT NULL,
  version       TEXT NOT NULL DEFAULT '',
  cluster_id    TEXT,
  node_id       TEXT,
  create_time   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS servers_cluster ON servers(cluster_id);

CREATE TABLE IF NOT EXISTS job_steps (
  job_seq  BIGINT NOT NULL,
  n        BIGINT NOT NULL,
  at_ms    BIGINT NOT NULL,
  step     TEXT NOT NULL,
  outcome  TEXT NOT NULL,
  detail   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_seq, n)
);

CREATE TABLE IF NOT EXISTS dr_tasks (
  id               TEXT PRIMARY KEY,
  owner            TEXT NOT NULL,
  zone             TEXT NOT NULL,
  name             TEXT NOT NULL,
  description      TEXT NOT NULL DEFAULT '',
  direction        TEXT NOT NULL DEFAULT 'standby',
  standby_cluster  TEXT NOT NULL,
  source_cluster   TEXT,
  source_endpoint  TEXT NOT NULL DEFAULT '',
  source_user      TEXT NOT NULL DEFAULT '',
  source_secret    TEXT,
  sync_way         TEXT NOT NULL DEFAULT 'full',
  objects          TEXT NOT NULL DEFAULT '["*"]',
  flow_control     TEXT NOT NULL DEFAULT '{}',
  migrate_definer  BOOLEAN NOT NULL DEFAULT FALSE,
  status           TEXT NOT NULL,
  status_time      BIGINT NOT NULL,
  create_time      BIGINT NOT NULL,
  last_error       TEXT NOT NULL DEFAULT '',
  precheck         TEXT,
  precheck_time    BIGINT,
  start_at         BIGINT,
  progress         TEXT
);
CREATE INDEX IF NOT EXISTS dr_tasks_owner ON dr_tasks(owner, create_time);

CREATE TABLE IF NOT EXISTS dr_task_logs (
  task_id  TEXT NOT NULL,
  n        BIGINT NOT NULL,
  time_ms  BIGINT NOT NULL,
  level    TEXT NOT NULL,
  code     TEXT NOT NULL,
  job_id   TEXT NOT NULL DEFAULT '',
  message  TEXT NOT NULL,
  PRIMARY KEY (task_id, n)
);

CREATE TABLE IF NOT EXISTS dr_compares (
  id           TEXT PRIMARY KEY,
  task_id      TEXT NOT NULL,
  types        TEXT NOT NULL,
  status       TEXT NOT NULL,
  at_gtid      TEXT NOT NULL DEFAULT '',
  create_time  BIGINT NOT NULL,
  finish_time  BIGINT,
  result       TEXT NOT NULL DEFAULT '{}',
  error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS dr_compares_task ON dr_compares(task_id, create_time);
