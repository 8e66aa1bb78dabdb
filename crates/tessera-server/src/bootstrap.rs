//! First start: with an empty store, run `usecase::platform::bootstrap` (the platform tenant and
//! a platform-admin API key) and write the key (alone, on one line) to
//! `<data-dir>/bootstrap-admin.key`, mode 0600. The secret never reaches a log; a key that did
//! not commit leaves no file. Later starts change nothing.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::services::Services;
use crate::usecase::platform::{bootstrap, BootstrapError, Bootstrapped};

/// The file the first platform-admin key is written to.
pub const KEY_FILE: &str = "bootstrap-admin.key";

/// Writes `contents` to `path` atomically with mode 0600.
fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Bootstraps an empty store; returns the key file's path if this call did it.
pub async fn ensure(state: &Services, data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let path = data_dir.join(KEY_FILE);
    let done = bootstrap(
        state.store.as_ref(),
        state.clock.as_ref(),
        &state.pepper.current(),
        KEY_FILE,
        |secret| write_secret_file(&path, &format!("{}\n", secret.expose())),
    )
    .await;
    match done {
        Ok(Bootstrapped::Created) => Ok(Some(path)),
        Ok(Bootstrapped::Already) => Ok(None),
        // Our key is not valid: another node's is.
        Ok(Bootstrapped::Lost) => {
            let _ = std::fs::remove_file(&path);
            Ok(None)
        }
        Err(e @ BootstrapError::Commit(_)) => {
            let _ = std::fs::remove_file(&path);
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}
