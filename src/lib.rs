//! qcgate: a self-hosted, QingCloud-compatible API gateway.
//!
//! Request path: [`http`] (edge) → [`params`] (decode) → [`auth`] (signature,
//! time window) → [`actions`] (dispatch, handle; custom services in
//! [`services`]) → [`store`] (group commit) → envelope.
//! Beside it, [`worker`]: claim → execute → record.

pub mod actions;
pub mod admin;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod ids;
pub mod lab;
pub mod mariadb;
pub mod metrics;
pub mod output;
pub mod params;
pub mod redact;
pub mod sealing;
pub mod secret;
pub mod services;
pub mod state;
pub mod store;
pub mod worker;
pub mod written;

/// A boxed future, for traits whose handlers are async.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
