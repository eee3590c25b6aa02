//! Who is calling, and may they do this?
//!
//! The order is the real API's: a missing or malformed `Authorization` header is **400**; an
//! unknown or expired token is **401**; a missing scope *or* a missing role is **403**; only then
//! is the body looked at. The [`Operation`] table is the one place that says what each endpoint
//! needs; every refusal comes with a diagnostic sentence naming the user, what the operation
//! needs and what is missing.

use std::sync::Arc;

use crate::world::{Org, User, World, roles};

/// Every WxCC operation the mock serves, with what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /v1/agents/login`
    AgentLogin,
    /// `PUT|POST /v1/agents/logout`
    AgentLogout,
    /// `PUT /v1/agents/session/state`
    AgentStateChange,
    /// `POST /v1/agents/reload`
    AgentReload,
    /// `POST /v1/agents/buddyList`
    AgentBuddyList,
    /// `POST /v1/notification/subscribe`
    NotificationSubscribe,
    /// `POST /v1/subscriptions`
    SubscriptionCreate,
    /// `GET /v1/subscriptions`
    SubscriptionList,
    /// `GET /v1/subscriptions/{id}`
    SubscriptionGet,
    /// `PATCH /v1/subscriptions/{id}`
    SubscriptionUpdate,
    /// `DELETE /v1/subscriptions/{id}`
    SubscriptionDelete,
    /// `GET /v1/event-types`
    EventTypesList,
    /// `GET /organization/{orgId}/...`: the configuration the agent desktop reads.
    ConfigRead,
    /// `POST /v1/tasks/{id}/...`: call control (accept, hold, end, wrap-up, ...).
    TaskControl,
    /// `POST /v1/tasks`: an outdial.
    TaskCreate,
    /// `GET /v1/tasks`: the task search.
    TaskSearch,
}

/// How the scope and the roles of a [`Requirement`] combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The scope alone.
    Scope,
    /// The scope and one of the roles (subscriptions: "requires an administrator role and the
    /// appropriate cjp:config_read or cjp:config_write scopes").
    ScopeAndRole,
    /// The scope or one of the roles (logout: the spec lists scope and roles in one list).
    ScopeOrRole,
    /// The scope, or `cjp:user` for an agent's view of its own configuration.
    ScopeOrAgentView,
    /// The scope or the other one (`alt_scope`).
    EitherScope,
}

/// What an operation needs.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    /// The OAuth scope.
    pub scope: &'static str,
    /// Roles that satisfy the role part (empty for [`Rule::Scope`]).
    pub roles: &'static [&'static str],
    /// How they combine.
    pub rule: Rule,
    /// How the diagnostic names the roles, e.g. "an administrator role".
    pub role_label: &'static str,
    /// The other scope of [`Rule::EitherScope`] (empty otherwise).
    pub alt_scope: &'static str,
}

const ADMIN_WRITE: &[&str] = &[roles::CC_ADMIN, roles::FULL_ADMIN];
const ADMIN_READ: &[&str] = &[roles::CC_ADMIN, roles::FULL_ADMIN, roles::READONLY_ADMIN];
const LOGOUT_ROLES: &[&str] = &[
    roles::FULL_ADMIN,
    roles::READONLY_ADMIN,
    "atlas-portal.partner.salesadmin",
    roles::CC_ADMIN,
    roles::SUPERVISOR,
    "atlas-portal.partner.provision_admin",
];
const SUBSCRIBE_ROLES: &[&str] = &[
    roles::FULL_ADMIN,
    roles::READONLY_ADMIN,
    "atlas-portal.partner.salesadmin",
    roles::SUPERVISOR,
    roles::CC_ADMIN,
    "atlas-portal.partner.provision_admin",
    "cloud-contact-center:pod_conv",
];
/// Roles that may act on another agent (`agentId` in logout and state change).
pub const ACT_FOR_OTHERS: &[&str] = &[roles::SUPERVISOR, roles::CC_ADMIN, roles::FULL_ADMIN];

impl Operation {
    /// Every operation.
    pub const ALL: &'static [Operation] = &[
        Operation::AgentLogin,
        Operation::AgentLogout,
        Operation::AgentStateChange,
        Operation::AgentReload,
        Operation::AgentBuddyList,
        Operation::NotificationSubscribe,
        Operation::SubscriptionCreate,
        Operation::SubscriptionList,
        Operation::SubscriptionGet,
        Operation::SubscriptionUpdate,
        Operation::SubscriptionDelete,
        Operation::EventTypesList,
        Operation::ConfigRead,
        Operation::TaskControl,
        Operation::TaskCreate,
        Operation::TaskSearch,
    ];

    /// What the operation does, as a diagnostic says it ("may not create a subscription").
    pub fn summary(self) -> &'static str {
        match self {
            Operation::AgentLogin => "log in as an agent",
            Operation::AgentLogout => "log an agent out",
            Operation::AgentStateChange => "change an agent's state",
            Operation::AgentReload => "reload an agent session",
            Operation::AgentBuddyList => "list buddy agents",
            Operation::NotificationSubscribe => "subscribe to agent notifications",
            Operation::SubscriptionCreate => "create a subscription",
            Operation::SubscriptionList => "list subscriptions",
            Operation::SubscriptionGet => "read a subscription",
            Operation::SubscriptionUpdate => "update a subscription",
            Operation::SubscriptionDelete => "delete a subscription",
            Operation::EventTypesList => "list event types",
            Operation::ConfigRead => "read the contact center configuration",
            Operation::TaskControl => "control a task",
            Operation::TaskCreate => "start an outdial",
            Operation::TaskSearch => "search tasks",
        }
    }

    /// The requirement table (facts §2.3).
    pub fn requirement(self) -> Requirement {
        let scope_only = |scope| Requirement { scope, roles: &[], rule: Rule::Scope, role_label: "", alt_scope: "" };
        let either =
            |scope, alt_scope| Requirement { scope, roles: &[], rule: Rule::EitherScope, role_label: "", alt_scope };
        match self {
            Operation::AgentLogin
            | Operation::AgentStateChange
            | Operation::AgentReload
            | Operation::AgentBuddyList
            | Operation::TaskCreate => scope_only("cjp:user"),
            Operation::TaskControl => either("cjp:user", "cloud-contact-center:pod_conv"),
            Operation::TaskSearch => either("cjp:config_read", "cjp:config"),
            Operation::NotificationSubscribe => Requirement {
                scope: "cjp:user",
                roles: SUBSCRIBE_ROLES,
                rule: Rule::ScopeOrRole,
                role_label: "an administrator or supervisor role",
                alt_scope: "",
            },
            Operation::AgentLogout => Requirement {
                scope: "cjp:user",
                roles: LOGOUT_ROLES,
                rule: Rule::ScopeOrRole,
                role_label: "an administrator or supervisor role",
                alt_scope: "",
            },
            Operation::SubscriptionCreate | Operation::SubscriptionUpdate | Operation::SubscriptionDelete => {
                Requirement {
                    scope: "cjp:config_write",
                    roles: ADMIN_WRITE,
                    rule: Rule::ScopeAndRole,
                    role_label: "an administrator role",
                    alt_scope: "",
                }
            }
            Operation::SubscriptionList | Operation::SubscriptionGet | Operation::EventTypesList => Requirement {
                scope: "cjp:config_read",
                roles: ADMIN_READ,
                rule: Rule::ScopeAndRole,
                role_label: "an administrator role",
                alt_scope: "",
            },
            Operation::ConfigRead => Requirement {
                scope: "cjp:config_read",
                roles: &[],
                rule: Rule::ScopeOrAgentView,
                role_label: "",
                alt_scope: "",
            },
        }
    }
}

/// A token the mock knows (from the world file or minted by `/__admin/tokens`).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Index of the user's organisation in [`World::orgs`].
    pub org: usize,
    /// Index of the user in that organisation.
    pub user: usize,
    /// The token's scopes.
    pub scopes: Arc<[String]>,
    /// Epoch ms; `None` never expires.
    pub expires_at: Option<i64>,
    /// The integration it was issued to (what a rate limit counts by).
    pub client_id: Arc<str>,
}

/// A token's client id: the one it names, or the default (one allocation shared by every token
/// that names none, rather than one per minted token).
pub fn client_id(named: Option<&str>) -> Arc<str> {
    static DEFAULT: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| crate::rate::DEFAULT_CLIENT_ID.into());
    match named.filter(|c| !c.is_empty()) {
        Some(client) => client.into(),
        None => DEFAULT.clone(),
    }
}

/// The caller, once the token checks out (for as long as the world it was found in is
/// borrowed: an exchange's).
#[derive(Debug, Clone)]
pub struct Identity<'w> {
    world: &'w World,
    record: crate::state::Held<'w>,
}

impl<'w> Identity<'w> {
    /// Builds an identity from a known token.
    pub fn new(world: &'w World, record: crate::state::Held<'w>) -> Identity<'w> {
        Identity { world, record }
    }

    /// The integration the caller's token was issued to.
    pub fn client_id(&self) -> &Arc<str> {
        &self.record.client_id
    }

    /// Index of the caller's organisation in [`World::orgs`].
    pub fn org_index(&self) -> usize {
        self.record.org
    }

    /// The caller's organisation.
    pub fn org(&self) -> &Org {
        &self.world.orgs[self.record.org]
    }

    /// The calling user.
    pub fn user(&self) -> &User {
        &self.org().users[self.record.user]
    }

    /// The token's scopes.
    pub fn scopes(&self) -> &[String] {
        &self.record.scopes
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().iter().any(|s| s == scope)
    }

    /// Checks the requirement of `op`.
    pub fn authorize(&self, op: Operation) -> Result<(), Forbidden> {
        let req = op.requirement();
        let scope_ok = self.has_scope(req.scope);
        let role_ok = self.user().has_any_role(req.roles);
        let allowed = match req.rule {
            Rule::Scope => scope_ok,
            Rule::ScopeAndRole => scope_ok && role_ok,
            Rule::ScopeOrRole => scope_ok || role_ok,
            Rule::ScopeOrAgentView => scope_ok || self.has_scope("cjp:user"),
            Rule::EitherScope => scope_ok || self.has_scope(req.alt_scope),
        };
        if allowed {
            return Ok(());
        }
        let missing = match (req.rule, scope_ok, role_ok) {
            (Rule::ScopeAndRole, true, false) => Missing::Role,
            (Rule::ScopeAndRole, false, true) => Missing::Scope,
            (Rule::ScopeAndRole, false, false) | (Rule::ScopeOrRole, _, _) => Missing::ScopeAndRole,
            _ => Missing::Scope,
        };
        Err(Forbidden { operation: op, missing, explanation: self.explain(op, scope_ok, role_ok) })
    }

    fn explain(&self, op: Operation, scope_ok: bool, role_ok: bool) -> String {
        let req = op.requirement();
        let who = &self.user().email;
        let scopes = list(self.scopes());
        let user_roles = list(&self.user().roles);
        let roles_named = req.roles.join(" or ");
        match req.rule {
            Rule::Scope => format!(
                "{who} may not {}: it needs the scope {} and the token lacks it (the token has {scopes}).",
                op.summary(),
                req.scope
            ),
            Rule::ScopeOrRole => format!(
                "{who} may not {}: it needs the scope {} or {} ({roles_named}); the token lacks the scope (it has {scopes}) and the user has no such role (roles: {user_roles}).",
                op.summary(),
                req.scope,
                req.role_label
            ),
            Rule::ScopeOrAgentView => format!(
                "{who} may not {}: it needs the scope {}, or cjp:user for an agent's own view, and the token has neither (it has {scopes}).",
                op.summary(),
                req.scope
            ),
            Rule::EitherScope => format!(
                "{who} may not {}: it needs the scope {} or {}, and the token has neither (it has {scopes}).",
                op.summary(),
                req.scope,
                req.alt_scope
            ),
            Rule::ScopeAndRole => {
                let needs = format!(
                    "{who} may not {}: it needs the scope {} and {} ({roles_named})",
                    op.summary(),
                    req.scope,
                    req.role_label
                );
                match (scope_ok, role_ok) {
                    (true, false) => format!(
                        "{needs}. The token's scopes are fine (it has {}), but the user has no administrator role: their roles are {user_roles}. Scopes alone are not enough; the token must belong to an administrator.",
                        req.scope
                    ),
                    (false, true) => format!(
                        "{needs}. The user's role is fine, but the token lacks the scope {} (it has {scopes}).",
                        req.scope
                    ),
                    _ => format!(
                        "{needs}. The token lacks the scope {} (it has {scopes}) and the user has no administrator role (roles: {user_roles}).",
                        req.scope
                    ),
                }
            }
        }
    }
}

/// What a refused caller lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The token lacks the scope.
    Scope,
    /// The user lacks the role.
    Role,
    /// Both (or, for an either-or rule, each).
    ScopeAndRole,
}

/// A 403: the operation, what is missing, and the diagnostic sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{explanation}")]
pub struct Forbidden {
    /// What was asked.
    pub operation: Operation,
    /// What the caller lacks.
    pub missing: Missing,
    /// The sentence `X-Wxcc-Mock-Diagnostic` carries.
    pub explanation: String,
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

/// Why authentication failed, before any identity is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// 400: no `Authorization` header, or not `Bearer <token>`.
    BadHeader(String),
    /// 401: a token the mock does not know, or an expired one.
    BadToken(String),
}

/// Extracts the bearer token from an `Authorization` header value (400 cases).
pub fn bearer_token(header: Option<&[u8]>) -> Result<&str, AuthFailure> {
    let Some(raw) = header else {
        return Err(AuthFailure::BadHeader(
            "The request has no Authorization header; every WxCC call needs 'Authorization: Bearer <token>' (a missing header is 400, not 401).".into(),
        ));
    };
    // Every request comes this way: the usual `Bearer <token>` is read with byte checks alone;
    // anything else takes the long way, which says what is wrong.
    match plain_bearer(raw) {
        Some(token) => Ok(token),
        None => any_authorization(raw),
    }
}

/// [`bearer_token`] for any header: surrounding spaces tolerated, and what is wrong explained.
fn any_authorization(raw: &[u8]) -> Result<&str, AuthFailure> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| AuthFailure::BadHeader("The Authorization header is not valid text.".into()))?;
    let mut parts = text.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let token = parts.next().map(str::trim).unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("bearer") {
        let shown: String = scheme.chars().filter(char::is_ascii_alphanumeric).take(16).collect();
        return Err(AuthFailure::BadHeader(format!(
            "The Authorization header must be 'Bearer <token>', but its scheme is '{shown}'."
        )));
    }
    if token.is_empty() || token.contains(' ') {
        return Err(AuthFailure::BadHeader(
            "The Authorization header says Bearer but carries no single token after it.".into(),
        ));
    }
    Ok(token)
}

/// The token of `Bearer <token>` (any case of `Bearer`, one space, a token of visible ASCII),
/// or `None` for anything else.
fn plain_bearer(raw: &[u8]) -> Option<&str> {
    let (scheme, token) = raw.split_at_checked(7)?;
    if !scheme[..6].eq_ignore_ascii_case(b"bearer") || scheme[6] != b' ' || token.is_empty() {
        return None;
    }
    // Visible ASCII (`!` to `~`), tested without a branch per byte.
    if !token.iter().fold(true, |visible, &b| visible & (b.wrapping_sub(b'!') < b'~' - b'!' + 1)) {
        return None;
    }
    std::str::from_utf8(token).ok()
}

/// Explains a token the mock does not know (401).
pub fn unknown_token(token: &str) -> AuthFailure {
    let parts: Vec<&str> = token.split('_').collect();
    let shape = if parts.len() == 3 && uuid::Uuid::parse_str(parts[2]).is_ok() {
        format!(
            "it has the right shape <opaque>_<cluster>_<orgId> (org {}), but it is neither in the world file nor minted by POST /__admin/tokens",
            parts[2]
        )
    } else {
        "it does not even have the shape <opaque>_<cluster>_<orgId> of a WxCC token".to_owned()
    };
    AuthFailure::BadToken(format!(
        "The bearer token is not valid: {shape}. Mint one with POST /__admin/tokens or use one listed by GET /__admin/state."
    ))
}

/// Explains an expired token (401).
pub fn expired_token(user: &User, expires_at: i64, now: i64) -> AuthFailure {
    let ago = (now - expires_at) / 1000;
    AuthFailure::BadToken(format!(
        "The token of {} expired {ago} s ago (expiresAt {expires_at} epoch ms); mint a fresh one with POST /__admin/tokens.",
        user.email
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_non_bearer_header_is_a_header_problem() {
        assert!(matches!(bearer_token(None), Err(AuthFailure::BadHeader(_))));
        assert!(matches!(bearer_token(Some(b"Basic abc")), Err(AuthFailure::BadHeader(_))));
        assert!(matches!(bearer_token(Some(b"Bearer ")), Err(AuthFailure::BadHeader(_))));
        assert!(matches!(bearer_token(Some(b"Bearer a b")), Err(AuthFailure::BadHeader(_))));
        assert_eq!(bearer_token(Some(b"bearer abc_P0A1_x")), Ok("abc_P0A1_x"));
        // The short way agrees with the long one wherever it answers, and leaves the rest to it.
        for raw in [
            &b"Bearer abc"[..],
            b"BEARER abc",
            b"Bearer  abc",
            b"Bearer abc ",
            b" Bearer abc",
            b"Bearer a\tb",
            b"Bearer \xe9t\xe9",
            b"Bearer",
            b"Bearer ",
            b"Bearerabc",
            b"Bearer\tabc",
            b"Basic abc",
        ] {
            if let Some(token) = plain_bearer(raw) {
                assert_eq!(any_authorization(raw), Ok(token), "{raw:?}");
            }
            assert_eq!(bearer_token(Some(raw)), any_authorization(raw), "{raw:?}");
        }
        assert_eq!(plain_bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(plain_bearer(b"Bearer  abc"), None, "the long way trims");
    }

    #[test]
    fn every_operation_has_a_requirement_whose_roles_fit_its_rule() {
        for op in Operation::ALL {
            let req = op.requirement();
            let needs_roles = matches!(req.rule, Rule::ScopeAndRole | Rule::ScopeOrRole);
            assert_eq!(needs_roles, !req.roles.is_empty(), "{op:?}");
            assert!(req.scope.starts_with("cjp:"), "{op:?}");
            assert_eq!(req.rule == Rule::EitherScope, !req.alt_scope.is_empty(), "{op:?}");
        }
    }
}
