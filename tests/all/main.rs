//! End-to-end tests of the transform engine on real compiled components, one module per area.

mod aggregate;
mod aggregate_historical;
mod aggregate_online;
mod aggregate_transform;
mod determinism;
mod examples;
mod feast_sdk;
mod feature_repo;
mod historical;
mod historical_keys;
mod hostile;
mod languages;
mod loading;
mod main_job;
mod materialize;
mod offline;
mod offline_s3;
mod online;
mod online_cluster;
mod online_dynamodb;
mod push;
mod round_trip;
mod sandbox;
mod server;
mod stream;
mod version_ties;
