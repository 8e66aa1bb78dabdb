//! What the nodes of a cluster share beyond the store: the Redis handle (`redis`), and the
//! router of reads to a PostgreSQL read replica (`replica`).

pub mod redis;
pub mod replica;
