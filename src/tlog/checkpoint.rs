//! Checkpoints (C2SP tlog-checkpoint) signed as C2SP signed notes with Ed25519.
//!
//! A checkpoint is three lines (the log's origin, the tree size, the base64 root hash) and
//! its signature lines. Keys are written in the signed-note formats: the private key
//! `PRIVATE+KEY+<name>+<hex key id>+<base64 of 0x01 ‖ seed>`, the verifier key
//! `<name>+<hex key id>+<base64 of 0x01 ‖ public key>`.

use super::tree::Hash;
use base64::Engine;
use signed_note::{Note, Signer, StandardSigner, StandardVerifier, VerifierList};

/// The Ed25519 algorithm byte of signed-note keys.
const ED25519: u8 = 0x01;

/// What went wrong with a key or a note.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The private or verifier key is not in the signed-note format.
    #[error("not a signed-note {0} key")]
    BadKey(&'static str),
    /// The note is malformed or its signature does not verify.
    #[error("the checkpoint does not verify: {0}")]
    Unverified(String),
    /// The note's text is not a checkpoint.
    #[error("not a checkpoint: {0}")]
    Malformed(String),
}

/// A new key pair for the log named `origin`: the private key and the verifier key.
pub fn generate_key(origin: &str) -> Result<(String, String), CheckpointError> {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let vkey = signed_note::new_ed25519_verifier_key(origin, &signing.verifying_key());
    let id = vkey
        .split('+')
        .nth(1)
        .ok_or(CheckpointError::BadKey("verifier"))?;
    let mut key = vec![ED25519];
    key.extend_from_slice(&seed);
    let skey = format!(
        "PRIVATE+KEY+{origin}+{id}+{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    // The pair must load as what it claims to be.
    StandardSigner::new(&skey).map_err(|_| CheckpointError::BadKey("private"))?;
    Ok((skey, vkey))
}

/// The log's signing key, with its verifier key.
pub struct LogKey {
    signer: StandardSigner,
    vkey: String,
}

impl LogKey {
    /// Loads a private key in the signed-note format.
    pub fn from_private(skey: &str) -> Result<Self, CheckpointError> {
        let signer =
            StandardSigner::new(skey.trim()).map_err(|_| CheckpointError::BadKey("private"))?;
        let vkey = verifier_key_of(skey.trim())?;
        Ok(Self { signer, vkey })
    }

    /// The log's name, as the checkpoint's origin line and the signature lines give it.
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The verifier key, for `GET /log/key` and for auditors.
    pub fn verifier_key(&self) -> &str {
        &self.vkey
    }

    /// Signs the checkpoint of a tree of `size` leaves with root `root`: the note's text.
    pub fn sign(&self, size: u64, root: Hash) -> Result<String, CheckpointError> {
        let text = checkpoint_text(self.origin(), size, root);
        let mut note = Note::new(text.as_bytes(), &[])
            .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        note.add_sigs(&[&self.signer as &dyn Signer])
            .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|e| CheckpointError::Malformed(e.to_string()))
    }
}

/// The verifier key of a private key in the signed-note format.
fn verifier_key_of(skey: &str) -> Result<String, CheckpointError> {
    let bad = || CheckpointError::BadKey("private");
    let parts: Vec<&str> = skey.splitn(5, '+').collect();
    let [_, _, name, _, key] = parts.as_slice() else {
        return Err(bad());
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| bad())?;
    let (&[ED25519], seed) = key.split_at(1) else {
        return Err(bad());
    };
    let seed: [u8; 32] = seed.try_into().map_err(|_| bad())?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    Ok(signed_note::new_ed25519_verifier_key(
        name,
        &signing.verifying_key(),
    ))
}

/// The text of a checkpoint: origin, size, base64 root, each on its own line.
pub fn checkpoint_text(origin: &str, size: u64, root: Hash) -> String {
    format!(
        "{origin}\n{size}\n{}\n",
        base64::engine::general_purpose::STANDARD.encode(root.0)
    )
}

/// A checkpoint whose signature by `vkey` verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCheckpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The tree's root.
    pub root: Hash,
}

/// Verifies a signed checkpoint against the log's verifier key and reads it.
pub fn verify(note: &[u8], vkey: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
    let verifier = StandardVerifier::new(vkey).map_err(|_| CheckpointError::BadKey("verifier"))?;
    let note = Note::from_bytes(note).map_err(|e| CheckpointError::Unverified(e.to_string()))?;
    let list = VerifierList::new(vec![Box::new(verifier)]);
    note.verify(&list)
        .map_err(|e| CheckpointError::Unverified(e.to_string()))?;
    let text = std::str::from_utf8(note.text())
        .map_err(|_| CheckpointError::Malformed("not UTF-8".into()))?;
    let mut lines = text.lines();
    let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(CheckpointError::Malformed("fewer than three lines".into()));
    };
    let size: u64 = size
        .parse()
        .map_err(|_| CheckpointError::Malformed(format!("size {size:?}")))?;
    let root = base64::engine::general_purpose::STANDARD
        .decode(root)
        .ok()
        .and_then(|r| <[u8; 32]>::try_from(r).ok())
        .ok_or_else(|| CheckpointError::Malformed("root hash".into()))?;
    Ok(VerifiedCheckpoint {
        origin: origin.to_owned(),
        size,
        root: Hash(root),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Go's golang.org/x/mod/sumdb/note example.
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_notes_example_signs_and_verifies_as_published() {
        let key = LogKey::from_private(SKEY).unwrap();
        assert_eq!(key.verifier_key(), VKEY);
        let mut note = Note::new(TEXT.as_bytes(), &[]).unwrap();
        note.add_sigs(&[&key.signer as &dyn Signer]).unwrap();
        assert_eq!(String::from_utf8(note.to_bytes()).unwrap(), SIGNED);
        let verifier = StandardVerifier::new(VKEY).unwrap();
        let parsed = Note::from_bytes(SIGNED.as_bytes()).unwrap();
        assert!(
            parsed
                .verify(&VerifierList::new(vec![Box::new(verifier)]))
                .is_ok()
        );
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_its_key_and_not_with_another_or_when_changed() {
        let (skey, vkey) = generate_key("example.org/log").unwrap();
        let key = LogKey::from_private(&skey).unwrap();
        assert_eq!(key.verifier_key(), vkey);
        let root = Hash([7; 32]);
        let note = key.sign(42, root).unwrap();
        assert!(note.starts_with("example.org/log\n42\nBwcH"));
        let checkpoint = verify(note.as_bytes(), &vkey).unwrap();
        assert_eq!(
            checkpoint,
            VerifiedCheckpoint {
                origin: "example.org/log".into(),
                size: 42,
                root
            }
        );
        let (_, other) = generate_key("example.org/log").unwrap();
        assert!(verify(note.as_bytes(), &other).is_err());
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(verify(forged.as_bytes(), &vkey).is_err());
        assert!(LogKey::from_private("PRIVATE+KEY+x+00000000+AAAA").is_err());
    }
}
