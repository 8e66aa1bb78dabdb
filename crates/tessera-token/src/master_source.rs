//! Where the master key comes from: a file (the default, `data_dir/master.key`), an environment
//! variable, or an external command that prints it (the seam for Vault or a cloud KMS).
//! Every source yields one or more keys, one per line (the environment variable also takes
//! commas or spaces): the FIRST is current (it wraps new secrets), the others are previous keys
//! kept during a rotation so that values still wrapped under them open.
//! INVARIANT: no error message contains key material (a malformed source is named, never
//! quoted); a file readable by group or others is refused; keys are zeroized on drop.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

pub use crate::master_key::MAX_MASTER_KEYS;
use crate::master_key::{parse_keys, MasterKey, MasterKeyError};

/// A command that has not printed its keys after this long has failed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A master-key source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterKeySource {
    /// A private file (mode 0600), created with a fresh key when missing.
    File(PathBuf),
    /// The environment variable of this name.
    Env(String),
    /// A shell command (`sh -c`) whose standard output is the key lines.
    Command(String),
}

/// Why the master key could not be loaded. Each variant has a stable code ([`Self::code`]).
#[derive(Debug, thiserror::Error)]
pub enum MasterSourceError {
    /// The key file could not be read, is malformed or is open to others.
    #[error(transparent)]
    File(#[from] MasterKeyError),
    /// The environment variable is not set (or not Unicode).
    #[error("master key variable `{0}` is not set")]
    MissingVariable(String),
    /// The command could not be started.
    #[error("master key command could not be started: {0}")]
    CommandSpawn(std::io::Error),
    /// The command ended with a failure status, or ran too long.
    #[error("master key command failed: {0}")]
    CommandFailed(String),
    /// The source's text is not lines of 64 lowercase hex characters (at most eight, no
    /// repeats).
    #[error("master key from {0} is malformed: expected lines of 64 lowercase hex characters (at most 8, no repeats)")]
    Malformed(String),
}

impl MasterSourceError {
    /// The stable code of this error, for scripts and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::File(MasterKeyError::InsecurePermissions { .. }) => "master_key_insecure_file",
            Self::File(MasterKeyError::Malformed { .. }) => "master_key_malformed",
            Self::File(MasterKeyError::Io { .. }) => "master_key_unreadable",
            Self::MissingVariable(_) => "master_key_variable_missing",
            Self::CommandSpawn(_) | Self::CommandFailed(_) => "master_key_command_failed",
            Self::Malformed(_) => "master_key_malformed",
        }
    }
}

/// The keys a source holds: the current one first, then previous ones.
#[derive(Debug, Clone)]
pub struct MasterKeys {
    keys: Vec<MasterKey>,
}

impl MasterKeys {
    /// One key (tests, or an installation that never rotated).
    pub fn single(key: MasterKey) -> Self {
        Self { keys: vec![key] }
    }

    /// The current key first, then previous ones; `None` when empty.
    pub fn from_keys(keys: Vec<MasterKey>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// The key that wraps new secrets.
    pub fn current(&self) -> &MasterKey {
        // INVARIANT: never empty (checked by every constructor).
        &self.keys[0]
    }

    /// The key with this id, if the source holds it.
    pub fn by_id(&self, key_id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.key_id() == key_id)
    }

    /// Every key, current first.
    pub fn all(&self) -> &[MasterKey] {
        &self.keys
    }
}

impl MasterKeySource {
    /// Loads the keys. A missing key FILE is created with a fresh key (`true` says so); the
    /// other sources never create anything.
    pub fn load(&self) -> Result<(MasterKeys, bool), MasterSourceError> {
        match self {
            Self::File(path) => {
                let (keys, created) = MasterKey::load_all_or_create(path)?;
                Ok((MasterKeys { keys }, created))
            }
            Self::Env(name) => {
                let value = Zeroizing::new(
                    std::env::var(name)
                        .map_err(|_| MasterSourceError::MissingVariable(name.clone()))?,
                );
                let keys = parse_keys(value.as_bytes(), true)
                    .ok_or_else(|| MasterSourceError::Malformed(format!("variable `{name}`")))?;
                Ok((MasterKeys { keys }, false))
            }
            Self::Command(cmd) => {
                let out = run_command(cmd)?;
                let keys = parse_keys(&out, false)
                    .ok_or_else(|| MasterSourceError::Malformed("the command".to_owned()))?;
                Ok((MasterKeys { keys }, false))
            }
        }
    }

    /// A short description for logs (the path, variable name or the word `command`: a command
    /// line may carry a token, so it is not printed).
    pub fn describe(&self) -> String {
        match self {
            Self::File(p) => format!("file {}", p.display()),
            Self::Env(v) => format!("variable {v}"),
            Self::Command(_) => "command".to_owned(),
        }
    }
}

/// Runs `cmd` with `sh -c`, standard output captured (at most 64 KiB), within
/// [`COMMAND_TIMEOUT`].
fn run_command(cmd: &str) -> Result<Zeroizing<Vec<u8>>, MasterSourceError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(MasterSourceError::CommandSpawn)?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    // Key lines fit the pipe's buffer, so the command never blocks writing them.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MasterSourceError::CommandFailed(format!(
                    "no answer within {}s",
                    COMMAND_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(MasterSourceError::CommandSpawn(e)),
        }
    };
    if !status.success() {
        return Err(MasterSourceError::CommandFailed(format!(
            "it exited with {status}"
        )));
    }
    let mut out = Zeroizing::new(Vec::new());
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(64 * 1024)
            .read_to_end(&mut out)
            .map_err(MasterSourceError::CommandSpawn)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn parses_current_then_previous() {
        let keys = parse_keys(format!("{A}\n{B}\n").as_bytes(), false).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], MasterKey::from_hex(A.as_bytes()).unwrap());
        let loose = parse_keys(format!("{B}, {A}").as_bytes(), true).unwrap();
        assert_eq!(loose[0], MasterKey::from_hex(B.as_bytes()).unwrap());
        for bad in [
            String::new(),
            format!("{A}\n{A}"),
            format!("{A}\n\n{B}"),
            format!("{A} {B}"),
            A.to_uppercase(),
            format!("{A}\n").repeat(9),
        ] {
            assert!(parse_keys(bad.as_bytes(), false).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn env_source() {
        let name = format!("TESSERA_TEST_MK_{}", std::process::id());
        let err = MasterKeySource::Env(name.clone()).load().unwrap_err();
        assert_eq!(err.code(), "master_key_variable_missing");
        std::env::set_var(&name, "not hex");
        let err = MasterKeySource::Env(name.clone()).load().unwrap_err();
        assert_eq!(err.code(), "master_key_malformed");
        assert!(!err.to_string().contains("not hex"), "{err}");
        std::env::set_var(&name, format!("{A},{B}"));
        let (keys, created) = MasterKeySource::Env(name.clone()).load().unwrap();
        assert!(!created);
        assert_eq!(keys.all().len(), 2);
        let id = keys.all()[1].key_id();
        assert_eq!(keys.by_id(&id), Some(&keys.all()[1]));
        std::env::remove_var(&name);
    }

    #[test]
    fn command_source() {
        let (keys, _) = MasterKeySource::Command(format!("printf '{A}\\n'"))
            .load()
            .unwrap();
        assert_eq!(keys.current(), &MasterKey::from_hex(A.as_bytes()).unwrap());
        let err = MasterKeySource::Command("exit 3".into())
            .load()
            .unwrap_err();
        assert_eq!(err.code(), "master_key_command_failed");
        assert!(err.to_string().contains("exit"), "{err}");
        let err = MasterKeySource::Command(format!("echo {}", &A[..40]))
            .load()
            .unwrap_err();
        assert_eq!(err.code(), "master_key_malformed");
        assert!(!err.to_string().contains(&A[..40]), "{err}");
        // The command line is never described (it may carry a token).
        assert_eq!(
            MasterKeySource::Command("vault --token s3cr3t".into()).describe(),
            "command"
        );
    }
}
