-- qcgate schema on PostgreSQL: the same tables as the SQLite file, shaped
-- for several gateways at once (row locks instead of one serial writer).
-- Times are unix seconds (UTC) unless the name says _ms. Keys looked up on
-- every request are COLLATE "C": bytes compare as SQLite's do, and an
-- index probe costs no locale-aware comparison.

CREATE TABLE IF NOT EXISTS meta (
  name   TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS access_keys (
  id          TEXT COLLATE "C" PRIMARY KEY,
  secret      TEXT NOT NULL,
  owner       TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  revoked_at  BIGINT
);

CREATE TABLE IF NOT EXISTS clusters (
  id           TEXT COLLATE "C" PRIMARY KEY,
  owner        TEXT COLLATE "C" NOT NULL,
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

-- seq comes from job_seq; a job's id is seq under the keyed permutation
-- of store/job_ids.rs (its key in meta), worked out by the gateways, never
-- stored. A lane's jobs run one at a time in seq order (see lanes).
CREATE SEQUENCE IF NOT EXISTS job_seq;
CREATE TABLE IF NOT EXISTS jobs (
  seq            BIGINT PRIMARY KEY,
  owner          TEXT COLLATE "C" NOT NULL,
  zone           TEXT NOT NULL,
  action         TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('pending', 'working', 'successful', 'failed')),
  lane           TEXT COLLATE "C" NOT NULL,
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
  lane      TEXT COLLATE "C" PRIMARY KEY,
  head      BIGINT,
  busy      BOOLEAN NOT NULL DEFAULT FALSE,
  ready_at  BIGINT NOT NULL DEFAULT 0   -- a job backing off holds its lane until then
);
CREATE INDEX IF NOT EXISTS lanes_claimable ON lanes(head) WHERE NOT busy AND head IS NOT NULL;

-- A signed request that stored a job: unique, so the same request sent to
-- two gateways stores one job.
CREATE TABLE IF NOT EXISTS replays (
  digest   TEXT COLLATE "C" PRIMARY KEY,
  job_seq  BIGINT NOT NULL,
  expires  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS replays_expires ON replays(expires);

-- Open (pending or working) jobs per owner, for the queue quota, counted
-- over a few rows (shards) so that concurrent submissions do not wait on one.
CREATE TABLE IF NOT EXISTS owner_open (
  owner  TEXT COLLATE "C" NOT NULL,
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

-- A batch of submissions in one statement: one round trip and one commit
-- for the requests a gateway received meanwhile. Items of one submission
-- are contiguous (same sub); no replay key repeats in a batch; owner_set
-- and lane_set are the batch's owners and lanes, each once. Each
-- submission is all or none: stored, its replays, refused over quota
-- ('over'), or 'raced' having written nothing (a key of it vanished
-- between storing and reading): the gateway then stores it alone. An
-- error fails the whole batch, and the gateway stores its submissions one
-- by one. The work is done a statement per step for the whole batch, not
-- per job, and without subtransactions (hundreds in one transaction would
-- overflow every snapshot's subtransaction cache).
-- Rows are locked in the store's order, all before any seq is drawn: the
-- owners' open counts (one shard per batch), then the lanes, each sorted.
-- Plans are generic (planning each statement every call cost a quarter of
-- the function's time) and every row is reached through a key's index:
-- with seq scans off, a plan made while the tables were empty stays right
-- once they hold millions of rows.
DROP FUNCTION IF EXISTS qcgate_submit(int[], bigint[], text[], text[], text[], text[], text[],
  text[], text[], text[], text[], bigint[], bigint, bigint, smallint);
CREATE OR REPLACE FUNCTION qcgate_submit(
  sub int[], max_open bigint[], owners text[], zones text[], actions text[],
  lane_of text[], resources text[], directives text[], tasks text[],
  sealed text[], digests text[], valid_until bigint[],
  owner_set text[], lane_set text[],
  now_s bigint, now_ms bigint, shard_no smallint)
RETURNS TABLE (out_item int, out_kind text, out_seq bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
DECLARE
  total int := coalesce(array_length(sub, 1), 0);
  a int := 1;
  b int;
  i int;
  locked int;
  fresh int;
  gone int;
  o int;
  kinds text[];
  fresh_seq bigint[];  -- the seq of an item whose key this batch stored
  old_seq bigint[];    -- the job an item's key already named
  owner_open_now bigint[];
  owner_added bigint[];
BEGIN
  -- The locks. A row not there yet is made, then all are locked again.
  PERFORM 1 FROM owner_open WHERE owner = ANY(owner_set) AND shard = shard_no
    ORDER BY owner FOR UPDATE;
  GET DIAGNOSTICS locked = ROW_COUNT;
  IF locked < cardinality(owner_set) THEN
    INSERT INTO owner_open (owner, shard, open)
      SELECT x, shard_no, 0 FROM unnest(owner_set) x ORDER BY x ON CONFLICT (owner, shard) DO NOTHING;
    PERFORM 1 FROM owner_open WHERE owner = ANY(owner_set) AND shard = shard_no
      ORDER BY owner FOR UPDATE;
  END IF;
  PERFORM 1 FROM lanes WHERE lane = ANY(lane_set) ORDER BY lane FOR UPDATE;
  GET DIAGNOSTICS locked = ROW_COUNT;
  IF locked < cardinality(lane_set) THEN
    INSERT INTO lanes (lane) SELECT x FROM unnest(lane_set) x ORDER BY x ON CONFLICT (lane) DO NOTHING;
    PERFORM 1 FROM lanes WHERE lane = ANY(lane_set) ORDER BY lane FOR UPDATE;
  END IF;
  SELECT array_agg(coalesce((SELECT sum(oo.open) FROM owner_open oo WHERE oo.owner = x), 0)::bigint ORDER BY n)
    INTO owner_open_now FROM unnest(owner_set) WITH ORDINALITY AS u(x, n);
  owner_added := array_fill(0::bigint, ARRAY[cardinality(owner_set)]);
  -- Every item's key is stored, in the keys' order (a key another batch
  -- is storing is waited for; in one order, no two batches wait on each
  -- other). Seqs are drawn in item order, so a lane's jobs run in the
  -- order they were submitted; an item whose key was stored before draws
  -- one it does not use.
  WITH kept AS (
    INSERT INTO replays AS r (digest, job_seq, expires)
      SELECT d, s, v FROM (SELECT digests[n] AS d, nextval('job_seq') AS s, valid_until[n] AS v
                           FROM generate_series(1, total) n OFFSET 0) q
      ORDER BY d
      ON CONFLICT (digest) DO UPDATE SET job_seq = excluded.job_seq, expires = excluded.expires
      WHERE r.expires < now_s
      RETURNING r.digest, r.job_seq)
  SELECT array_agg(kp.job_seq ORDER BY u.n) INTO fresh_seq
    FROM unnest(digests) WITH ORDINALITY AS u(x, n) LEFT JOIN kept kp ON kp.digest = u.x;
  -- What the keys stored before name (a retried request).
  old_seq := array_fill(NULL::bigint, ARRAY[total]);
  IF array_position(fresh_seq, NULL) IS NOT NULL THEN
    SELECT array_agg(r.job_seq ORDER BY u.n) INTO old_seq
      FROM unnest(digests) WITH ORDINALITY AS u(x, n)
      -- OFFSET 0: one probe of the key's index per item, never a join
      -- over every live key.
      LEFT JOIN LATERAL (SELECT rr.job_seq FROM replays rr
                         WHERE fresh_seq[u.n] IS NULL AND rr.digest = u.x AND rr.expires >= now_s
                         OFFSET 0) r ON true;
  END IF;
  -- Which submissions are stored: the quota, by owner, in submission order.
  kinds := array_fill(NULL::text, ARRAY[total]);
  WHILE a <= total LOOP
    b := a;
    WHILE b < total AND sub[b + 1] = sub[a] LOOP
      b := b + 1;
    END LOOP;
    fresh := 0;
    gone := 0;
    FOR i IN a..b LOOP
      IF fresh_seq[i] IS NOT NULL THEN
        fresh := fresh + 1;
      ELSIF old_seq[i] IS NULL THEN
        gone := gone + 1;
      END IF;
    END LOOP;
    o := array_position(owner_set, owners[a]);
    FOR i IN a..b LOOP
      kinds[i] := CASE
        WHEN gone > 0 THEN 'raced'
        WHEN fresh = 0 THEN 'replayed'
        WHEN fresh > max_open[a] OR owner_open_now[o] + owner_added[o] + fresh > max_open[a] THEN 'over'
        WHEN fresh_seq[i] IS NOT NULL THEN 'new'
        ELSE 'replayed' END;
    END LOOP;
    IF kinds[a] IN ('new', 'replayed') THEN
      owner_added[o] := owner_added[o] + fresh;
    END IF;
    a := b + 1;
  END LOOP;
  -- The keys of submissions not stored are taken back.
  IF array_position(kinds, 'over') IS NOT NULL OR array_position(kinds, 'raced') IS NOT NULL THEN
    DELETE FROM replays r USING generate_series(1, total) n
      WHERE kinds[n] IN ('over', 'raced') AND fresh_seq[n] IS NOT NULL
        AND r.digest = digests[n] AND r.job_seq = fresh_seq[n];
  END IF;
  INSERT INTO jobs (seq, owner, zone, action, status, lane, resource_ids, directive, task,
                    create_time, status_time, enqueued_ms, secrets, open_shard)
    SELECT fresh_seq[n], owners[n], zones[n], actions[n], 'pending', lane_of[n], resources[n],
           directives[n], tasks[n], now_s, now_s, now_ms, sealed[n], shard_no
    FROM generate_series(1, total) n WHERE kinds[n] = 'new';
  UPDATE owner_open oo SET open = oo.open + u.added
    FROM unnest(owner_set, owner_added) AS u(name, added)
    WHERE oo.owner = u.name AND oo.shard = shard_no AND u.added > 0;
  -- A lane with no open job gets its first new one as head.
  UPDATE lanes l SET head = v.first_seq
    FROM (SELECT lane_of[n] AS lane, min(fresh_seq[n]) AS first_seq
          FROM generate_series(1, total) n WHERE kinds[n] = 'new' GROUP BY 1) v
    WHERE l.lane = v.lane AND l.head IS NULL;
  RETURN QUERY SELECT n, kinds[n], CASE kinds[n] WHEN 'new' THEN fresh_seq[n] WHEN 'replayed' THEN old_seq[n] END
    FROM generate_series(1, total) n;
END
$fn$;
