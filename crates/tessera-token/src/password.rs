//! Password hashing with argon2id at OWASP parameters (m = 19456 KiB, t = 2, p = 1), stored
//! as PHC strings, plus the password policy.
//! INVARIANT: verification never panics and answers `false` for anything malformed; a login
//! for a missing account spends the same time via `verify_dummy`, so timing does not reveal
//! whether an account exists.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};
use zeroize::Zeroize;

/// Minimum password length, in characters (Unicode scalar values).
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Maximum password length, in bytes of UTF-8.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// OWASP argon2id memory cost, in KiB.
const M_COST: u32 = 19_456;
/// OWASP argon2id iterations.
const T_COST: u32 = 2;
/// OWASP argon2id parallelism.
const P_COST: u32 = 1;
/// Salt length, in bytes.
const SALT_LEN: usize = 16;

/// Upper bounds on the parameters a stored hash may ask for, far above any sane setting, so a
/// corrupt row cannot make a login allocate gigabytes or spin for minutes.
const MAX_M_COST: u32 = 262_144;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;

/// Why a password was refused or could not be hashed. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`PASSWORD_MIN_CHARS`] characters.
    #[error("password must be at least 12 characters long")]
    TooShort,
    /// More than [`PASSWORD_MAX_BYTES`] bytes.
    #[error("password must be at most 1024 bytes long")]
    TooLong,
    /// The hashing library failed (not expected with fixed, valid parameters).
    #[error("password hashing failed: {0}")]
    Hashing(argon2::password_hash::Error),
}

/// The argon2id hasher at OWASP parameters.
fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(M_COST, T_COST, P_COST, None).map_err(|e| PasswordError::Hashing(e.into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the password policy for a new password: at least [`PASSWORD_MIN_CHARS`]
/// characters and at most [`PASSWORD_MAX_BYTES`] bytes.
pub fn check_password_policy(password: &str) -> Result<(), PasswordError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// Hashes `password` with a fresh salt from `rng`, returning a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`). Refuses passwords over [`PASSWORD_MAX_BYTES`]
/// but does not apply the rest of the policy: call [`check_password_policy`] for new
/// passwords.
pub fn hash_password(
    password: &str,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<String, PasswordError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    let mut salt_bytes = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(PasswordError::Hashing);
    salt_bytes.zeroize();
    let salt = salt?;
    hash_with_salt(password, &salt)
}

/// [`hash_password`] with a salt from the operating system's CSPRNG.
pub fn hash_password_os(password: &str) -> Result<String, PasswordError> {
    hash_password(password, &mut OsRng)
}

fn hash_with_salt(password: &str, salt: &SaltString) -> Result<String, PasswordError> {
    hasher()?
        .hash_password(password.as_bytes(), salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Hashing)
}

/// Whether `password` matches the PHC string `phc`. Answers `false` for a malformed hash,
/// another algorithm than argon2id, or parameters beyond sane bounds; never panics.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST || params.t_cost() > MAX_T_COST || params.p_cost() > MAX_P_COST
    {
        return false;
    }
    let Ok(argon2) = hasher() else {
        return false;
    };
    argon2.verify_password(password.as_bytes(), &hash).is_ok()
}

/// A hash of a fixed password at the current parameters, computed on first use.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::encode_b64(b"tessera dummy!!!").ok()?;
            hash_with_salt("tessera dummy password", &salt).ok()
        })
        .as_deref()
}

/// Spends as long as [`verify_password`] against a real hash, for logins of accounts that do
/// not exist. The first call also computes the dummy hash; call it once at startup so that
/// first login is not slower.
pub fn verify_dummy(password: &str) {
    if let Some(phc) = dummy_hash() {
        std::hint::black_box(verify_password(password, phc));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Instant;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn roundtrip_and_wrong_password() {
        let mut rng = StdRng::seed_from_u64(1);
        let phc = hash_password("correct horse battery staple", &mut rng).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapl", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn salts_differ() {
        let a = hash_password_os("same password here").unwrap();
        let b = hash_password_os("same password here").unwrap();
        assert_ne!(a, b);
        assert!(verify_password("same password here", &a));
        assert!(verify_password("same password here", &b));
    }

    #[test]
    fn malformed_hashes_are_false() {
        let phc = hash_password_os("a fine password").unwrap();
        let swapped = phc.replacen("argon2id", "argon2i", 1);
        let huge_memory = phc.replacen("m=19456", "m=4194304", 1);
        let truncated = &phc[..phc.len() - 5];
        for bad in [
            "",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=0,t=0,p=0$c2FsdHNhbHQ$aGFzaA",
            "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
            truncated,
            &swapped,
            &huge_memory,
        ] {
            assert!(!verify_password("a fine password", bad), "{bad}");
        }
    }

    #[test]
    fn policy() {
        assert!(matches!(
            check_password_policy(""),
            Err(PasswordError::TooShort)
        ));
        assert!(matches!(
            check_password_policy("elevenchars"),
            Err(PasswordError::TooShort)
        ));
        assert!(check_password_policy("twelve chars").is_ok());
        // Characters, not bytes: 12 two-byte characters pass, 11 fail.
        assert!(check_password_policy(&"é".repeat(12)).is_ok());
        assert!(matches!(
            check_password_policy(&"é".repeat(11)),
            Err(PasswordError::TooShort)
        ));
        assert!(check_password_policy(&"a".repeat(1024)).is_ok());
        assert!(matches!(
            check_password_policy(&"a".repeat(1025)),
            Err(PasswordError::TooLong)
        ));
        assert!(matches!(
            check_password_policy(&"é".repeat(513)),
            Err(PasswordError::TooLong)
        ));
        assert!(matches!(
            hash_password_os(&"a".repeat(1025)),
            Err(PasswordError::TooLong)
        ));
        for e in [PasswordError::TooShort, PasswordError::TooLong] {
            let msg = e.to_string();
            assert!(msg.starts_with("password must"), "{msg}");
        }
    }

    #[test]
    fn dummy_verification_costs_about_as_much_as_a_real_one() {
        let phc = hash_password_os("a real password").unwrap();
        verify_dummy("warm up");
        let time = |f: &dyn Fn()| {
            let start = Instant::now();
            for _ in 0..3 {
                f();
            }
            start.elapsed()
        };
        let real = time(&|| {
            verify_password("a wrong password", &phc);
        });
        let dummy = time(&|| verify_dummy("a wrong password"));
        // Loose bounds: this only catches a dummy that skips the work entirely.
        assert!(
            dummy * 10 > real && real * 10 > dummy,
            "real {real:?}, dummy {dummy:?}"
        );
    }
}
