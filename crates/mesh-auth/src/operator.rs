//! Operators: the people (keys) allowed to sign admin commands.

use std::collections::HashMap;

use crate::envelope::{EnvelopeDraft, SignedEnvelope};
use crate::ids::{OPERATOR_ID_CONTEXT, derive_u64};
use crate::keys::{EntityKeypair, PublicKey};

pub use crate::ids::OperatorId;

impl PublicKey {
    /// The operator id for this key.
    pub fn operator_id(&self) -> OperatorId {
        OperatorId(derive_u64(OPERATOR_ID_CONTEXT, self.as_bytes()))
    }
}

/// A keypair used to sign admin commands.
#[derive(Clone, Debug)]
pub struct OperatorIdentity {
    keypair: EntityKeypair,
}

impl OperatorIdentity {
    /// Uses `keypair` as an operator identity.
    pub fn from_keypair(keypair: EntityKeypair) -> Self {
        Self { keypair }
    }

    /// This operator's id.
    pub fn operator_id(&self) -> OperatorId {
        self.keypair.public().operator_id()
    }

    /// This operator's public key (what a registry holds).
    pub fn public(&self) -> PublicKey {
        self.keypair.public()
    }

    /// The underlying keypair.
    pub fn keypair(&self) -> &EntityKeypair {
        &self.keypair
    }

    /// Seals `draft` into an envelope signed by this operator.
    ///
    /// Draws a fresh random nonce unless the draft already carries one.
    pub fn sign_command(&self, draft: EnvelopeDraft) -> SignedEnvelope {
        let mut envelope = SignedEnvelope::unsigned(draft.finish());
        self.cosign(&mut envelope);
        envelope
    }

    /// Adds this operator's signature to an envelope others have signed.
    ///
    /// Signing twice replaces this operator's earlier signature instead of adding a
    /// duplicate.
    pub fn cosign(&self, envelope: &mut SignedEnvelope) {
        let signature = self.keypair.sign(&envelope.body.signing_bytes());
        envelope.add_signature(self.public(), signature);
    }
}

/// The operators a node trusts: operator id -> public key.
#[derive(Clone, Debug, Default)]
pub struct OperatorRegistry {
    by_id: HashMap<OperatorId, PublicKey>,
}

impl OperatorRegistry {
    /// An empty registry (trusts nobody).
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the public half of `keypair`.
    pub fn register(&mut self, keypair: &EntityKeypair) -> OperatorId {
        self.register_public(keypair.public())
    }

    /// Trusts `public`. Registering the same key again is a no-op.
    pub fn register_public(&mut self, public: PublicKey) -> OperatorId {
        let id = public.operator_id();
        self.by_id.insert(id, public);
        id
    }

    /// Stops trusting an operator; returns the key it had.
    pub fn remove(&mut self, id: OperatorId) -> Option<PublicKey> {
        self.by_id.remove(&id)
    }

    /// The registered key for `id`.
    pub fn get(&self, id: OperatorId) -> Option<&PublicKey> {
        self.by_id.get(&id)
    }

    /// Whether `public` is registered (by exact key, not only by id).
    pub fn contains(&self, public: &PublicKey) -> bool {
        self.get(public.operator_id()) == Some(public)
    }

    /// Number of registered operators.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no operator is registered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// All registered operators, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (OperatorId, &PublicKey)> {
        self.by_id.iter().map(|(id, key)| (*id, key))
    }
}
