//! Noise handshakes (through `snow`) and the identity proof they carry.
//!
//! Pattern `Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s`: the cluster key is mixed in
//! before the first message, so a node without it is refused at message 1 by an
//! AEAD check, before any Diffie-Hellman work. XX lets both sides learn each other's
//! static key; the payloads of messages 2 and 3 carry an [`IdentityProof`]: the
//! node's ed25519 key and its signature over the Noise static key. Noise
//! authenticates the static key, the signature binds it to the ed25519 identity, so
//! the peer's `NodeId` is never taken on trust.

use mesh_auth::{EntityKeypair, PublicKey, Signature};
use serde::{Deserialize, Serialize};
use snow::{Builder, HandshakeState};
use zeroize::Zeroizing;

use crate::MeshError;

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s";
const PROOF_DOMAIN: &[u8] = b"meshdeck/noise-static v1";
/// Largest handshake message we write or read.
pub(crate) const MAX_HANDSHAKE_MSG: usize = 1024;

/// This node's Noise static keypair (fresh per process).
pub(crate) struct StaticKey {
    private: Zeroizing<Vec<u8>>,
    pub(crate) public: Vec<u8>,
}

impl StaticKey {
    pub(crate) fn generate() -> Result<Self, MeshError> {
        let params = NOISE_PARAMS.parse().map_err(|e| MeshError::Noise(format!("{e:?}")))?;
        let keypair = Builder::new(params)
            .generate_keypair()
            .map_err(|e| MeshError::Noise(format!("{e:?}")))?;
        Ok(Self { private: Zeroizing::new(keypair.private), public: keypair.public })
    }

    fn builder<'a>(
        &'a self,
        psk: &'a [u8; 32],
        prologue: &'a [u8],
    ) -> Result<Builder<'a>, snow::Error> {
        let params = NOISE_PARAMS.parse()?;
        Ok(Builder::new(params).local_private_key(&self.private).psk(0, psk).prologue(prologue))
    }

    /// The initiator of a handshake whose opener carries `timestamp_ms`.
    pub(crate) fn initiator(
        &self,
        psk: &[u8; 32],
        timestamp_ms: u64,
    ) -> Result<HandshakeState, snow::Error> {
        self.builder(psk, &prologue(timestamp_ms))?.build_initiator()
    }

    /// The responder to an opener that carried `timestamp_ms`.
    pub(crate) fn responder(
        &self,
        psk: &[u8; 32],
        timestamp_ms: u64,
    ) -> Result<HandshakeState, snow::Error> {
        self.builder(psk, &prologue(timestamp_ms))?.build_responder()
    }
}

/// Who a node is, proven inside the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityProof {
    /// The node's ed25519 identity key.
    pub public: PublicKey,
    /// Signature by `public` over `PROOF_DOMAIN || noise static key`.
    pub signature: Signature,
    /// The sender's software version.
    pub version: String,
    /// Role flags (bit 0: operator node).
    pub flags: u32,
}

impl IdentityProof {
    /// The proof for `identity` owning `noise_static`, encoded.
    pub(crate) fn encode_for(identity: &EntityKeypair, noise_static: &[u8], flags: u32) -> Vec<u8> {
        let proof = IdentityProof {
            public: identity.public(),
            signature: identity.sign(&signed_bytes(noise_static)),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            flags,
        };
        postcard::to_stdvec(&proof).unwrap_or_default()
    }

    /// Decodes a proof and checks it against the static key Noise authenticated.
    pub(crate) fn check(bytes: &[u8], remote_static: Option<&[u8]>) -> Result<Self, &'static str> {
        let proof: IdentityProof =
            postcard::from_bytes(bytes).map_err(|_| "identity proof does not decode")?;
        if proof.version.len() > 64 {
            return Err("identity proof version string too long");
        }
        let remote_static = remote_static.ok_or("no remote static key after handshake")?;
        if !proof.public.verify(&signed_bytes(remote_static), &proof.signature) {
            return Err("identity proof signature does not verify");
        }
        Ok(proof)
    }
}

/// The Noise prologue: binds the opener's cleartext timestamp into the
/// handshake hash, so changing it fails message 1's AEAD check.
fn prologue(timestamp_ms: u64) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(b"meshdeck hs v2\0\0");
    out[16..].copy_from_slice(&timestamp_ms.to_le_bytes());
    out
}

fn signed_bytes(noise_static: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(PROOF_DOMAIN.len() + noise_static.len());
    msg.extend_from_slice(PROOF_DOMAIN);
    msg.extend_from_slice(noise_static);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(psk_a: [u8; 32], psk_b: [u8; 32]) -> Result<(IdentityProof, IdentityProof), String> {
        let (ka, kb) = (StaticKey::generate().unwrap(), StaticKey::generate().unwrap());
        let (ia, ib) = (EntityKeypair::from_seed(&[1; 32]), EntityKeypair::from_seed(&[2; 32]));
        let mut a = ka.initiator(&psk_a, 42).unwrap();
        let mut b = kb.responder(&psk_b, 42).unwrap();
        let (mut m, mut p) = ([0u8; 1024], [0u8; 1024]);
        let n = a.write_message(&[], &mut m).unwrap();
        b.read_message(&m[..n], &mut p).map_err(|e| format!("msg1: {e:?}"))?;
        let n = b.write_message(&IdentityProof::encode_for(&ib, &kb.public, 0), &mut m).unwrap();
        let l = a.read_message(&m[..n], &mut p).map_err(|e| format!("msg2: {e:?}"))?;
        let proof_b = IdentityProof::check(&p[..l], a.get_remote_static()).map_err(String::from)?;
        let n = a.write_message(&IdentityProof::encode_for(&ia, &ka.public, 0), &mut m).unwrap();
        let l = b.read_message(&m[..n], &mut p).map_err(|e| format!("msg3: {e:?}"))?;
        let proof_a = IdentityProof::check(&p[..l], b.get_remote_static()).map_err(String::from)?;
        assert!(a.is_handshake_finished() && b.is_handshake_finished());
        Ok((proof_a, proof_b))
    }

    #[test]
    fn handshake_authenticates_both_identities() {
        let (a, b) = run([7; 32], [7; 32]).unwrap();
        assert_eq!(a.public, EntityKeypair::from_seed(&[1; 32]).public());
        assert_eq!(b.public, EntityKeypair::from_seed(&[2; 32]).public());
    }

    #[test]
    fn a_changed_opener_timestamp_fails_at_message_one() {
        let (ka, kb) = (StaticKey::generate().unwrap(), StaticKey::generate().unwrap());
        let mut a = ka.initiator(&[7; 32], 1_000).unwrap();
        let mut b = kb.responder(&[7; 32], 1_001).unwrap();
        let (mut m, mut p) = ([0u8; 1024], [0u8; 1024]);
        let n = a.write_message(&[0; 64], &mut m).unwrap();
        assert!(b.read_message(&m[..n], &mut p).is_err());
    }

    #[test]
    fn wrong_cluster_key_fails_at_message_one() {
        let err = run([7; 32], [8; 32]).unwrap_err();
        assert!(err.starts_with("msg1"), "{err}");
    }

    #[test]
    fn proof_for_another_static_key_is_refused() {
        let ka = StaticKey::generate().unwrap();
        let other = StaticKey::generate().unwrap();
        let id = EntityKeypair::from_seed(&[3; 32]);
        let proof = IdentityProof::encode_for(&id, &ka.public, 0);
        assert!(IdentityProof::check(&proof, Some(&other.public)).is_err());
        assert!(IdentityProof::check(&proof, Some(&ka.public)).is_ok());
        assert!(IdentityProof::check(&[1, 2, 3], Some(&ka.public)).is_err());
    }
}
