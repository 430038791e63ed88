//! The bodies of the fuzz targets in `fuzz/`, kept here so the same code runs
//! under libFuzzer (in CI) and over the checked-in corpus in `cargo test`.
//! Nothing here may panic, whatever the bytes.

use std::sync::{LazyLock, Mutex};

use crate::auth::{self, KeyRecord, SignedRequest, TimeWindow, signature};
use crate::params::Params;
use crate::secret::Secret;
use crate::services::{self, PrepareCx, schema};
use crate::store::clusters::Cluster;

/// Raw query/form bytes → parameters → canonical string → signature check.
pub fn request(data: &[u8]) {
    let (query, body) = data.split_at(data.len() / 2);
    canonical_ways_agree(query);
    canonical_ways_agree(data);
    let Ok(mut params) = Params::parse(&[query, body]) else {
        return;
    };
    let signature = params.take("signature").unwrap_or_default();
    let _ = params.list("jobs");
    let _ = params.int("limit", 20, 0, 100);
    let req = SignedRequest {
        verb: "GET",
        path: "/iaas/",
        params: &params,
        signature: &signature,
        raw_query: std::str::from_utf8(query).ok().filter(|_| body.is_empty()),
    };
    let _ = auth::authenticate(&req, &TimeWindow::default(), 1_700_000_000, |_| {
        Ok(Some(std::sync::Arc::new(KeyRecord::new(
            &Secret::new("SECRETACCESSKEY"),
            "usr-FUZZ0001".into(),
        ))))
    });
}

/// A query string taken as canonical as it stands must be exactly what
/// canonicalising its decoded parameters gives.
fn canonical_ways_agree(query: &[u8]) {
    let Some(raw) = std::str::from_utf8(query).ok() else {
        return;
    };
    let (Some(pieces), Ok(params)) = (signature::canonical_in_raw(raw), Params::parse(&[query]))
    else {
        return;
    };
    assert_eq!(
        pieces.concat(),
        signature::canonical_query(params.iter()),
        "{raw}"
    );
}

/// An in-memory model holding the fuzzed cluster, with a node of every role.
static CONN: LazyLock<Option<Mutex<rusqlite::Connection>>> = LazyLock::new(|| {
    let conn = crate::store::open_rw(std::path::Path::new(":memory:")).ok()?;
    let layout = crate::store::clusters::Layout {
        main: 2,
        read: 1,
        analysis: 1,
        proxy: 1,
    };
    crate::store::clusters::add(&conn, "cl-fuzz0001", "sh1a", "usr-FUZZ0001", "", &layout).ok()?;
    Some(Mutex::new(conn))
});

fn cluster(standby: bool) -> Cluster {
    Cluster {
        cluster_id: "cl-fuzz0001".into(),
        owner: "usr-FUZZ0001".into(),
        zone: "sh1a".into(),
        name: String::new(),
        status: "active".into(),
        dr_role: if standby { "standby" } else { "primary" }.into(),
        standby_of: standby.then(|| "cl-source01".into()),
        sync_way: None,
        sync_status: None,
        create_time: 0,
        status_time: 0,
        settings: serde_json::Value::Null,
        backend: "model".into(),
    }
}

/// First byte: which service (low bits) and whether the cluster is a standby
/// (high bit); the rest: `service_params` text.
pub fn service_params(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let names = services::names();
    let Some(service) = services::find(names[selector as usize % names.len()]) else {
        return;
    };
    let Ok(map) = schema::parse(Some(text)) else {
        return;
    };
    let Some(Ok(conn)) = CONN.as_ref().map(|m| m.lock()) else {
        return;
    };
    let cluster = cluster(selector & 0x80 != 0);
    let cx = PrepareCx {
        cluster: &cluster,
        owner: "usr-FUZZ0001",
        role: service.roles()[0],
        model: &*conn,
    };
    if let Ok(prepared) = services::prepare(service, &cx, schema::Fields::new(map, false))
        && let Some(kept) = prepared.params.as_object()
    {
        // What is kept in the clear never has a secret-named field.
        assert!(
            kept.keys().all(|k| !crate::redact::is_secret_name(k)),
            "{kept:?}"
        );
    }
}
