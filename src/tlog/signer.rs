//! Signing checkpoints, and refusing to sign one that contradicts an earlier one.
//!
//! The log never signs two checkpoints inconsistent with each other (DESIGN §10). Before it
//! signs a tree of `n` leaves it takes the largest checkpoint it signed before (the one in
//! the database and the one in its state file beside the key, which a restore of the
//! database does not roll back) and checks that the stored tree still has that size at
//! least and, at that size, that root. A database restored from an older backup, or a tree
//! rewritten under the log, fails the check: the log says why and signs nothing.

use super::checkpoint::LogKey;
use super::tree::Hash;
use crate::store::StoreError;
use crate::store::tree::{self, StoredCheckpoint};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sqlx::PgConnection;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why no checkpoint was signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The stored tree contradicts a checkpoint the log signed.
    #[error("refusing to sign: {0}")]
    Inconsistent(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state file could not be read or written.
    #[error("the log's state file {path}: {source}")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The key could not sign.
    #[error("signing: {0}")]
    Key(String),
}

/// The key and the file in which the log keeps the last checkpoint it signed.
pub struct Signer {
    key: LogKey,
    state_file: PathBuf,
}

/// A checkpoint as the state file keeps it: size and root.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signed {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

impl Signer {
    /// A signer with `key`, keeping its last checkpoint in `state_file`.
    pub fn new(key: LogKey, state_file: PathBuf) -> Self {
        Self { key, state_file }
    }

    /// The key.
    pub fn key(&self) -> &LogKey {
        &self.key
    }

    /// The last checkpoint the state file records.
    pub fn last_in_file(&self) -> Result<Option<Signed>, SignError> {
        let text = match std::fs::read_to_string(&self.state_file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.file_error(source)),
        };
        let bad = || {
            self.file_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not `<size> <base64 root>`",
            ))
        };
        let (size, root) = text.trim().split_once(' ').ok_or_else(bad)?;
        let root: [u8; 32] = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(bad)?;
        Ok(Some(Signed {
            size: size.parse().map_err(|_| bad())?,
            root: Hash(root),
        }))
    }

    fn file_error(&self, source: std::io::Error) -> SignError {
        SignError::StateFile {
            path: self.state_file.clone(),
            source,
        }
    }

    fn record(&self, signed: Signed) -> Result<(), SignError> {
        let tmp = self.state_file.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            writeln!(file, "{} {}", signed.size, STANDARD.encode(signed.root.0))?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.state_file)
        };
        write().map_err(|e| self.file_error(e))
    }

    /// Signs a checkpoint of the stored tree if it has grown since the last one, after
    /// checking it is consistent with every checkpoint signed before. Returns the new one.
    pub async fn sign_if_grown(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Option<StoredCheckpoint>, SignError> {
        let size = tree::state(conn, false).await?.size;
        let in_db = tree::last_signed(conn).await?.map(|c| Signed {
            size: c.size,
            root: c.root,
        });
        let in_file = self.last_in_file()?;
        let mut previous = None;
        for (signed, source) in [(in_db, "the database"), (in_file, "the state file")] {
            let Some(signed) = signed else { continue };
            check_against(conn, size, signed, source, &self.state_file).await?;
            if previous.is_none_or(|p: Signed| p.size < signed.size) {
                previous = Some(signed);
            }
        }
        if size == 0 || previous.is_some_and(|p| p.size >= size) {
            return Ok(None);
        }
        let root = tree::root(conn, size).await?;
        let note = self
            .key
            .sign(size, root)
            .map_err(|e| SignError::Key(e.to_string()))?;
        // The file first: a crash between the two leaves a file that the stored tree agrees
        // with, so the next signing goes ahead.
        self.record(Signed { size, root })?;
        let checkpoint = StoredCheckpoint {
            size,
            root,
            note,
            cosigned: 0,
        };
        tree::insert_checkpoint(conn, &checkpoint).await?;
        Ok(Some(checkpoint))
    }
}

/// Checks the stored tree of `size` leaves against a checkpoint signed before.
async fn check_against(
    conn: &mut PgConnection,
    size: u64,
    signed: Signed,
    source: &str,
    state_file: &Path,
) -> Result<(), SignError> {
    let where_ = if source == "the state file" {
        format!("{source} {}", state_file.display())
    } else {
        source.to_owned()
    };
    if size < signed.size {
        return Err(SignError::Inconsistent(format!(
            "the log signed a checkpoint of {} leaves ({where_}) but the database holds {size}: \
             it was restored from an older backup or leaves were removed; restore the newer \
             state, or start a new log with a new key",
            signed.size
        )));
    }
    let root = tree::root(conn, signed.size).await?;
    if root != signed.root {
        return Err(SignError::Inconsistent(format!(
            "the stored tree of {} leaves has root {}, but the log signed {} ({where_}): the \
             tree was changed after it was signed",
            signed.size,
            STANDARD.encode(root.0),
            STANDARD.encode(signed.root.0)
        )));
    }
    Ok(())
}

/// Loads the signing key from `path`, or, when the file does not exist, creates a new key
/// for `origin` there (mode 0600) and says so. Returns the key and whether it was created.
///
/// Processes starting together may race to create it: each writes a file of its own and
/// links it into place, which only one can do; the others load the winner's key.
pub fn load_or_create_key(path: &Path, origin: &str) -> anyhow::Result<(LogKey, bool)> {
    let load = |text: &str| {
        LogKey::from_private(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok((load(&text)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
    }
    let (skey, _) = super::checkpoint::generate_key(origin)?;
    let mut own = path.as_os_str().to_owned();
    own.push(format!(".{}.new", std::process::id()));
    let own = PathBuf::from(own);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&own)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", own.display()))?;
    writeln!(file, "{skey}")?;
    file.sync_all()?;
    let linked = std::fs::hard_link(&own, path);
    let _ = std::fs::remove_file(&own);
    match linked {
        Ok(()) => Ok((LogKey::from_private(&skey)?, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((load(&std::fs::read_to_string(path)?)?, false))
        }
        Err(e) => anyhow::bail!("creating {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_file_is_private_and_loads_as_the_same_key() {
        let dir = std::env::temp_dir().join(format!("ct-key-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.key");
        let (created, was_created) = load_or_create_key(&path, "test.example/log").unwrap();
        assert!(was_created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (loaded, again) = load_or_create_key(&path, "other.example/log").unwrap();
        assert!(!again);
        assert_eq!(loaded.verifier_key(), created.verifier_key());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no file left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
