//! The servers behind a cluster: who is its primary node, how to sign in,
//! and the allow-list every connection goes through.

use std::sync::Arc;

use crate::mariadb::{DbError, Endpoint, Login, Node};
use crate::secret::Secret;
use crate::store::clusters::Cluster;
use crate::store::{Store, StoreError, servers};
use crate::worker::allow::AllowList;
use crate::worker::executor::Failure;

/// One maininstance node and its server.
#[derive(Clone, Debug)]
pub struct Member {
    pub node_id: String,
    pub endpoint: Endpoint,
    pub login: Login,
}

impl Member {
    pub fn name(&self) -> String {
        format!("{} ({})", self.node_id, self.endpoint)
    }
}

/// A server-backed cluster: its primary node and its HA standby nodes.
#[derive(Clone, Debug)]
pub struct Members {
    pub cluster: Cluster,
    pub primary: Member,
    pub others: Vec<Member>,
}

impl Members {
    pub fn id(&self) -> &str {
        &self.cluster.cluster_id
    }

    pub fn all(&self) -> impl Iterator<Item = &Member> {
        std::iter::once(&self.primary).chain(self.others.iter())
    }
}

/// Reads clusters and servers, and opens connections under the allow-list.
#[derive(Clone)]
pub struct Fleet {
    pub store: Store,
    pub allow: Arc<AllowList>,
}

pub fn internal(e: StoreError) -> Failure {
    tracing::error!(error = %e, "reading the cluster model");
    Failure::new(
        5000,
        "InternalError, the cluster model could not be read",
        true,
    )
}

/// A server's error as the job's: transient when it did not answer.
pub fn db(e: DbError) -> Failure {
    let retryable = matches!(e, DbError::Unreachable(..) | DbError::Timeout(..));
    Failure::new(5000, format!("ServerError, {e}"), retryable)
}

pub fn refused(why: impl std::fmt::Display) -> Failure {
    Failure::new(1400, format!("PermissionDenied, {why}"), false)
}

impl Fleet {
    pub fn cluster(&self, id: &str) -> Result<Option<Cluster>, Failure> {
        self.store.read(|c| c.cluster(id)).map_err(internal)
    }

    /// The members of a server-backed cluster; `None` for a model cluster.
    pub fn members(&self, id: &str) -> Result<Option<Members>, Failure> {
        let master = self.store.master.clone();
        let found = self.store.read(|c| {
            let Some(cluster) = c.cluster(id)? else {
                return Ok(None);
            };
            if !cluster.on_servers() {
                return Ok(None);
            }
            let nodes = c.nodes(id, &[], Some("maininstance"))?;
            let servers = c.servers_of(id)?;
            let mut members = Vec::new();
            for n in nodes {
                let Some(s) = servers
                    .iter()
                    .find(|s| Some(&s.endpoint) == n.server.as_ref())
                else {
                    continue;
                };
                let Some(endpoint) = Endpoint::parse(&s.endpoint) else {
                    continue;
                };
                let login = Login {
                    user: s.admin_user.clone(),
                    password: servers::open_password(&master, s)?,
                };
                members.push((
                    n.is_primary,
                    Member {
                        node_id: n.node_id,
                        endpoint,
                        login,
                    },
                ));
            }
            Ok(Some((cluster, members)))
        });
        let Some((cluster, members)) = found.map_err(internal)? else {
            return Ok(None);
        };
        let (primary, others): (Vec<_>, Vec<_>) = members.into_iter().partition(|(p, _)| *p);
        let Some((_, primary)) = primary.into_iter().next() else {
            return Err(Failure::new(
                5000,
                format!("InternalError, cluster [{id}] has no primary node bound to a server"),
                false,
            ));
        };
        Ok(Some(Members {
            cluster,
            primary,
            others: others.into_iter().map(|(_, m)| m).collect(),
        }))
    }

    /// [`Fleet::members`] of a cluster that must be server-backed.
    pub fn members_of(&self, id: &str) -> Result<Members, Failure> {
        self.members(id)?.ok_or_else(|| {
            refused(format!(
                "cluster [{id}] is not bound to servers; both sides of a DR operation on servers must be"
            ))
        })
    }

    /// The standby clusters directly following `id`.
    pub fn standbys_of(&self, id: &str) -> Result<Vec<String>, Failure> {
        self.store.read(|c| c.standbys_of(id)).map_err(internal)
    }

    pub fn check_allowed(&self, endpoint: &Endpoint) -> Result<(), Failure> {
        if self.allow.allows(&endpoint.host) {
            Ok(())
        } else {
            Err(refused(format!(
                "host [{}] is not in the executor's allow_hosts; nothing was run",
                endpoint.host
            )))
        }
    }

    pub async fn connect(&self, m: &Member) -> Result<Node, Failure> {
        self.check_allowed(&m.endpoint)?;
        Node::connect(&m.endpoint, &m.login).await.map_err(db)
    }

    /// The account qcgate links its servers with.
    pub async fn repl_login(&self) -> Result<Login, Failure> {
        let master = self.store.master.clone();
        let password: Secret = self
            .store
            .change(move |c| c.repl_password(&master))
            .await
            .map_err(internal)?;
        Ok(Login {
            user: servers::REPL_USER.to_string(),
            password,
        })
    }
}
