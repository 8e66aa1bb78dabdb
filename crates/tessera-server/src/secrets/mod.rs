//! The installation's secrets, stored wrapped under the master key instead of derived from it:
//! the master keys this node holds (`master`), the installation-wide secrets (`root`: the
//! versioned peppers, the signing-key and cookie keys), the per-agency data keys (`data_keys`),
//! and the master-key and pepper rotations (`rotate`).
//! INVARIANT: the master key only wraps; rotating it rewraps rows and changes no hash, token or
//! sealed value. Unwrapped material lives in memory only, in types that zeroize on drop and
//! print `[redacted]`.

pub mod data_keys;
pub mod error;
pub mod master;
pub mod material;
pub mod peppers;
pub mod person_keys;
pub mod personal;
pub mod root;
pub mod rotate;

pub use data_keys::{DataKeyError, DataKeys};
pub use error::SecretsError;
pub use master::MasterRing;
pub use material::Material;
pub use peppers::Peppers;
pub use root::RootSecrets;
