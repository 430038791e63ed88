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
-- are contiguous (same sub). Each submission is all or none: stored, its
-- replays, refused over quota ('over'), or 'raced' having written nothing
-- (its replay key was being stored by another gateway, or it repeats a key
-- of this batch): the gateway then stores it alone, and finds the winner.
-- An error fails the whole batch, and the gateway stores its submissions
-- one by one. The work is done a statement per step for the whole batch,
-- not per job, and without subtransactions (hundreds in one transaction
-- would overflow every snapshot's subtransaction cache).
-- Rows are locked in the store's order, all before any seq is drawn: the
-- owners' open counts (one shard per batch), then the lanes, each sorted.
-- Plans are generic (planning each statement every call cost a quarter of
-- the function's time) and every row is reached through a key's index:
-- with seq scans off, a plan made while the tables were empty stays right
-- once they hold millions of rows.
CREATE OR REPLACE FUNCTION qcgate_submit(
  sub int[], max_open bigint[], owners text[], zones text[], actions text[],
  lane_of text[], resources text[], directives text[], tasks text[],
  sealed text[], digests text[], valid_until bigint[],
  now_s bigint, now_ms bigint, shard_no smallint)
RETURNS TABLE (out_item int, out_kind text, out_seq bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $fn$
DECLARE
  total int := coalesce(array_length(sub, 1), 0);
  a int := 1;
  b int;
  i int;
  fresh int;
  taken bool;
  o int;
  kinds text[];
  seqs bigint[];
  first_of int[];
  stored bigint[];
  owner_names text[];
  owner_open_now bigint[];
  owner_added bigint[];
BEGIN
  -- What each item's replay key already names, and the first item of the
  -- batch with the same key; before any lock (a key stored meanwhile is
  -- caught when this batch stores its own).
  SELECT array_agg(r.job_seq ORDER BY d.n), array_agg(d.lead_n ORDER BY d.n)
    INTO seqs, first_of
    FROM (SELECT n, x, min(n) OVER (PARTITION BY x) AS lead_n
          FROM unnest(digests) WITH ORDINALITY AS u(x, n)) d
    -- One probe of the key's index per item: OFFSET 0 keeps the subquery
    -- from being pulled up into a join that could scan every live key.
    LEFT JOIN LATERAL (SELECT rr.job_seq FROM replays rr
                       WHERE rr.digest = d.x AND rr.expires >= now_s OFFSET 0) r ON true;
  -- The locks, then the open jobs per owner as the batch finds them.
  SELECT array_agg(x ORDER BY x) INTO owner_names FROM (SELECT DISTINCT x FROM unnest(owners) x) d;
  INSERT INTO owner_open (owner, shard, open)
    SELECT x, shard_no, 0 FROM unnest(owner_names) x ON CONFLICT (owner, shard) DO NOTHING;
  PERFORM 1 FROM owner_open WHERE owner = ANY(owner_names) AND shard = shard_no
    ORDER BY owner FOR UPDATE;
  INSERT INTO lanes (lane) SELECT DISTINCT x FROM unnest(lane_of) x ON CONFLICT (lane) DO NOTHING;
  PERFORM 1 FROM lanes WHERE lane = ANY(lane_of) ORDER BY lane FOR UPDATE;
  SELECT array_agg(coalesce((SELECT sum(oo.open) FROM owner_open oo WHERE oo.owner = x), 0)::bigint ORDER BY n)
    INTO owner_open_now FROM unnest(owner_names) WITH ORDINALITY AS u(x, n);
  owner_added := array_fill(0::bigint, ARRAY[coalesce(array_length(owner_names, 1), 0)]);
  kinds := array_fill(NULL::text, ARRAY[total]);
  -- Which submissions are stored: the quota, by owner, in submission order.
  WHILE a <= total LOOP
    b := a;
    WHILE b < total AND sub[b + 1] = sub[a] LOOP
      b := b + 1;
    END LOOP;
    fresh := 0;
    taken := true;
    FOR i IN a..b LOOP
      IF seqs[i] IS NULL THEN
        fresh := fresh + 1;
        taken := taken AND first_of[i] = i;
      END IF;
    END LOOP;
    o := array_position(owner_names, owners[a]);
    FOR i IN a..b LOOP
      kinds[i] := CASE
        WHEN fresh = 0 THEN 'replayed'
        WHEN NOT taken THEN 'raced'
        WHEN fresh > max_open[a] OR owner_open_now[o] + owner_added[o] + fresh > max_open[a] THEN 'over'
        WHEN seqs[i] IS NULL THEN 'new'
        ELSE 'replayed' END;
    END LOOP;
    IF kinds[a] = 'new' OR kinds[a] = 'replayed' THEN
      owner_added[o] := owner_added[o] + fresh;
    END IF;
    a := b + 1;
  END LOOP;
  -- Seqs for the new jobs, in item order, and their replay keys: a key
  -- another gateway stored meanwhile is not taken (its submission raced).
  SELECT array_agg(CASE WHEN k = 'new' THEN nextval('job_seq') ELSE seqs[n] END ORDER BY n)
    INTO seqs FROM unnest(kinds) WITH ORDINALITY AS u(k, n);
  WITH kept AS (
    INSERT INTO replays AS r (digest, job_seq, expires)
      SELECT digests[n], seqs[n], valid_until[n] FROM generate_series(1, total) n WHERE kinds[n] = 'new'
      ON CONFLICT (digest) DO UPDATE SET job_seq = excluded.job_seq, expires = excluded.expires
      WHERE r.expires < now_s
      RETURNING r.job_seq)
  SELECT coalesce(array_agg(job_seq), '{}') INTO stored FROM kept;
  IF cardinality(stored) < (SELECT count(*) FROM unnest(kinds) k WHERE k = 'new') THEN
    a := 1;
    WHILE a <= total LOOP
      b := a;
      WHILE b < total AND sub[b + 1] = sub[a] LOOP
        b := b + 1;
      END LOOP;
      IF kinds[a] IN ('new', 'replayed') AND EXISTS (
          SELECT 1 FROM generate_series(a, b) n WHERE kinds[n] = 'new' AND NOT seqs[n] = ANY(stored)) THEN
        DELETE FROM replays r USING generate_series(a, b) n
          WHERE kinds[n] = 'new' AND r.digest = digests[n] AND r.job_seq = seqs[n];
        o := array_position(owner_names, owners[a]);
        owner_added[o] := owner_added[o] - (SELECT count(*) FROM generate_series(a, b) n WHERE kinds[n] = 'new');
        FOR i IN a..b LOOP
          kinds[i] := 'raced';
        END LOOP;
      END IF;
      a := b + 1;
    END LOOP;
  END IF;
  INSERT INTO jobs (seq, owner, zone, action, status, lane, resource_ids, directive, task,
                    create_time, status_time, enqueued_ms, secrets, open_shard)
    SELECT seqs[n], owners[n], zones[n], actions[n], 'pending', lane_of[n], resources[n],
           directives[n], tasks[n], now_s, now_s, now_ms, sealed[n], shard_no
    FROM generate_series(1, total) n WHERE kinds[n] = 'new';
  UPDATE owner_open oo SET open = oo.open + u.added
    FROM unnest(owner_names, owner_added) AS u(name, added)
    WHERE oo.owner = u.name AND oo.shard = shard_no AND u.added > 0;
  -- A lane with no open job gets its first new one as head.
  UPDATE lanes l SET head = v.first_seq
    FROM (SELECT lane_of[n] AS lane, min(seqs[n]) AS first_seq
          FROM generate_series(1, total) n WHERE kinds[n] = 'new' GROUP BY 1) v
    WHERE l.lane = v.lane AND l.head IS NULL;
  RETURN QUERY SELECT n, kinds[n], CASE WHEN kinds[n] IN ('new', 'replayed') THEN seqs[n] END
    FROM generate_series(1, total) n;
END
$fn$;
