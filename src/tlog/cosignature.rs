//! Witness cosignatures (C2SP tlog-cosignature, Ed25519 `cosignature/v1`).
//!
//! A witness vouches that a checkpoint is the largest consistent tree it has seen of the log.
//! Its signature line is an ordinary signed-note line whose key id is
//! `SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]` and whose signature is a big-endian `u64`
//! POSIX timestamp followed by an Ed25519 signature over
//!
//! ```text
//! cosignature/v1
//! time <timestamp>
//! <the checkpoint's text: origin, size, root, each line ending in \n>
//! ```
//!
//! Its verifier key is a signed-note `vkey` with the algorithm byte 0x04:
//! `<name>+<hex key id>+<base64 of 0x04 ‖ public key>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use signed_note::{Note, Verifier, VerifierList};

/// The algorithm byte of an Ed25519 cosignature/v1 key.
pub const COSIGNATURE_V1: u8 = 0x04;

/// A witness's key is not a cosignature/v1 verifier key.
#[derive(Debug, thiserror::Error)]
#[error("not a cosignature/v1 verifier key (`<name>+<hex id>+<base64 of 0x04 ‖ key>`): {0}")]
pub struct BadWitnessKey(pub String);

/// The message a cosignature/v1 signs.
pub fn signed_message(timestamp: u64, checkpoint_text: &[u8]) -> Vec<u8> {
    let mut message = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    message.extend_from_slice(checkpoint_text);
    message
}

/// Verifies cosignatures by one witness: a [`signed_note::Verifier`] for its note lines.
#[derive(Debug, Clone)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
    vkey: String,
}

impl CosignatureVerifier {
    /// Reads a cosignature/v1 verifier key.
    pub fn new(vkey: &str) -> Result<Self, BadWitnessKey> {
        let vkey = vkey.trim();
        let bad = |why: &str| BadWitnessKey(format!("{vkey}: {why}"));
        // The base64 key may itself hold '+': split at the first two only.
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        let [name, id, key] = parts.as_slice() else {
            return Err(bad("not three parts joined by +"));
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad("bad name"));
        }
        let id = u32::from_str_radix(id, 16)
            .ok()
            .filter(|_| id.len() == 8)
            .ok_or_else(|| bad("the key id is not 8 hex digits"))?;
        let key = STANDARD.decode(key).map_err(|_| bad("not base64"))?;
        let (&[COSIGNATURE_V1], public) = key.split_at(1.min(key.len())) else {
            return Err(bad("the algorithm byte is not 0x04"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("the key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 key"))?;
        if signed_note::key_id(name, &[&[COSIGNATURE_V1], public.as_slice()].concat()) != id {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(Self {
            name: (*name).to_owned(),
            id,
            key,
            vkey: vkey.to_owned(),
        })
    }

    /// The verifier key as given.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The timestamp of a valid cosignature, if `sig` (without its key id) is one over
    /// `text`.
    pub fn timestamp_of(&self, text: &[u8], sig: &[u8]) -> Option<u64> {
        if sig.len() != 72 {
            return None;
        }
        let (time, signature) = sig.split_at(8);
        let time = u64::from_be_bytes(time.try_into().ok()?);
        if time > i64::MAX as u64 {
            return None;
        }
        let signature = Signature::from_slice(signature).ok()?;
        self.key
            .verify(&signed_message(time, text), &signature)
            .ok()
            .map(|()| time)
    }
}

impl Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.timestamp_of(msg, sig).is_some()
    }
}

/// The witnesses among `witnesses` whose cosignatures on `note` verify (by index), and the
/// signature lines they are in. A line by a known witness that does not verify is an error:
/// somebody changed the note or forged the line.
pub fn cosigners(
    note: &[u8],
    witnesses: &[CosignatureVerifier],
) -> Result<Vec<(usize, String)>, String> {
    let parsed = Note::from_bytes(note).map_err(|e| e.to_string())?;
    let list = VerifierList::new(
        witnesses
            .iter()
            .map(|w| Box::new(w.clone()) as Box<dyn Verifier>)
            .collect(),
    );
    let verified = match parsed.verify(&list) {
        Ok((verified, _)) => verified,
        Err(signed_note::NoteError::UnverifiedNote) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    Ok(verified
        .iter()
        .filter_map(|sig| {
            let at = witnesses
                .iter()
                .position(|w| w.name == sig.name() && w.id == sig.id())?;
            Some((
                at,
                String::from_utf8_lossy(&sig.to_bytes())
                    .trim_end()
                    .to_owned(),
            ))
        })
        .collect())
}

/// A witness's key pair: for tests and for operators running a witness of their own.
pub struct CosignatureSigner {
    name: String,
    key: SigningKey,
}

impl CosignatureSigner {
    /// A new key for the witness `name`.
    pub fn generate(name: &str) -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The verifier key.
    pub fn vkey(&self) -> String {
        let public = [
            &[COSIGNATURE_V1],
            self.key.verifying_key().as_bytes().as_slice(),
        ]
        .concat();
        format!(
            "{}+{:08x}+{}",
            self.name,
            signed_note::key_id(&self.name, &public),
            STANDARD.encode(&public)
        )
    }

    /// The note signature line cosigning the checkpoint `text` at `timestamp`.
    pub fn cosign(&self, text: &[u8], timestamp: u64) -> String {
        let public = [
            &[COSIGNATURE_V1],
            self.key.verifying_key().as_bytes().as_slice(),
        ]
        .concat();
        let id = signed_note::key_id(&self.name, &public);
        let signature = self.key.sign(&signed_message(timestamp, text));
        let mut blob = id.to_be_bytes().to_vec();
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        format!("\u{2014} {} {}", self.name, STANDARD.encode(blob))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::checkpoint::{LogKey, generate_key};
    use crate::tlog::tree::Hash;

    fn signed_checkpoint() -> (String, String) {
        let (skey, vkey) = generate_key("example.org/log").unwrap();
        let note = LogKey::from_private(&skey)
            .unwrap()
            .sign(7, Hash([3; 32]))
            .unwrap();
        (note, vkey)
    }

    #[test]
    fn a_cosigned_checkpoint_names_its_witness_and_still_verifies_with_the_logs_key() {
        let (note, vkey) = signed_checkpoint();
        let witness = CosignatureSigner::generate("witness.example/w1");
        let verifier = CosignatureVerifier::new(&witness.vkey()).unwrap();
        let text = &note.as_bytes()[..note.find("\n\n").unwrap() + 1];
        let line = witness.cosign(text, 1_700_000_000);
        let cosigned = format!("{note}{line}\n");
        let found = cosigners(cosigned.as_bytes(), std::slice::from_ref(&verifier)).unwrap();
        assert_eq!(found, vec![(0, line.clone())]);
        assert!(crate::tlog::checkpoint::verify(cosigned.as_bytes(), &vkey).is_ok());
        // Without the line, no cosigner; another witness's key does not count it.
        assert!(
            cosigners(note.as_bytes(), std::slice::from_ref(&verifier))
                .unwrap()
                .is_empty()
        );
        let other =
            CosignatureVerifier::new(&CosignatureSigner::generate("witness.example/w2").vkey())
                .unwrap();
        assert!(cosigners(cosigned.as_bytes(), &[other]).unwrap().is_empty());
        // The same line under another checkpoint is refused, naming the witness.
        let moved = cosigned.replacen("\n7\n", "\n8\n", 1);
        let err = cosigners(moved.as_bytes(), &[verifier]).unwrap_err();
        assert!(err.contains("witness.example/w1"), "{err}");
    }

    #[test]
    fn keys_of_another_algorithm_or_with_a_wrong_id_are_refused() {
        let (_, log_vkey) = generate_key("example.org/log").unwrap();
        assert!(
            CosignatureVerifier::new(&log_vkey).is_err(),
            "0x01 is not 0x04"
        );
        let good = CosignatureSigner::generate("w").vkey();
        assert!(CosignatureVerifier::new(&good).is_ok());
        let parts: Vec<&str> = good.splitn(3, '+').collect();
        let bad = format!("{}+00000000+{}", parts[0], parts[2]);
        assert!(CosignatureVerifier::new(&bad).is_err());
        assert!(CosignatureVerifier::new("w+1234+AAAA").is_err());
    }
}
