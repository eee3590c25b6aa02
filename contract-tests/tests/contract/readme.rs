//! The README's tour must stay true: every token it shows exists in the default world, with the
//! user it names.

use wxcc_contract_tests::TestApp;

const README: &str = include_str!("../../../README.md");

#[test]
fn every_token_in_the_readme_is_a_world_token() {
    let app = TestApp::new();
    let known: Vec<&str> = app.world().tokens.iter().map(|t| t.access_token.as_str()).collect();
    let shown: Vec<&str> = README
        .split(|c: char| c == '`' || c == '"' || c.is_whitespace())
        .filter(|w| w.contains("_P0A") && !w.contains('$'))
        .collect();
    assert!(shown.len() >= 8, "the README lists the world's tokens: {shown:?}");
    for token in shown {
        assert!(known.contains(&token), "README shows {token}, which the world does not have");
    }
}

#[test]
fn the_tours_ids_are_the_worlds() {
    let app = TestApp::new();
    let org = &app.world().orgs[0];
    assert!(README.contains(&format!("ORG={}", org.id)));
    let sales = org.teams.iter().find(|t| t.name == "Sales").expect("Sales team");
    assert!(README.contains(&format!("TEAM={}", sales.id)));
    let support = org.teams.iter().find(|t| t.name == "Support").expect("Support team");
    assert!(README.contains(&format!("SUPPORT={}", support.id)));
    let voice = org.queues.iter().find(|q| q.name == "Support Voice").expect("Support Voice");
    assert!(README.contains(&format!("SUPPORT_VOICE={}", voice.id)));
    let resolved =
        org.aux_codes.iter().find(|a| a.name == "Resolved" && a.work_type == "WRAP_UP_CODE").expect("Resolved");
    assert!(README.contains(&format!("RESOLVED={}", resolved.id)));
    for token in ["forum-case-agent1", "admin-full"] {
        assert!(README.contains(&format!("\"{token}_P0A1_$ORG\"")), "{token}");
    }
}
