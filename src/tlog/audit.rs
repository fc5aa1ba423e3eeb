//! `log audit`: checks a log from the outside, over plain HTTP, with nothing but its verifier
//! key (DESIGN §10).
//!
//! 1. Fetch `/log/checkpoint` and verify its signature with the key, and the cosignatures
//!    of the witnesses the auditor trusts (a quorum of them must have cosigned).
//! 2. Load the state file of the previous run, if any: the checkpoint it accepted, the
//!    log's right edge then (the roots of its perfect subtrees, at most 64 hashes) and the
//!    leaf hashes of its last, partial, entry tile. A checkpoint smaller than the saved one,
//!    or of the same size with another root, fails.
//! 3. Fetch only the entry tiles holding leaves the state has not seen (the first again if
//!    it was partial; its old leaves must be unchanged), hash every new leaf onto the right
//!    edge and compute the root. It must be the signed root: that proves at once that every
//!    leaf is what the log committed to and that the new tree extends the saved one.
//! 4. Save the new state (written to a temporary file and renamed).
//!
//! Any failure is an [`AuditError`] naming what failed; the command exits non-zero with it.

use super::checkpoint::{self, VerifiedCheckpoint};
use super::client;
use super::cosignature::{CosignatureVerifier, cosigners};
use super::tiles::{TilePath, WIDTH, parse_entry_bundle};
use super::tree::{Hash, leaf_hash, node_hash};
use crate::progress::Progress;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What an audit found wrong.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log could not be fetched.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// The checkpoint's signature does not verify with the key.
    #[error("the checkpoint is not signed by the key: {0}")]
    Signature(String),
    /// Too few of the trusted witnesses cosigned the checkpoint, or a cosignature is forged.
    #[error("the checkpoint lacks its witnesses' quorum: {0}")]
    Witnesses(String),
    /// The log contradicts the checkpoint saved by an earlier run.
    #[error("the log is inconsistent with the checkpoint saved in {file}: {reason}")]
    Inconsistent {
        /// The state file.
        file: String,
        /// What contradicts it.
        reason: String,
    },
    /// The entries do not give the signed root.
    #[error("the log's entries do not match its signed checkpoint: {0}")]
    Entries(String),
    /// The state file cannot be read or written.
    #[error("the state file {file}: {reason}")]
    State {
        /// The file.
        file: String,
        /// What failed.
        reason: String,
    },
}

/// What a successful audit checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditReport {
    /// The checkpoint accepted.
    pub checkpoint: VerifiedCheckpoint,
    /// The size the previous run had accepted (0 for a first run).
    pub previous_size: u64,
    /// Leaves fetched and hashed in this run.
    pub leaves_fetched: u64,
    /// Entry tiles fetched in this run.
    pub tiles_fetched: u64,
    /// The trusted witnesses whose cosignatures verified, by name.
    pub cosigned_by: Vec<String>,
}

/// The witnesses an auditor trusts, and how many of them must have cosigned a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    /// The witnesses' cosignature/v1 verifier keys.
    pub witnesses: Vec<CosignatureVerifier>,
    /// Cosignatures needed.
    pub quorum: usize,
}

impl WitnessPolicy {
    /// The witnesses that cosigned `note`, when at least the quorum did.
    fn check(&self, note: &[u8]) -> Result<Vec<String>, AuditError> {
        let found = cosigners(note, &self.witnesses).map_err(AuditError::Witnesses)?;
        let names: Vec<String> = found
            .iter()
            .map(|(i, _)| self.witnesses[*i].vkey().to_owned())
            .collect();
        if found.len() < self.quorum {
            let missing: Vec<&str> = self
                .witnesses
                .iter()
                .enumerate()
                .filter(|(i, _)| !found.iter().any(|(f, _)| f == i))
                .map(|(_, w)| w.vkey())
                .collect();
            return Err(AuditError::Witnesses(format!(
                "cosigned by {} of the {} witnesses required; no cosignature from {}",
                found.len(),
                self.quorum,
                missing.join(", ")
            )));
        }
        Ok(names)
    }
}

/// The state kept between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    origin: String,
    size: u64,
    root_hash: String,
    /// The checkpoint note accepted.
    note: String,
    /// The roots of the tree's perfect subtrees, largest first, base64.
    right_edge: Vec<String>,
    /// The leaf hashes of the last entry tile when it is partial, base64.
    partial_tile: Vec<String>,
}

/// The right edge of a tree: the roots of its perfect subtrees, largest first, with their
/// sizes. Appending a leaf merges equal neighbours; the root folds them from the right.
#[derive(Debug, Clone, Default)]
struct RightEdge(Vec<(Hash, u64)>);

impl RightEdge {
    fn from_sizes(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        // The perfect subtrees of a tree of `size` leaves are its size's set bits, high first.
        let sizes: Vec<u64> = (0..64)
            .rev()
            .map(|b| 1u64 << b)
            .filter(|s| size & s != 0)
            .collect();
        (sizes.len() == hashes.len()).then(|| Self(hashes.into_iter().zip(sizes).collect()))
    }

    fn push(&mut self, leaf: Hash) {
        let mut node = (leaf, 1);
        while let Some(&(left, size)) = self.0.last() {
            if size != node.1 {
                break;
            }
            self.0.pop();
            node = (node_hash(left, node.0), size * 2);
        }
        self.0.push(node);
    }

    fn root(&self) -> Option<Hash> {
        let mut nodes = self.0.iter().rev();
        let mut root = nodes.next()?.0;
        for (left, _) in nodes {
            root = node_hash(*left, root);
        }
        Some(root)
    }
}

fn b64(h: &Hash) -> String {
    STANDARD.encode(h.0)
}

fn unb64(s: &str) -> Option<Hash> {
    STANDARD.decode(s).ok()?.try_into().ok().map(Hash)
}

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// GETs `url` and returns the body of a 200 answer.
async fn fetch(url: &str) -> Result<Bytes, AuditError> {
    client::get_ok(url, FETCH_TIMEOUT)
        .await
        .map_err(|e| AuditError::Fetch {
            url: e.url,
            reason: e.reason,
        })
}

fn load_state(file: &Path) -> Result<Option<State>, AuditError> {
    let fail = |reason: String| AuditError::State {
        file: file.display().to_string(),
        reason,
    };
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| fail(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(e.to_string())),
    }
}

fn save_state(file: &Path, state: &State) -> Result<(), AuditError> {
    let fail = |reason: String| AuditError::State {
        file: file.display().to_string(),
        reason,
    };
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let text = serde_json::to_vec_pretty(state).map_err(|e| fail(e.to_string()))?;
    std::fs::write(&tmp, text).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, file).map_err(|e| fail(e.to_string()))
}

/// Audits the log at `base` (the server's URL, e.g. `http://127.0.0.1:8080`) against the
/// verifier key `vkey`, continuing from `state_file` if given, trusting no witness.
pub async fn audit(
    base: &str,
    vkey: &str,
    state_file: Option<&Path>,
) -> Result<AuditReport, AuditError> {
    audit_with(
        base,
        vkey,
        state_file,
        &WitnessPolicy::default(),
        &Progress::hidden(),
    )
    .await
}

/// Like [`audit`], and accepting a checkpoint only with the cosignatures `witnesses` asks for,
/// reporting the leaves fetched to `progress`.
pub async fn audit_with(
    base: &str,
    vkey: &str,
    state_file: Option<&Path>,
    witnesses: &WitnessPolicy,
    progress: &Progress,
) -> Result<AuditReport, AuditError> {
    let base = base.trim_end_matches('/');
    let note = fetch(&format!("{base}/log/checkpoint")).await?;
    let checkpoint =
        checkpoint::verify(&note, vkey.trim()).map_err(|e| AuditError::Signature(e.to_string()))?;
    let cosigned_by = witnesses.check(&note)?;
    let saved = match state_file {
        Some(file) => load_state(file)?,
        None => None,
    };
    let inconsistent = |reason: String| AuditError::Inconsistent {
        file: state_file.map_or_else(String::new, |f| f.display().to_string()),
        reason,
    };
    let (mut edge, previous_size, mut tail) = match &saved {
        None => (RightEdge::default(), 0, Vec::new()),
        Some(s) => {
            let corrupt = || AuditError::State {
                file: state_file.map_or_else(String::new, |f| f.display().to_string()),
                reason: "unreadable hashes".into(),
            };
            if s.origin != checkpoint.origin {
                return Err(inconsistent(format!(
                    "it was saved for the log {}, this is {}",
                    s.origin, checkpoint.origin
                )));
            }
            let hashes: Option<Vec<Hash>> = s.right_edge.iter().map(|h| unb64(h)).collect();
            let edge = hashes
                .and_then(|h| RightEdge::from_sizes(s.size, h))
                .ok_or_else(corrupt)?;
            let tail: Option<Vec<Hash>> = s.partial_tile.iter().map(|h| unb64(h)).collect();
            (edge, s.size, tail.ok_or_else(corrupt)?)
        }
    };
    if let Some(s) = &saved {
        if checkpoint.size < s.size {
            return Err(inconsistent(format!(
                "the log now signs {} leaves, fewer than the {} it signed before",
                checkpoint.size, s.size
            )));
        }
        if checkpoint.size == s.size && b64(&checkpoint.root) != s.root_hash {
            return Err(inconsistent(format!(
                "the log signs a different root for the same {} leaves (a split view): {} before, {} now",
                s.size,
                s.root_hash,
                b64(&checkpoint.root)
            )));
        }
    }

    // Fetch the entry tiles from the one holding the first leaf not yet seen.
    let (mut leaves_fetched, mut tiles_fetched) = (0, 0);
    let mut next = previous_size;
    progress.phase(
        "fetching and hashing leaves",
        Some(checkpoint.size - previous_size),
    );
    while next < checkpoint.size {
        let index = next / WIDTH;
        let start = index * WIDTH;
        let width = (checkpoint.size - start).min(WIDTH) as u16;
        let path = TilePath::Entries { index, width }.to_path();
        let bundle = fetch(&format!("{base}/log/tile/{path}")).await?;
        tiles_fetched += 1;
        progress.advance(checkpoint.size.min(start + WIDTH) - next);
        let leaves = parse_entry_bundle(&bundle)
            .map_err(|e| AuditError::Entries(format!("tile {path}: {e:?}")))?;
        if leaves.len() != usize::from(width) {
            return Err(AuditError::Entries(format!(
                "tile {path} holds {} entries, not {width}",
                leaves.len()
            )));
        }
        for (offset, leaf) in leaves.iter().enumerate() {
            let n = start + offset as u64;
            let hash = leaf_hash(leaf);
            if n < next {
                // A leaf seen by the previous run: it must not have changed.
                if tail.get(offset) != Some(&hash) {
                    return Err(inconsistent(format!("leaf {n} changed since it was saved")));
                }
                continue;
            }
            edge.push(hash);
            leaves_fetched += 1;
        }
        tail = if u64::from(width) < WIDTH {
            leaves.iter().map(|l| leaf_hash(l)).collect()
        } else {
            Vec::new()
        };
        next = start + u64::from(width);
    }
    let root = edge.root().unwrap_or(super::tree::EMPTY_HASH);
    if root != checkpoint.root {
        return Err(AuditError::Entries(format!(
            "the {} leaves give root {}, the checkpoint signs {}{}",
            checkpoint.size,
            b64(&root),
            b64(&checkpoint.root),
            if previous_size > 0 {
                format!(" (or the log rewrote the {previous_size} leaves saved before)")
            } else {
                String::new()
            }
        )));
    }
    if let Some(file) = state_file {
        let state = State {
            origin: checkpoint.origin.clone(),
            size: checkpoint.size,
            root_hash: b64(&checkpoint.root),
            note: String::from_utf8_lossy(&note).into_owned(),
            right_edge: edge.0.iter().map(|(h, _)| b64(h)).collect(),
            partial_tile: tail.iter().map(b64).collect(),
        };
        save_state(file, &state)?;
    }
    Ok(AuditReport {
        checkpoint,
        previous_size,
        leaves_fetched,
        tiles_fetched,
        cosigned_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::tree::MemoryTree;

    #[test]
    fn the_right_edge_gives_the_rfc_6962_root_at_every_size_and_resumes_from_its_hashes() {
        let mut tree = MemoryTree::new();
        let mut edge = RightEdge::default();
        for n in 0..300u64 {
            let leaf = n.to_be_bytes();
            tree.append(&leaf);
            edge.push(leaf_hash(&leaf));
            let size = n + 1;
            assert_eq!(edge.root(), Some(tree.root_at(size)), "size {size}");
            let resumed =
                RightEdge::from_sizes(size, edge.0.iter().map(|(h, _)| *h).collect()).unwrap();
            assert_eq!(resumed.root(), edge.root());
        }
        assert!(RightEdge::from_sizes(3, vec![Hash::default()]).is_none());
    }
}
