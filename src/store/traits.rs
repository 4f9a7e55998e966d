//! What a store backend is: the [`Store`] trait each backend module implements. The registry
//! in `store/mod.rs` turns the list of backends into [`super::AnyStore`].

use std::future::Future;

use super::{SecretLocation, StoreError, StoreOp, StoreOutput, StoreVersion};
use crate::http::Http;
use crate::inventory::{StoreDef, StoreKind};
use crate::plan::{RequestPlan, SecretBag};

/// One store backend. Plans are pure data; `execute` sends one plan. The dispatcher
/// ([`super::AnyStore`]) applies the drill guard before `execute`, so a backend does not
/// write it itself.
pub trait Store: Sized {
    /// The inventory kind this backend serves.
    const KIND: StoreKind;
    /// Whether the store authenticates with the definition's `credential` (so the engine
    /// resolves it first).
    const NEEDS_CREDENTIAL: bool;
    /// Whether a written version can wait in a pending stage until it is promoted. Without
    /// stages a write is live at once and `Promote` is a recorded no-op.
    const HAS_STAGES: bool = false;

    /// Configure the backend from the inventory's definition.
    fn from_def(def: &StoreDef) -> Self;

    /// The version a `Write` named `token` creates, for stores that derive version ids from
    /// the write's name (so an interrupted write can be found again).
    fn version_for_token(&self, _token: &str) -> Option<StoreVersion> {
        None
    }

    /// The request for one operation, before anything is sent.
    fn plan(&self, op: &StoreOp, loc: &SecretLocation) -> Result<RequestPlan, StoreError>;

    /// Send a plan made by [`Store::plan`] for `op`.
    fn execute(
        &self,
        op: &StoreOp,
        loc: &SecretLocation,
        plan: &RequestPlan,
        http: &Http,
        secrets: &SecretBag,
    ) -> impl Future<Output = Result<StoreOutput, StoreError>> + Send;
}
