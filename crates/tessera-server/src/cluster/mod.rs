//! What the nodes of a cluster share beyond the store: the Redis handle (`redis`), the
//! change-log tail woken by the store's notifications (`follow`), the leases that run each
//! cluster job on one node (`leases`), the node's background tasks (`jobs`) and the router of
//! reads to a PostgreSQL read replica (`replica`).

pub mod follow;
pub mod jobs;
pub mod leases;
pub mod redis;
pub mod replica;
