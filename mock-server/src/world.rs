//! The world the mock starts with: organisations, users, roles, teams, sites, idle codes, dial
//! numbers and ready-made tokens. Loaded once (the embedded default, or `--world FILE`), checked
//! for consistency, then read-only; live state lives in [`crate::state`].

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The default world, `fixtures/world.json`, embedded in the binary.
pub const DEFAULT_WORLD: &str = include_str!("../../fixtures/world.json");

/// Role names as WxCC and Control Hub spell them.
pub mod roles {
    /// Contact Center administrator.
    pub const CC_ADMIN: &str = "cjp.admin";
    /// Control Hub full administrator.
    pub const FULL_ADMIN: &str = "id_full_admin";
    /// Control Hub read-only administrator.
    pub const READONLY_ADMIN: &str = "id_readonly_admin";
    /// Contact Center supervisor.
    pub const SUPERVISOR: &str = "cjp.supervisor";
    /// Holds a Contact Center agent licence (may log in as an agent).
    pub const AGENT: &str = "cjp.agent";
}

/// The whole world file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct World {
    /// Organisations, each with its own users and configuration.
    pub orgs: Vec<Org>,
    /// Ready-made tokens (more can be minted with `POST /__admin/tokens`).
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
    /// Rate limits for some organisations, clients or routes, on whether or not `--rate-limit`
    /// is (the first that matches a request applies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitRule>,
}

/// A rate limit for the requests it matches (every field given must match), counted per client
/// id as the real API counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitRule {
    /// The token's organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The token's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A route as the OpenAPI document writes it: `POST /v1/subscriptions`,
    /// `POST /v1/tasks/{id}/accept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Requests per minute per client id; 0: no limit for what it matches.
    pub per_minute: u32,
}

/// One organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Org {
    /// The org uuid (the third `_` segment of its tokens).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The CI cluster, the second `_` segment of its tokens (e.g. `P0A1`).
    pub cluster: String,
    /// Sites.
    #[serde(default)]
    pub sites: Vec<Site>,
    /// Teams.
    #[serde(default)]
    pub teams: Vec<Team>,
    /// Idle (aux) codes; exactly one should be the default.
    #[serde(default)]
    pub aux_codes: Vec<AuxCode>,
    /// Extensions agents may log in with (`deviceType: EXTENSION`).
    #[serde(default)]
    pub dial_numbers: Vec<String>,
    /// Users.
    pub users: Vec<User>,
    /// The Contact Center tenant id (`GET /organization/{orgId}`).
    #[serde(default)]
    pub tenant_id: String,
    /// The tenant's time zone.
    #[serde(default)]
    pub timezone: String,
    /// The environment name, e.g. `produs1`.
    #[serde(default)]
    pub environment: String,
    /// Agent (desktop) profiles, served as they are by `GET /organization/{orgId}/agent-profile/{id}`;
    /// each needs an `id`.
    #[serde(default)]
    pub agent_profiles: Vec<Value>,
    /// Dial plans (`GET /organization/{orgId}/dial-plan`).
    #[serde(default)]
    pub dial_plans: Vec<Value>,
    /// `GET /organization/{orgId}/v2/organization-setting` (`data[0]`).
    #[serde(default)]
    pub organization_settings: Value,
    /// `GET /organization/{orgId}/v2/tenant-configuration` (`data[0]`).
    #[serde(default)]
    pub tenant_configuration: Value,
    /// `GET /organization/{orgId}/v2/org-url-mapping`.
    #[serde(default)]
    pub url_mappings: Vec<Value>,
    /// `GET /organization/{orgId}/v2/ai-feature`.
    #[serde(default)]
    pub ai_features: Vec<Value>,
    /// Queues (contact service queues) that tasks are routed through.
    #[serde(default)]
    pub queues: Vec<Queue>,
    /// Entry points (inbound numbers and chat addresses, and the outbound one outdials use).
    #[serde(default)]
    pub entry_points: Vec<EntryPoint>,
    /// Outdial ANI lists: the numbers an outdial may show as its origin.
    #[serde(default)]
    pub outdial_anis: Vec<OutdialAni>,
}

/// A channel a task comes in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A phone call.
    Telephony,
    /// A web chat.
    Chat,
    /// An email.
    Email,
    /// A social message.
    Social,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [Channel::Telephony, Channel::Chat, Channel::Email, Channel::Social];

    /// The wire spelling (`telephony`, `chat`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Telephony => "telephony",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::Social => "social",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The default RONA timeout: 18 s for a call, 30 s for a digital channel (facts §2.5).
    pub fn default_rona_seconds(self) -> u32 {
        if self == Channel::Telephony { 18 } else { 30 }
    }
}

/// A queue: where tasks wait for an agent of its teams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Queue {
    /// Queue id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The channel it serves.
    pub channel_type: Channel,
    /// The teams whose agents it routes to.
    pub team_ids: Vec<String>,
    /// How long an offer rings before RONA (default: by channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rona_timeout_seconds: Option<u32>,
}

/// An entry point.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryPoint {
    /// Entry point id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The channel.
    pub channel_type: Channel,
    /// `INBOUND` or `OUTBOUND`.
    pub entry_point_type: String,
    /// The number (or chat address) customers reach it on.
    pub address: String,
    /// The queue its flow sends contacts to (inbound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<String>,
}

/// An outdial ANI list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutdialAni {
    /// List id (an agent profile's `outdialANIId`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The numbers.
    pub entries: Vec<OutdialAniEntry>,
}

/// One number an outdial may show.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutdialAniEntry {
    /// Entry id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The number.
    pub number: String,
}

impl Org {
    /// An agent profile by id.
    pub fn agent_profile(&self, id: &str) -> Option<&Value> {
        self.agent_profiles.iter().find(|p| p["id"] == id)
    }

    /// A user's agent profile.
    pub fn profile_of(&self, user: &User) -> Option<&Value> {
        user.agent_profile_id.as_deref().and_then(|id| self.agent_profile(id))
    }

    /// How many tasks of `channel` a user may hold at once: the profile's `channelCapacity`, or
    /// one call and nothing else.
    pub fn capacity(&self, user: &User, channel: Channel) -> u32 {
        let configured = self.profile_of(user).and_then(|p| p["channelCapacity"][channel.as_str()].as_u64());
        match configured {
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
            None if channel == Channel::Telephony => 1,
            None => 0,
        }
    }

    /// Whether a user must wrap up a task when it ends (the profile's `wrapUpRequired`, default yes).
    pub fn wrap_up_required(&self, user: &User) -> bool {
        self.profile_of(user).and_then(|p| p["wrapUpRequired"].as_bool()).unwrap_or(true)
    }

    /// A queue by id.
    pub fn queue(&self, id: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.id == id)
    }

    /// An entry point by id.
    pub fn entry_point(&self, id: &str) -> Option<&EntryPoint> {
        self.entry_points.iter().find(|e| e.id == id)
    }

    /// A system idle code by name (`RONA`, `Agent_Declined`, `Agent_Unavailable`).
    pub fn system_code(&self, name: &str) -> Option<&AuxCode> {
        self.aux_codes.iter().find(|a| a.is_system_code && a.work_type == "IDLE_CODE" && a.name == name)
    }

    /// A user by id.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The default code of a work type (`IDLE_CODE`, `WRAP_UP_CODE`), or its first one.
    pub fn default_code(&self, work_type: &str) -> Option<&AuxCode> {
        let of_type = || self.aux_codes.iter().filter(move |a| a.work_type == work_type);
        of_type().find(|a| a.is_default).or_else(|| of_type().next())
    }
}

/// A site.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Site {
    /// Site id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The site's multimedia profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multimedia_profile_id: Option<String>,
}

/// A team.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Team {
    /// Team id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The site the team belongs to.
    pub site_id: String,
    /// The team's multimedia profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_media_profile_id: Option<String>,
    /// `AGENT` or `CAPACITY`.
    #[serde(default = "agent_team")]
    pub team_type: String,
    /// Whether the team is active.
    #[serde(default = "yes")]
    pub active: bool,
}

fn agent_team() -> String {
    "AGENT".to_owned()
}

fn yes() -> bool {
    true
}

/// An auxiliary code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuxCode {
    /// Aux code id (what `auxCodeId` carries).
    pub id: String,
    /// Display name.
    pub name: String,
    /// `IDLE_CODE` or `WRAP_UP_CODE`.
    pub work_type: String,
    /// The default code of its work type (the idle code an agent gets on login).
    #[serde(default)]
    pub is_default: bool,
    /// Whether the code can be used.
    #[serde(default = "yes")]
    pub active: bool,
    /// A system code (RONA and the like).
    #[serde(default)]
    pub is_system_code: bool,
}

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    /// CI user id (the agent id).
    pub id: String,
    /// Email, unique across the world.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Roles, see [`roles`].
    pub roles: Vec<String>,
    /// Teams the user may log in to.
    #[serde(default)]
    pub team_ids: Vec<String>,
    /// The user's site.
    #[serde(default)]
    pub site_id: Option<String>,
    /// The user's agent (desktop) profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_profile_id: Option<String>,
    /// The dial number the desktop offers by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_dialled_number: Option<String>,
    /// Whether the user's phone answers invites (false: offers of calls fail with
    /// `AgentInviteFailed`); `POST /__admin/agents/{id}/device` changes it at run time.
    #[serde(default = "yes")]
    pub device_reachable: bool,
}

impl User {
    /// Whether the user holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the user holds any of `roles`.
    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        roles.iter().any(|r| self.has_role(r))
    }
}

/// A ready-made token in the world file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenSpec {
    /// `<opaque>_<cluster>_<orgId>`.
    pub access_token: String,
    /// The user it belongs to.
    pub email: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Epoch ms; absent means it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// What the token is for (shown in the README and `/__admin/state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The integration it was issued to, which a rate limit counts by (absent:
    /// [`crate::rate::DEFAULT_CLIENT_ID`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl TokenSpec {
    /// Its name: the opaque part before `_<cluster>_<orgId>` (`admin-full`, `agent2`, ...).
    pub fn name(&self) -> &str {
        self.access_token.split('_').next().unwrap_or_default()
    }
}

/// Why a world file was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// Not readable.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// Not the right JSON: where (`orgs[0].users[3].email`) and why.
    #[error("not a valid world file: at {path}: {error}")]
    Json {
        /// The place at fault, as a path into the document.
        path: String,
        /// What is wrong there (with its line and column).
        error: serde_json::Error,
    },
    /// Parsed, but inconsistent.
    #[error("inconsistent world: {0}")]
    Inconsistent(String),
}

impl World {
    /// Parses and checks a world document.
    pub fn from_json(text: &str) -> Result<World, WorldError> {
        let mut document = serde_json::Deserializer::from_str(text);
        let world: World = serde_path_to_error::deserialize(&mut document)
            .map_err(|e| WorldError::Json { path: e.path().to_string(), error: e.into_inner() })?;
        world.check()?;
        Ok(world)
    }

    /// Reads and checks a world file.
    pub fn from_file(path: &Path) -> Result<World, WorldError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| WorldError::Io { path: path.display().to_string(), error })?;
        World::from_json(&text)
    }

    /// The ready-made token named `name` (see [`TokenSpec::name`]).
    pub fn token_named(&self, name: &str) -> Option<&TokenSpec> {
        self.tokens.iter().find(|t| t.name() == name)
    }

    /// The embedded default world.
    pub fn default_world() -> World {
        World::from_json(DEFAULT_WORLD).unwrap_or_else(|e| panic!("fixtures/world.json: {e}"))
    }

    /// Finds a user by email (case-insensitive), with their organisation.
    pub fn user_by_email(&self, email: &str) -> Option<(&Org, &User)> {
        let (org, user) = self.user_position(email)?;
        let org = &self.orgs[org];
        Some((org, &org.users[user]))
    }

    /// Where a user is, by email (case-insensitive): their organisation's index in `orgs` and
    /// theirs in its `users`, as a token's record keeps them.
    pub fn user_position(&self, email: &str) -> Option<(usize, usize)> {
        self.orgs
            .iter()
            .enumerate()
            .find_map(|(oi, o)| o.users.iter().position(|u| u.email.eq_ignore_ascii_case(email)).map(|ui| (oi, ui)))
    }

    /// Finds an organisation by id.
    pub fn org(&self, org_id: &str) -> Option<&Org> {
        self.orgs.iter().find(|o| o.id == org_id)
    }

    fn check(&self) -> Result<(), WorldError> {
        let bad = |msg: String| Err(WorldError::Inconsistent(msg));
        for (i, rule) in self.rate_limits.iter().enumerate() {
            if let Some(org) = &rule.org_id
                && !self.orgs.iter().any(|o| &o.id == org)
            {
                return bad(format!("rateLimits[{i}]: no organisation {org}"));
            }
            if let Some(route) = &rule.route {
                let fits = route.split_once(' ').is_some_and(|(method, path)| {
                    matches!(method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE") && path.starts_with('/')
                });
                if !fits {
                    return bad(format!(
                        "rateLimits[{i}]: route {route:?} is written METHOD /path, e.g. POST /v1/subscriptions"
                    ));
                }
            }
        }
        let mut emails = HashMap::new();
        let mut org_ids = HashMap::new();
        for org in &self.orgs {
            if uuid::Uuid::parse_str(&org.id).is_err() {
                return bad(format!("org id {} is not a uuid", org.id));
            }
            if org_ids.insert(org.id.as_str(), ()).is_some() {
                return bad(format!("org id {} appears twice", org.id));
            }
            if org.cluster.is_empty() || !org.cluster.chars().all(|c| c.is_ascii_alphanumeric()) {
                return bad(format!("org {}: cluster must be letters and digits", org.id));
            }
            for work_type in ["IDLE_CODE", "WRAP_UP_CODE"] {
                if org.aux_codes.iter().filter(|a| a.is_default && a.work_type == work_type).count() > 1 {
                    return bad(format!("org {}: more than one default {work_type}", org.id));
                }
            }
            if let Some(a) =
                org.aux_codes.iter().find(|a| !["IDLE_CODE", "WRAP_UP_CODE"].contains(&a.work_type.as_str()))
            {
                return bad(format!("aux code {}: workType must be IDLE_CODE or WRAP_UP_CODE", a.id));
            }
            if org.agent_profiles.iter().any(|p| !p["id"].is_string()) {
                return bad(format!("org {}: every agent profile needs a string id", org.id));
            }
            for team in &org.teams {
                if !org.sites.iter().any(|s| s.id == team.site_id) {
                    return bad(format!("team {} names unknown site {}", team.id, team.site_id));
                }
            }
            for queue in &org.queues {
                for team in &queue.team_ids {
                    if !org.teams.iter().any(|t| &t.id == team) {
                        return bad(format!("org {}: queue {} names unknown team {team}", org.id, queue.name));
                    }
                }
            }
            for ep in &org.entry_points {
                if let Some(queue) = &ep.queue_id
                    && org.queue(queue).is_none()
                {
                    return bad(format!("org {}: entry point {} names unknown queue {queue}", org.id, ep.name));
                }
                if !["INBOUND", "OUTBOUND"].contains(&ep.entry_point_type.as_str()) {
                    return bad(format!(
                        "org {}: entry point {}: entryPointType must be INBOUND or OUTBOUND",
                        org.id, ep.name
                    ));
                }
            }
            if !org.queues.is_empty() {
                for name in ["RONA", "Agent_Declined", "Agent_Unavailable"] {
                    if org.system_code(name).is_none() {
                        return bad(format!(
                            "org {}: it has queues, so it needs a system idle code named {name} (workType IDLE_CODE, isSystemCode true) for failed offers",
                            org.id
                        ));
                    }
                }
            }
            for user in &org.users {
                if emails.insert(user.email.to_ascii_lowercase(), ()).is_some() {
                    return bad(format!("email {} appears twice", user.email));
                }
                for team in &user.team_ids {
                    if !org.teams.iter().any(|t| &t.id == team) {
                        return bad(format!("user {} names unknown team {team}", user.email));
                    }
                }
                if let Some(profile) = &user.agent_profile_id
                    && org.agent_profile(profile).is_none()
                {
                    return bad(format!("user {} names unknown agent profile {profile}", user.email));
                }
            }
        }
        for token in &self.tokens {
            let Some((org, _)) = self.user_by_email(&token.email) else {
                return bad(format!("token for unknown user {}", token.email));
            };
            let expected_suffix = format!("_{}_{}", org.cluster, org.id);
            let opaque = token.access_token.strip_suffix(&expected_suffix);
            if opaque.is_none_or(|o| o.is_empty() || o.contains('_')) {
                return bad(format!("token {} must have the shape <opaque>{expected_suffix}", token.access_token));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_found_by_email_in_any_case_and_in_any_organisation() {
        let world = World::default_world();
        assert_eq!(world.user_position("AGENT1@globex.example"), Some((1, 1)));
        assert_eq!(world.user_position("agent2@wxcc.example"), Some((0, 3)));
        assert_eq!(world.user_position("nobody@wxcc.example"), None);
        let (org, user) = world.user_by_email("Agent1@Globex.Example").expect("the globex agent");
        assert_eq!(
            (org.id.as_str(), user.email.as_str()),
            ("f8c8b37f-12c0-41f3-9fed-11ae3b18fd04", "agent1@globex.example")
        );
    }

    #[test]
    fn the_default_world_loads_and_has_the_forum_case_token() {
        let world = World::default_world();
        assert_eq!(world.orgs.len(), 2);
        let forum = world
            .tokens
            .iter()
            .find(|t| t.email == "agent1@wxcc.example" && t.scopes.iter().any(|s| s == "cjp:config_write"))
            .expect("the forum-case token");
        let (_, user) = world.user_by_email(&forum.email).expect("user");
        assert!(!user.has_any_role(&[roles::CC_ADMIN, roles::FULL_ADMIN]));
    }

    #[test]
    fn a_token_whose_org_segment_does_not_match_its_user_is_refused() {
        let mut world = World::default_world();
        let other_org = world.orgs[1].id.clone();
        world.tokens[0].access_token = format!("abc_P0A1_{other_org}");
        let text = serde_json::to_string(&world).expect("serialises");
        let err = World::from_json(&text).expect_err("must be refused");
        assert!(err.to_string().contains("must have the shape"), "{err}");
    }

    #[test]
    fn unknown_fields_in_a_world_file_are_refused() {
        let err = World::from_json(r#"{"orgs": [], "tokenz": []}"#).expect_err("typo");
        assert!(err.to_string().contains("tokenz"), "{err}");
    }
}
