//! The one event stream: each agent transition is one [`AgentEvent`]; this module says which
//! event type names each subscription knows it by, and what `data` each name carries.
//!
//! | transition | v1 and `agent:1.0.0` | `agent:2.0.0` |
//! |---|---|---|
//! | login | `agent:login` | `agent:login` |
//! | logout | `agent:logout` | `agent:logout` |
//! | state change | `agent:state_change` | `agent:channel_state_change` and `agent:channelType_state_change` |

use serde_json::Value;

use crate::agents::AgentEvent;
use crate::subscriptions::{ApiVersion, Subscription};

/// The event type names under which `sub` receives `event` (those it subscribed to).
pub fn names_for<'a>(event: &AgentEvent, sub: &'a Subscription) -> Vec<&'a str> {
    let v2_agent = sub.version == ApiVersion::V2 && sub.resource_version.as_deref() == Some("agent:2.0.0");
    let channel_names = ["agent:channel_state_change", "agent:channelType_state_change"];
    let renamed = v2_agent && event.kind == "agent:state_change";
    sub.event_types
        .iter()
        .map(String::as_str)
        .filter(|t| if renamed { channel_names.contains(t) } else { *t == event.kind })
        .collect()
}

/// The `data` of `event` as the type `name` carries it.
pub fn data_for(event: &AgentEvent, name: &str) -> Value {
    let mut data = event.data.clone();
    if name == "agent:channelType_state_change" {
        // This type spells states as the desktop does (Available, Idle).
        if let Some(state) = data.get("currentState").and_then(Value::as_str) {
            let mut chars = state.chars();
            let capitalised: String = chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect();
            data["currentState"] = Value::String(capitalised);
        }
    }
    data
}
