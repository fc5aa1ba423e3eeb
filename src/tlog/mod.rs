//! The transparency log (DESIGN §10): one Merkle tree over every event, in committed order, so
//! that outsiders can verify the record without trusting its operator.
//!
//! The algorithms are those of Go's `golang.org/x/mod/sumdb/tlog` and `note`, through
//! Cloudflare's Rust ports (`tlog_tiles`, `signed_note`; `docs/adr/0009-transparency-log.md`),
//! behind this module's small surface. These parts do no I/O:
//!
//! - [`tree`]: RFC 6962 hashing over stored hashes (the layout of Go's tlog), tree roots,
//!   inclusion and consistency proofs and their checks, over any [`tree::HashReader`].
//! - [`checkpoint`]: C2SP tlog-checkpoints signed as C2SP signed notes with Ed25519, the
//!   signed-note key formats, and key generation.
//! - [`leaf`]: the bytes of a leaf (RFC 8785 JSON) and the salted commitments that stand in
//!   them for personal values.
//! - [`tiles`]: C2SP tlog-tiles paths, hash tiles and entry bundles.
//! - [`cosignature`]: witnesses' cosignatures (C2SP tlog-cosignature, Ed25519 v1).
//!
//! These run the log, through the store's `tree` tables:
//!
//! - [`sequencer`]: the one sequencer across all processes (an advisory lock), giving each
//!   committed event its leaf and signing checkpoints as the tree grows.
//! - [`signer`]: signing a checkpoint only when it is consistent with every one before.
//! - [`witness`]: asking the witnesses to cosign each checkpoint (C2SP tlog-witness).
//! - [`audit`]: `log audit`, an outsider's check of a log over HTTP, incremental between
//!   runs, with the cosignatures of the witnesses the auditor trusts.
//! - [`client`]: the plain HTTP/1.1 client the last two use.

pub mod audit;
pub mod checkpoint;
pub mod client;
pub mod cosignature;
pub mod leaf;
pub mod sequencer;
pub mod signer;
pub mod tiles;
pub mod tree;
pub mod witness;
