//! Request plans: every provider and store call exists as data before it is sent, so that a
//! drill can show it, the record can hold it, and the operator can approve it.

use serde::Serialize;

use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Changes nothing anywhere; sent in drills.
    Read,
    /// Changes state at a provider, a store or the inventory; never sent in a drill, and only
    /// after the operator's approval in a live incident.
    Write,
}

/// A secret a plan needs at send time. Plans hold these names, never the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    AdminCredential,
    StoreCredential,
    OldKey,
    NewKey,
}

impl SecretRef {
    pub fn label(self) -> &'static str {
        match self {
            Self::AdminCredential => "[admin credential]",
            Self::StoreCredential => "[store credential]",
            Self::OldKey => "[old key]",
            Self::NewKey => "[new key]",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HeaderValue {
    Plain(String),
    Secret { prefix: String, secret: SecretRef },
}

impl HeaderValue {
    pub fn display(&self) -> String {
        match self {
            Self::Plain(v) => v.clone(),
            Self::Secret { prefix, secret } => format!("{prefix}{}", secret.label()),
        }
    }
}

/// A JSON body field (by JSON pointer) filled with a secret at send time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodySecret {
    pub pointer: String,
    pub secret: SecretRef,
}

/// One call, described before it is made.
#[derive(Debug, Clone, Serialize)]
pub struct RequestPlan {
    pub access: Access,
    /// Revokes or deletes something: a typed confirmation is required in the console.
    pub destructive: bool,
    /// What the call does, in the operator's words.
    pub summary: String,
    /// HTTP method, or the protocol verb for non-HTTP back-ends (`SQL`, `LOCAL`, `OPERATOR`).
    pub method: String,
    /// URL, or a description of the target for non-HTTP back-ends.
    pub url: String,
    pub headers: Vec<(String, HeaderValue)>,
    /// JSON body with secret fields left out (they are listed in `body_secrets`).
    pub body: Option<serde_json::Value>,
    pub body_secrets: Vec<BodySecret>,
    /// Whether the call may be repeated blindly (reads; deletes of a fixed id).
    pub idempotent: bool,
    /// The backend vouches that this call only reads although its verb is not GET or HEAD
    /// (a login that mints a token, a SQL `SELECT`, an AWS `Get*`/`List*` call, a local
    /// lookup): see [`RequestPlan::declared_read`]. Not part of the recorded plan.
    #[serde(skip)]
    pub read_declared: bool,
}

impl RequestPlan {
    pub fn read(summary: impl Into<String>, method: &str, url: impl Into<String>) -> Self {
        Self {
            access: Access::Read,
            destructive: false,
            summary: summary.into(),
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            body_secrets: Vec::new(),
            idempotent: true,
            read_declared: false,
        }
    }

    pub fn write(summary: impl Into<String>, method: &str, url: impl Into<String>) -> Self {
        Self {
            access: Access::Write,
            idempotent: false,
            ..Self::read(summary, method, url)
        }
    }

    /// Mark a read whose verb does not say so (anything but GET and HEAD) as a read, so that
    /// a drill may send it. The backend that builds the plan answers for it; a write plan
    /// stays a write.
    pub fn declared_read(mut self) -> Self {
        self.read_declared = self.access == Access::Read;
        self
    }

    /// Whether a drill may send this plan, by the plan alone: a read by its access, and by
    /// its method (GET or HEAD) or its backend's declaration ([`RequestPlan::declared_read`]).
    pub fn sendable_in_drill(&self) -> bool {
        self.access == Access::Read
            && (matches!(self.method.as_str(), "GET" | "HEAD") || self.read_declared)
    }

    pub fn destructive(mut self) -> Self {
        self.destructive = true;
        self
    }

    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.into(), HeaderValue::Plain(value.into())));
        self
    }

    pub fn secret_header(mut self, name: &str, prefix: &str, secret: SecretRef) -> Self {
        self.headers.push((
            name.into(),
            HeaderValue::Secret {
                prefix: prefix.into(),
                secret,
            },
        ));
        self
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn body_secret(mut self, pointer: &str, secret: SecretRef) -> Self {
        self.body_secrets.push(BodySecret {
            pointer: pointer.into(),
            secret,
        });
        self
    }

    /// The plan as an operator reads it (also what a drill shows as "would send").
    pub fn render(&self) -> String {
        let mut out = format!("{} {}", self.method, self.url);
        for (name, value) in &self.headers {
            out.push_str(&format!("\n  {name}: {}", value.display()));
        }
        if let Some(body) = &self.body {
            let mut shown = body.clone();
            for s in &self.body_secrets {
                if let Some(slot) = shown.pointer_mut(&s.pointer) {
                    *slot = serde_json::Value::String(s.secret.label().into());
                }
            }
            out.push_str(&format!("\n  {shown}"));
        }
        out
    }
}

/// The drill guard, written once for every provider and store (their dispatchers call it
/// before a backend runs anything): in a dry run, an operation that changes state is refused
/// whatever its plan says, and so is any plan that is not a read by its method or by its
/// backend's declaration. `Err` carries what was refused, for the backend's error.
pub fn drill_guard(dry_run: bool, op_writes: bool, plan: &RequestPlan) -> Result<(), String> {
    if !dry_run || (!op_writes && plan.sendable_in_drill()) {
        return Ok(());
    }
    Err(format!("{} {}", plan.method, plan.url))
}

/// The secrets an incident holds in memory while it runs. Nothing here is ever serialized.
#[derive(Default, Clone)]
pub struct SecretBag {
    pub admin: Option<Secret>,
    pub store_credential: Option<Secret>,
    pub old_key: Option<Secret>,
    pub new_key: Option<Secret>,
}

impl std::fmt::Debug for SecretBag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBag")
            .field("admin", &self.admin.as_ref().map(|_| "[REDACTED]"))
            .field(
                "store_credential",
                &self.store_credential.as_ref().map(|_| "[REDACTED]"),
            )
            .field("old_key", &self.old_key.as_ref().map(|_| "[REDACTED]"))
            .field("new_key", &self.new_key.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl SecretBag {
    pub fn get(&self, r: SecretRef) -> Option<&Secret> {
        match r {
            SecretRef::AdminCredential => self.admin.as_ref(),
            SecretRef::StoreCredential => self.store_credential.as_ref(),
            SecretRef::OldKey => self.old_key.as_ref(),
            SecretRef::NewKey => self.new_key.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_secret_labels_not_values() {
        let plan = RequestPlan::write("store", "POST", "http://vault/v1/secret/data/a")
            .secret_header("X-Vault-Token", "", SecretRef::StoreCredential)
            .json(serde_json::json!({"data": {"value": null}, "options": {"cas": 3}}))
            .body_secret("/data/value", SecretRef::NewKey);
        let text = plan.render();
        assert!(text.contains("X-Vault-Token: [store credential]"));
        assert!(text.contains(r#""value":"[new key]""#));
    }

    #[test]
    fn a_drill_sends_get_and_head_reads() {
        for method in ["GET", "HEAD"] {
            let plan = RequestPlan::read("read", method, "http://api/v1/keys");
            assert_eq!(drill_guard(true, false, &plan), Ok(()), "{method}");
        }
    }

    #[test]
    fn a_drill_refuses_a_read_whose_verb_is_not_get_unless_the_backend_declares_it() {
        for method in [
            "POST", "PUT", "PATCH", "DELETE", "SQL", "AWS", "KEYRING", "READ",
        ] {
            let plan = RequestPlan::read("read?", method, "http://api/v1/search");
            let refused = drill_guard(true, false, &plan).unwrap_err();
            assert!(refused.starts_with(method), "{refused}");
            // Outside a drill the same plan goes.
            assert_eq!(drill_guard(false, false, &plan), Ok(()));
            assert_eq!(drill_guard(true, false, &plan.declared_read()), Ok(()));
        }
    }

    #[test]
    fn a_drill_refuses_a_write_operation_whatever_its_plan_says() {
        let get = RequestPlan::read("looks like a read", "GET", "http://api/v1/keys/1");
        assert!(drill_guard(true, true, &get).is_err());
        assert!(drill_guard(true, true, &get.clone().declared_read()).is_err());
        assert_eq!(drill_guard(false, true, &get), Ok(()));
    }

    #[test]
    fn a_write_plan_cannot_be_declared_a_read() {
        let write = RequestPlan::write("delete", "DELETE", "http://api/v1/keys/1").declared_read();
        assert!(!write.read_declared);
        assert!(drill_guard(true, false, &write).is_err());
        let get_write = RequestPlan::write("odd", "GET", "http://api/v1/keys/1");
        assert!(drill_guard(true, false, &get_write).is_err());
    }
}
