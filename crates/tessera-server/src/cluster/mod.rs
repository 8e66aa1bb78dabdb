//! What the nodes of a cluster share beyond the store: the Redis handle (`redis`).

pub mod redis;
