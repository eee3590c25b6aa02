//! Where the mock accepts what the contract does not allow, because the real API does (facts
//! §12). Every such deviation is still recorded as a violation (`GET /__admin/violations`), and
//! `serve --strict` refuses them.
//!
//! | schema | what is accepted | why |
//! |---|---|---|
//! | agent-login-request | `roles` in any casing (`"Agent"`) | Cisco's samples and Postman collection send it |
//! | agent-login-request | `isExtension` as `"true"`/`"false"` | Cisco's form-based sample sends strings |

use serde_json::Value;
use wxcc_schemas::{SchemaId, Violation};

/// Whether the real API accepts a request despite `violation`.
pub fn tolerated(schema: SchemaId, violation: &Violation, body: &Value) -> bool {
    let value = body.pointer(&violation.pointer).and_then(Value::as_str);
    match (schema, violation.rule.as_str()) {
        (SchemaId::AgentLoginRequest, "enum") if violation.pointer.starts_with("/roles/") => {
            value.is_some_and(|role| ["agent", "supervisor"].contains(&role.to_ascii_lowercase().as_str()))
        }
        (SchemaId::AgentLoginRequest, "type") if violation.pointer == "/isExtension" => {
            matches!(value, Some("true" | "false"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_documented_deviations_are_tolerated() {
        let body = json!({"dialNumber": "1", "teamId": "t", "roles": ["Agent", "boss"], "isExtension": "yes"});
        let violations = wxcc_schemas::validate(SchemaId::AgentLoginRequest, &body).expect_err("invalid");
        let verdicts: Vec<(String, bool)> =
            violations.iter().map(|v| (v.pointer.clone(), tolerated(SchemaId::AgentLoginRequest, v, &body))).collect();
        assert_eq!(
            verdicts,
            vec![("/isExtension".into(), false), ("/roles/0".into(), true), ("/roles/1".into(), false)]
        );
    }
}
