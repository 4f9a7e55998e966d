//! `manual`: a provider the operator drives by hand. Every step becomes a checklist item in
//! the runbook; nothing is planned or sent. Kinds with no backend in this build fall back to
//! it as well (the registry says why).

use super::traits::{Capabilities, Provider};
use super::{Op, OpOutput, ProviderError};
use crate::http::Http;
use crate::inventory::{ProviderDef, ProviderKind};
use crate::plan::{RequestPlan, SecretBag};

#[derive(Debug, Clone)]
pub struct ManualProvider {
    kind: ProviderKind,
}

impl ManualProvider {
    /// The manual stand-in for a kind.
    pub fn of(kind: ProviderKind) -> Self {
        Self { kind }
    }

    fn unsupported(&self, op: &Op) -> ProviderError {
        ProviderError::Unsupported {
            kind: self.kind,
            op: op.name(),
        }
    }
}

impl Provider for ManualProvider {
    const KIND: ProviderKind = ProviderKind::Manual;
    const CAPABILITIES: Capabilities = Capabilities::NONE;
    const MANUAL_REASON: Option<&'static str> =
        Some("this provider is declared manual: every step is done by the operator");

    fn from_def(def: &ProviderDef) -> Self {
        Self::of(def.kind)
    }

    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn plan(&self, op: &Op) -> Result<RequestPlan, ProviderError> {
        Err(self.unsupported(op))
    }

    async fn execute(
        &self,
        op: &Op,
        _plan: &RequestPlan,
        _http: &Http,
        _secrets: &SecretBag,
    ) -> Result<OpOutput, ProviderError> {
        Err(self.unsupported(op))
    }
}
