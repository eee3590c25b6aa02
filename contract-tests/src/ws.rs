//! A real websocket client for the notification socket: every message it hands a test has been
//! checked against the schema of its type.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wxcc_schemas::SchemaId;

use crate::TestApp;

type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for a message before failing (a safety net, not a pause).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One connected notification websocket.
#[derive(Debug)]
pub struct Ws {
    stream: Stream,
    /// The agent id the Welcome message named.
    pub agent_id: String,
}

/// What the socket said next.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A JSON text message (checked against its schema).
    Json(Value),
    /// A close frame: code and reason.
    Closed(u16, String),
}

/// The schema a notification message must match, by its types.
pub fn schema_of(message: &Value) -> Option<SchemaId> {
    if message.get("keepalive").is_some() {
        return Some(SchemaId::WsKeepalive);
    }
    let outer = message["type"].as_str().unwrap_or_default();
    let inner = message["data"]["type"].as_str().unwrap_or_default();
    match (outer, inner) {
        ("Welcome", _) => Some(SchemaId::WsWelcome),
        ("AGENT_MULTI_LOGIN", _) => Some(SchemaId::WsAgentMultiLogin),
        (_, "AgentStationLoginSuccess") => Some(SchemaId::WsStationLoginSuccess),
        (_, "AgentReloginSuccess") => Some(SchemaId::WsReloginSuccess),
        (_, "AgentStateChangeSuccess") => Some(SchemaId::WsStateChangeSuccess),
        (_, "AgentLogoutSuccess") => Some(SchemaId::WsLogoutSuccess),
        (_, "BuddyAgents") => Some(SchemaId::WsBuddyAgents),
        ("RoutingMessage", t) => routing_schema(t),
        (_, t) if t.ends_with("Failed") => Some(SchemaId::WsAgentFailure),
        _ => None,
    }
}

/// The schema of a task message (outer type `RoutingMessage`), by its `data.type`.
fn routing_schema(kind: &str) -> Option<SchemaId> {
    Some(match kind {
        "AgentContactReserved" => SchemaId::WsAgentContactReserved,
        "AgentOfferContact" => SchemaId::WsAgentOfferContact,
        "AgentContactAssigned" => SchemaId::WsAgentContactAssigned,
        "AgentContactHeld" => SchemaId::WsAgentContactHeld,
        "AgentContactUnheld" => SchemaId::WsAgentContactUnheld,
        "ContactEnded" => SchemaId::WsContactEnded,
        "AgentWrapup" => SchemaId::WsAgentWrapup,
        "AgentWrappedUp" => SchemaId::WsAgentWrappedUp,
        "AgentOfferContactRona" => SchemaId::WsAgentOfferContactRona,
        "AgentInviteFailed" => SchemaId::WsAgentInviteFailed,
        "AgentVteamTransferred" => SchemaId::WsAgentVteamTransferred,
        "AgentBlindTransferred" => SchemaId::WsAgentBlindTransferred,
        "AgentContact" => SchemaId::WsAgentContact,
        "AgentContactAssignFailed" => SchemaId::WsAgentContactAssignFailed,
        "AgentOutboundFailed" => SchemaId::WsAgentOutboundFailed,
        t if t.ends_with("Failed") => SchemaId::WsTaskFailure,
        _ => return None,
    })
}

impl Ws {
    /// Subscribes with `token` and `body` (200 expected) and connects; reads the Welcome.
    pub async fn open(app: &TestApp, token: &str, body: &Value) -> Ws {
        let reply = app
            .post("/v1/notification/subscribe")
            .bearer(token)
            .json(body)
            .send()
            .await
            .expect(200, Some(SchemaId::NotificationSubscribeResponse));
        let url = reply.body["webSocketUrl"].as_str().expect("webSocketUrl").to_owned();
        let mut ws = Ws::connect(&url).await.expect("the websocket connects");
        let welcome = ws.next().await;
        assert_eq!(welcome["type"], "Welcome", "the first message is Welcome: {welcome}");
        ws.agent_id = welcome["data"]["agentId"].as_str().unwrap_or_default().to_owned();
        ws
    }

    /// Connects to a URL (without reading anything).
    pub async fn connect(url: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let (stream, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Ws { stream, agent_id: String::new() })
    }

    /// The next frame, keepalives included.
    pub async fn frame(&mut self) -> Frame {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.stream.next()).await.expect("a frame in time");
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    match schema_of(&value) {
                        Some(schema) => {
                            if let Err(v) = wxcc_schemas::validate(schema, &value) {
                                panic!("message breaks {schema}: {v:?}\n{value}");
                            }
                        }
                        None => panic!("a message of no known type: {value}"),
                    }
                    return Frame::Json(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return frame.map_or(Frame::Closed(1005, String::new()), |f| {
                        Frame::Closed(f.code.into(), f.reason.to_string())
                    });
                }
                None | Some(Err(_)) => return Frame::Closed(1006, String::new()),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next JSON message that is not a keepalive.
    pub async fn next(&mut self) -> Value {
        loop {
            match self.frame().await {
                Frame::Json(v) if v.get("keepalive").is_some() => {}
                Frame::Json(v) => return v,
                Frame::Closed(code, reason) => panic!("the socket closed ({code} {reason})"),
            }
        }
    }

    /// Sends `{"keepalive":"true"}`.
    pub async fn keepalive(&mut self) {
        self.stream.send(Message::Text(json!({"keepalive": "true"}).to_string().into())).await.expect("send");
    }

    /// Skips keepalives until the socket closes; returns the close code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            match self.frame().await {
                Frame::Json(v) if v.get("keepalive").is_some() => {}
                Frame::Json(v) => panic!("expected the socket to close, got {v}"),
                Frame::Closed(code, _) => return code,
            }
        }
    }
}
