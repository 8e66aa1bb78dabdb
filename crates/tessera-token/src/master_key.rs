//! The master key: 32 random bytes in a private file (or from another source, see
//! `master_source`). It wraps the stored secrets (peppers, key-encryption keys, per-agency data
//! keys; `wrap`/`unwrap`, bound to its non-secret `key_id`); the HKDF derivations remain for the
//! values an installation had before those secrets were stored (their first version).
//! INVARIANT: the file holds one to eight distinct lines of 64 lowercase hex characters (the
//! current key first) and is never readable by group or others; it is created atomically (a complete file appears under its name, or none)
//! with mode 0600. The key is redacted when printed and zeroized on drop.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::hex;
use crate::pepper::Pepper;
use crate::secret::{SecretBytes, REDACTED};

/// Why the master key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// Reading, writing or syncing the file failed.
    #[error("cannot {action} master key file {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not one line of 64 lowercase hex characters.
    #[error(
        "master key file {} is malformed: expected one line of 64 lowercase hex characters",
        .path.display()
    )]
    Malformed { path: PathBuf },
    /// The file can be read or written by group or others.
    #[error(
        "master key file {} is accessible by group or others (mode {mode:o}); run `chmod 600 {}`",
        .path.display(),
        .path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
}

/// The root secret of a Tessera installation.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(SecretBytes<32>);

impl MasterKey {
    /// A master key from raw bytes (tests, or keys supplied by a secret manager).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBytes::new(bytes))
    }

    /// A fresh master key from `rng`.
    pub fn generate(rng: &mut (impl RngCore + rand::CryptoRng)) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let key = Self::from_bytes(bytes);
        bytes.zeroize();
        key
    }

    /// Loads the key from `path`, or creates the file with a fresh key if it does not exist.
    /// Returns the CURRENT key (the file's first line) and whether it was just created.
    pub fn load_or_create(path: &Path) -> Result<(MasterKey, bool), MasterKeyError> {
        let (mut keys, created) = Self::load_all_or_create(path)?;
        // `read_from` never returns an empty list.
        let first = keys.swap_remove(0);
        Ok((first, created))
    }

    /// Loads every key of the file at `path` (the current one first, then previous ones kept
    /// during a rotation), or creates the file with one fresh key if it does not exist.
    pub fn load_all_or_create(path: &Path) -> Result<(Vec<MasterKey>, bool), MasterKeyError> {
        match File::open(path) {
            Ok(file) => Ok((Self::read_from(file, path)?, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(io_error("open", path, e)),
        }
    }

    /// Reads and validates an open key file: one to eight distinct lines of 64 lowercase hex
    /// characters.
    fn read_from(file: File, path: &Path) -> Result<Vec<MasterKey>, MasterKeyError> {
        let meta = file.metadata().map_err(|e| io_error("inspect", path, e))?;
        if !meta.is_file() {
            return Err(MasterKeyError::Malformed {
                path: path.to_owned(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(MasterKeyError::InsecurePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        // Read at most one byte more than the longest valid file (8 × (64 hex + '\n')).
        let limit = 65 * MAX_MASTER_KEYS + 1;
        let mut text = Zeroizing::new(Vec::with_capacity(limit));
        file.take(limit as u64)
            .read_to_end(&mut text)
            .map_err(|e| io_error("read", path, e))?;
        parse_keys(&text, false).ok_or_else(|| MasterKeyError::Malformed {
            path: path.to_owned(),
        })
    }

    /// Writes a fresh key to a private temporary file beside `path`, syncs it, then links it
    /// into place, which fails rather than overwrite a key another process just created.
    fn create(path: &Path) -> Result<(Vec<MasterKey>, bool), MasterKeyError> {
        let key = Self::generate(&mut OsRng);
        let mut contents = Zeroizing::new(hex::encode(key.0.expose()));
        contents.push('\n');

        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let file_name = path
            .file_name()
            .ok_or_else(|| {
                let e = io::Error::new(io::ErrorKind::InvalidInput, "the path names no file");
                io_error("create", path, e)
            })?
            .to_string_lossy();
        let tmp = dir.join(format!(
            ".{file_name}.tmp-{}-{:08x}",
            std::process::id(),
            OsRng.next_u32()
        ));

        let published = write_private(&tmp, contents.as_bytes())
            .map_err(|e| io_error("write", path, e))
            .and_then(|()| match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(io_error("create", path, e)),
            });
        // The temporary name was only a staging area; failing to remove it is harmless.
        let _ = fs::remove_file(&tmp);
        if published? {
            sync_dir(&dir).map_err(|e| io_error("sync the directory of", path, e))?;
            Ok((vec![key], true))
        } else {
            // Another process created the key first: use theirs.
            let file = File::open(path).map_err(|e| io_error("open", path, e))?;
            Ok((Self::read_from(file, path)?, false))
        }
    }

    /// Parses one line of 64 lowercase hex characters (a key supplied by a provider).
    pub fn from_hex(text: &[u8]) -> Option<MasterKey> {
        let mut bytes = hex::decode::<32>(text)?;
        let key = Self::from_bytes(bytes);
        bytes.zeroize();
        Some(key)
    }

    /// The key's id: a non-secret fingerprint, `mk_` and 16 hex characters of HKDF-SHA-256
    /// with info `tessera/key-id` (one-way: it reveals nothing of the key).
    pub fn key_id(&self) -> String {
        let okm = Zeroizing::new(self.expand(b"tessera/key-id"));
        format!("mk_{}", hex::encode(&okm[..8]))
    }

    /// Seals `plaintext` (a stored secret: a pepper, a data key, a key-encryption key) under
    /// this master key. The associated data binds the value to `purpose` and to this key's id,
    /// so a wrapped value cannot be moved to another purpose unnoticed.
    pub fn wrap(
        &self,
        purpose: &str,
        plaintext: &[u8],
        rng: &mut (impl RngCore + rand::CryptoRng),
    ) -> Vec<u8> {
        let key = self.derive_key(WRAP_PURPOSE);
        crate::envelope::seal(&key, plaintext, &self.wrap_aad(purpose), rng)
    }

    /// Opens a value [`MasterKey::wrap`] sealed for `purpose`.
    pub fn unwrap(
        &self,
        purpose: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, crate::envelope::EnvelopeError> {
        let key = self.derive_key(WRAP_PURPOSE);
        crate::envelope::open(&key, sealed, &self.wrap_aad(purpose))
    }

    fn wrap_aad(&self, purpose: &str) -> Vec<u8> {
        format!("tessera/wrap/v1|{}|{purpose}", self.key_id()).into_bytes()
    }

    /// The pepper of the given version: HKDF-SHA-256 with info `tessera/pepper/v{version}`.
    pub fn derive_pepper(&self, version: u32) -> Pepper {
        let mut okm = self.expand(format!("tessera/pepper/v{version}").as_bytes());
        let pepper = Pepper::new(version, okm);
        okm.zeroize();
        pepper
    }

    /// The key bytes of [`MasterKey::derive_pepper`] (stored, wrapped, as the first pepper of
    /// an installation that predates stored peppers).
    pub fn derive_pepper_key(&self, version: u32) -> SecretBytes<32> {
        let mut okm = self.expand(format!("tessera/pepper/v{version}").as_bytes());
        let key = SecretBytes::new(okm);
        okm.zeroize();
        key
    }

    /// A 32-byte key for `purpose`: HKDF-SHA-256 with info `tessera/{purpose}`. Purposes must
    /// not start with `pepper/`, which [`MasterKey::derive_pepper`] owns.
    pub fn derive_key(&self, purpose: &str) -> SecretBytes<32> {
        let mut okm = self.expand(format!("tessera/{purpose}").as_bytes());
        let key = SecretBytes::new(okm);
        okm.zeroize();
        key
    }

    fn expand(&self, info: &[u8]) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(None, self.0.expose());
        let mut okm = [0u8; 32];
        // HKDF-SHA-256 can expand up to 255 × 32 bytes, so 32 bytes never fails.
        if hk.expand(info, &mut okm).is_err() {
            unreachable!("32 bytes is a valid hkdf-sha256 output length");
        }
        okm
    }
}

/// At most this many keys in one source (a current key and previous ones).
pub const MAX_MASTER_KEYS: usize = 8;

/// Keys separated by newlines (and, for `loose`, commas or spaces too); one trailing newline
/// is allowed, blank lines and repeats are not.
pub(crate) fn parse_keys(text: &[u8], loose: bool) -> Option<Vec<MasterKey>> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let parts: Vec<&[u8]> = if loose {
        text.split(|c| matches!(c, b'\n' | b',' | b' ' | b'\t'))
            .filter(|p| !p.is_empty())
            .collect()
    } else {
        text.split(|c| *c == b'\n').collect()
    };
    if parts.is_empty() || parts.len() > MAX_MASTER_KEYS {
        return None;
    }
    let mut keys: Vec<MasterKey> = Vec::with_capacity(parts.len());
    for part in parts {
        let key = MasterKey::from_hex(part)?;
        if keys.contains(&key) {
            return None;
        }
        keys.push(key);
    }
    Some(keys)
}

/// The HKDF purpose of the key that wraps stored secrets (see [`MasterKey::wrap`]).
const WRAP_PURPOSE: &str = "wrap/v1";

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({REDACTED})")
    }
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> MasterKeyError {
    MasterKeyError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Creates `path` (which must not exist) readable and writable by the owner only, writes
/// `contents` and syncs it to disk.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A fresh, empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "tessera-token-{name}-{}-{}-{:08x}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                OsRng.next_u32()
            ));
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[cfg(unix)]
    fn write_with_mode(path: &Path, contents: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::write(path, contents).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn creates_then_rereads_the_same_key() {
        let dir = TempDir::new("create");
        let path = dir.path("master.key");
        let (created, was_created) = MasterKey::load_or_create(&path).unwrap();
        assert!(was_created);
        let (loaded, was_created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!was_created);
        assert_eq!(created, loaded);
        assert_eq!(
            created.derive_pepper(1).hash(b"x"),
            loaded.derive_pepper(1).hash(b"x")
        );

        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        assert_eq!(text.trim_end(), hex::encode(created.0.expose()));
        // Only the key file is left behind, no staging file.
        assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn two_creations_give_different_keys() {
        let dir = TempDir::new("distinct");
        let (a, _) = MasterKey::load_or_create(&dir.path("a.key")).unwrap();
        let (b, _) = MasterKey::load_or_create(&dir.path("b.key")).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn missing_directory_is_an_io_error() {
        let dir = TempDir::new("missing");
        let err = MasterKey::load_or_create(&dir.path("no/such/dir/master.key")).unwrap_err();
        assert!(matches!(err, MasterKeyError::Io { .. }), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn accepts_a_line_without_trailing_newline() {
        let dir = TempDir::new("nonewline");
        let path = dir.path("master.key");
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        write_with_mode(&path, hex.as_bytes(), 0o600);
        let (key, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        let expected = hex::decode::<32>(hex.as_bytes()).unwrap();
        assert_eq!(key, MasterKey::from_bytes(expected));
        write_with_mode(&path, format!("{hex}\n").as_bytes(), 0o400);
        assert_eq!(MasterKey::load_or_create(&path).unwrap().0, key);
    }

    #[cfg(unix)]
    #[test]
    fn malformed_files_are_rejected() {
        let dir = TempDir::new("malformed");
        let path = dir.path("master.key");
        let good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        for bad in [
            String::new(),
            "\n".to_owned(),
            "zz".repeat(32),
            good.to_uppercase(),
            good[..62].to_owned(),
            format!("{good}00"),
            format!("{good}\n\n"),
            format!("{good}\r\n"),
            format!(" {good}"),
            format!("{good}\n{good}\n"),
        ] {
            write_with_mode(&path, bad.as_bytes(), 0o600);
            let err = MasterKey::load_or_create(&path).unwrap_err();
            assert!(
                matches!(err, MasterKeyError::Malformed { .. }),
                "{bad:?}: {err}"
            );
            assert!(!err.to_string().contains(good), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn group_or_other_access_is_rejected() {
        let dir = TempDir::new("mode");
        let path = dir.path("master.key");
        let good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
        for mode in [0o644, 0o640, 0o604, 0o660, 0o700 | 0o001] {
            write_with_mode(&path, good.as_bytes(), mode);
            let err = MasterKey::load_or_create(&path).unwrap_err();
            assert!(
                matches!(err, MasterKeyError::InsecurePermissions { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            let msg = err.to_string();
            assert!(msg.contains("chmod 600"), "{msg}");
            assert!(msg.starts_with("master key file"), "{msg}");
        }
        // The file was left alone.
        assert_eq!(fs::read_to_string(&path).unwrap(), good);
    }

    #[test]
    fn derivation_is_deterministic_and_separated() {
        let key = MasterKey::from_bytes([5u8; 32]);
        let again = MasterKey::from_bytes([5u8; 32]);
        let other = MasterKey::from_bytes([6u8; 32]);

        let p1 = key.derive_pepper(1);
        assert_eq!(p1.version(), 1);
        assert_eq!(p1, again.derive_pepper(1));
        assert_eq!(p1.hash(b"tsk_x"), again.derive_pepper(1).hash(b"tsk_x"));
        // Version-dependent: another version is another key.
        assert_ne!(p1.hash(b"tsk_x"), key.derive_pepper(2).hash(b"tsk_x"));
        assert_ne!(p1.hash(b"tsk_x"), other.derive_pepper(1).hash(b"tsk_x"));

        assert_eq!(key.derive_key("envelope"), again.derive_key("envelope"));
        assert_ne!(key.derive_key("envelope"), key.derive_key("session"));
        assert_ne!(key.derive_key("envelope"), other.derive_key("envelope"));
        assert_ne!(key.derive_key("envelope").expose(), &[5u8; 32]);
    }

    #[test]
    fn hkdf_matches_the_documented_construction() {
        let key = MasterKey::from_bytes([1u8; 32]);
        let hk = Hkdf::<Sha256>::new(None, &[1u8; 32]);
        let mut expected = [0u8; 32];
        hk.expand(b"tessera/pepper/v7", &mut expected).unwrap();
        assert_eq!(key.derive_pepper(7), Pepper::new(7, expected));
        hk.expand(b"tessera/envelope", &mut expected).unwrap();
        assert_eq!(key.derive_key("envelope").expose(), &expected);
    }

    #[test]
    fn key_id_is_a_stable_one_way_fingerprint() {
        let key = MasterKey::from_bytes([5u8; 32]);
        let id = key.key_id();
        assert!(id.starts_with("mk_") && id.len() == 19, "{id}");
        assert_eq!(id, MasterKey::from_bytes([5u8; 32]).key_id());
        assert_ne!(id, MasterKey::from_bytes([6u8; 32]).key_id());
        assert!(!id.contains(&hex::encode(&[5u8; 8])));
    }

    #[test]
    fn wrap_binds_key_and_purpose() {
        let mut rng = OsRng;
        let a = MasterKey::from_bytes([1u8; 32]);
        let b = MasterKey::from_bytes([2u8; 32]);
        let sealed = a.wrap("pepper/1", b"material", &mut rng);
        assert_eq!(
            a.unwrap("pepper/1", &sealed).unwrap().as_slice(),
            b"material"
        );
        assert!(a.unwrap("pepper/2", &sealed).is_err());
        assert!(b.unwrap("pepper/1", &sealed).is_err());
    }

    #[test]
    fn from_hex_accepts_only_the_canonical_form() {
        let good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert!(MasterKey::from_hex(good.as_bytes()).is_some());
        assert!(MasterKey::from_hex(good.to_uppercase().as_bytes()).is_none());
        assert!(MasterKey::from_hex(&good.as_bytes()[..62]).is_none());
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
        assert_eq!(format!("{:?}", key.derive_key("x")), "[redacted]");
    }
}
