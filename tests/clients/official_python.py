"""Drives qcgate with the official, unmodified QingCloud Python SDK and CLI.

Usage: official_python.py HOST PORT ACCESS_KEY_ID SECRET CLUSTER ZONE WORKDIR
Exits non-zero with a message on the first broken expectation.
"""
import json
import subprocess
import sys
import time

from qingcloud.iaas.connection import APIConnection
from qingcloud.misc.utils import wait_job

host, port, ak, sk, cluster, zone, workdir = sys.argv[1:8]
# retry_time=1: a retry would hide a non-200 answer.
conn = APIConnection(ak, sk, zone, host=host, port=int(port), protocol="http", retry_time=1)


def check(cond, what, reply):
    if not cond:
        sys.exit("FAIL: %s: %r" % (what, reply))


service_params = {
    "sync_way": "full", "zone": zone, "host": "192.168.0.232", "cluster_id": "cl-9np7ig3g",
    "user": "migrate_user", "password": "Passwd@123", "port": 3306,
}
r = conn.send_request("RunClusterCustomService", {
    "cluster": cluster, "role": "maininstance", "service": "start_standby",
    "service_params": json.dumps(service_params),
})
check(r and r.get("ret_code") == 0, "RunClusterCustomService over GET", r)
job_id = r["job_id"]

check(wait_job(conn, job_id, timeout=30), "wait_job finishes", job_id)
r = conn.describe_jobs(jobs=[job_id])
check(r["ret_code"] == 0 and r["job_set"][0]["status"] == "successful", "job successful", r)

# The SDK sends a single status as a bare `status=` (no `.1`).
r = conn.describe_jobs(status="successful", limit=5)
check(r["ret_code"] == 0 and r["total_count"] >= 1, "describe_jobs(status=...)", r)

# POST: an unsorted form body with `+` for spaces.
r = conn.send_request("DescribeJobs", {"jobs.1": job_id, "job_action": "RunClusterCustomService"}, verb="POST")
check(r and r.get("ret_code") == 0 and r["total_count"] == 1, "DescribeJobs over POST", r)

# A service refusal comes back as an envelope the SDK returns as-is.
r = conn.send_request("RunClusterCustomService", {
    "cluster": cluster, "role": "maininstance", "service": "start_standby",
    "service_params": json.dumps(service_params),
})
check(r and r.get("ret_code") == 1400, "already a standby", r)

# The DR control plane: create a cluster, wait for its job, see its nodes, delete it.
conf = {"name": "sdk", "ha": {"enable": True, "replication_mode": "semisync"}, "readinstance_count": 1}
r = conn.send_request("CreateCluster", {"conf": json.dumps(conf)})
check(r and r.get("ret_code") == 0 and len(r["node_ids"]) == 3, "CreateCluster", r)
new_cluster = r["cluster_id"]
check(wait_job(conn, r["job_id"], timeout=30), "CreateCluster job finishes", r)
r = conn.send_request("DescribeClusterNodes", {"cluster": new_cluster, "role": "readinstance"})
check(r and r.get("total_count") == 1 and r["node_set"][0]["status"] == "active", "DescribeClusterNodes", r)
r = conn.send_request("DeleteClusters", {"clusters": [new_cluster], "direct_cease": 1})
check(r and r.get("ret_code") == 0 and new_cluster in r["job_ids"], "DeleteClusters with clusters.n", r)

# The CLI: YAML config with host/port/protocol, `expires` = now + 20 min.
conf = "%s/qcgate.yaml" % workdir
with open(conf, "w") as f:
    f.write("qy_access_key_id: '%s'\nqy_secret_access_key: '%s'\nzone: '%s'\nhost: '%s'\nport: %s\nprotocol: 'http'\n"
            % (ak, sk, zone, host, port))
out = subprocess.run(["qingcloud", "iaas", "describe-jobs", "-f", conf, "-j", job_id],
                     capture_output=True, text=True, timeout=60)
try:
    reply = json.loads(out.stdout)
except ValueError:
    sys.exit("FAIL: CLI output is not JSON: %r %r" % (out.stdout, out.stderr))
check(reply.get("ret_code") == 0 and reply["job_set"][0]["job_id"] == job_id, "qingcloud iaas describe-jobs", reply)
print("OK")
