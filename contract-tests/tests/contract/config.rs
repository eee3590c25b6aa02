//! `/organization/{orgId}/...`: the configuration Cisco's SDK reads in `register()`, served
//! from the world, in the config services' envelopes.

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_mock::World;
use wxcc_schemas::SchemaId;

const ME: &str = "agent2@wxcc.example";

fn org(app: &TestApp) -> String {
    app.org_of(ME)
}

#[tokio::test]
async fn an_agent_reads_everything_register_needs_with_cjp_user() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let org = org(&app);
    let world_org = &app.world().orgs[0];
    let (_, me) = app.world().user_by_email(ME).expect("user");
    let profile = me.agent_profile_id.clone().expect("profile");
    let site = me.site_id.clone().expect("site");
    let teams = me.team_ids.join(",");
    let calls: Vec<(String, SchemaId)> = vec![
        (format!("/organization/{org}/user/by-ci-user-id/{}", me.id), SchemaId::ConfigUser),
        (format!("/organization/{org}"), SchemaId::ConfigOrganization),
        (
            format!("/organization/{org}/v2/organization-setting?agentView=true"),
            SchemaId::ConfigOrganizationSettingList,
        ),
        (
            format!("/organization/{org}/v2/tenant-configuration?agentView=true"),
            SchemaId::ConfigTenantConfigurationList,
        ),
        (format!("/organization/{org}/v2/org-url-mapping?sort=name,ASC"), SchemaId::ConfigUrlMappingList),
        (format!("/organization/{org}/v2/ai-feature?page=0&pageSize=100"), SchemaId::ConfigAiFeaturePage),
        (
            format!(
                "/organization/{org}/v2/auxiliary-code?page=0&pageSize=100&attributes=id,isSystemCode,name,defaultCode,workTypeCode,active"
            ),
            SchemaId::ConfigAuxiliaryCodePage,
        ),
        (format!("/organization/{org}/agent-profile/{profile}"), SchemaId::ConfigAgentProfile),
        (format!("/organization/{org}/site/{site}"), SchemaId::ConfigSite),
        (format!("/organization/{org}/v2/team?page=0&pageSize=100&filter=id=in=({teams})"), SchemaId::ConfigTeamPage),
        (format!("/organization/{org}/dial-plan?agentView=true"), SchemaId::ConfigDialPlanList),
    ];
    for (path, schema) in calls {
        app.get(&path).bearer(&token).send().await.expect(200, Some(schema));
    }
    let user = app.get(&format!("/organization/{org}/user/by-ci-user-id/{}", me.id)).bearer(&token).send().await.body;
    assert_eq!(
        (user["ciUserId"].as_str(), user["agentProfileId"].as_str()),
        (Some(me.id.as_str()), Some(profile.as_str()))
    );
    assert_eq!(user["teamIds"], json!(me.team_ids));
    let profile_body =
        app.get(&format!("/organization/{org}/agent-profile/{profile}")).bearer(&token).send().await.body;
    assert_eq!(profile_body["webRtcEnabled"], false, "so the SDK never needs the messaging websocket");
    let settings = app.get(&format!("/organization/{org}/v2/organization-setting")).bearer(&token).send().await.body;
    assert_eq!(settings["data"][0], world_org.organization_settings);
    let mappings =
        app.get(&format!("/organization/{org}/v2/org-url-mapping?sort=name,ASC")).bearer(&token).send().await.body;
    let names: Vec<&str> =
        mappings["data"].as_array().expect("data array").iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(names, vec!["ACQUEON_API_URL", "ACQUEON_CONSOLE_URL"]);
    let plans = app.get(&format!("/organization/{org}/dial-plan")).bearer(&token).send().await.body;
    assert!(plans.is_array(), "a bare array: {plans}");
}

#[tokio::test]
async fn the_configuration_comes_from_the_world() {
    let mut world = World::default_world();
    world.orgs[0].timezone = "Asia/Tokyo".into();
    world.orgs[0].teams[0].name = "Renamed".into();
    let app = TestApp::with_world(world);
    let token = app.world_token("agent2");
    let org = org(&app);
    let body = app.get(&format!("/organization/{org}")).bearer(&token).send().await.expect(200, None).body;
    assert_eq!(body["timezone"], "Asia/Tokyo");
    let teams = app.get(&format!("/organization/{org}/v2/team")).bearer(&token).send().await.expect(200, None).body;
    assert_eq!(teams["data"][0]["name"], "Renamed");
}

#[tokio::test]
async fn pages_filters_and_attributes_work_like_the_config_services() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let org = org(&app);
    let codes = &app.world().orgs[0].aux_codes;
    let first = app
        .get(&format!("/organization/{org}/v2/auxiliary-code?page=0&pageSize=2"))
        .bearer(&token)
        .send()
        .await
        .expect(200, Some(SchemaId::ConfigAuxiliaryCodePage))
        .body;
    assert_eq!(first["meta"]["totalRecords"], json!(codes.len()));
    assert_eq!(first["meta"]["totalPages"], json!(codes.len().div_ceil(2)));
    assert_eq!(first["meta"]["orgid"], org);
    assert!(first["meta"]["links"]["next"].as_str().is_some_and(|l| l.contains("page=1")));
    assert!(first["meta"]["links"].get("prev").is_none());
    let last_page = codes.len().div_ceil(2) - 1;
    let last = app
        .get(&format!("/organization/{org}/v2/auxiliary-code?page={last_page}&pageSize=2"))
        .bearer(&token)
        .send()
        .await
        .body;
    assert!(last["meta"]["links"].get("next").is_none());
    assert_eq!(
        app.get(&format!("/organization/{org}/v2/auxiliary-code?pageSize=1000")).bearer(&token).send().await.body["meta"]
            ["pageSize"],
        100
    );

    let wanted = format!("{},{}", codes[0].id, codes[1].id);
    let filtered = app
        .get(&format!("/organization/{org}/v2/auxiliary-code?filter=id=in=({wanted})&attributes=id,name"))
        .bearer(&token)
        .send()
        .await
        .expect(200, None)
        .body;
    let data = filtered["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    assert_eq!(data[0], json!({"id": codes[0].id, "name": codes[0].name}));
    let kinds: Vec<Value> = app
        .get(&format!("/organization/{org}/v2/auxiliary-code?attributes=workTypeCode"))
        .bearer(&token)
        .send()
        .await
        .body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["workTypeCode"].clone())
        .collect();
    assert!(kinds.contains(&json!("IDLE_CODE")) && kinds.contains(&json!("WRAP_UP_CODE")));
    let reply = app.get(&format!("/organization/{org}/v2/team?filter=name==Sales")).bearer(&token).send().await;
    assert!(reply.expect(400, Some(SchemaId::ApiErrorResponse)).messages()[0].starts_with("?filter:"));
    app.get(&format!("/organization/{org}/v2/team?page=x")).bearer(&token).send().await.expect(400, None);
}

#[tokio::test]
async fn refusals_use_the_config_envelope_with_a_string_key() {
    let app = TestApp::new();
    let org = org(&app);
    let other = app.org_of("admin@globex.example");
    let agent = app.world_token("agent2");
    let reply = app
        .get(&format!("/organization/{other}"))
        .bearer(&agent)
        .send()
        .await
        .expect(403, Some(SchemaId::ApiErrorResponse));
    assert_eq!(reply.body["error"]["key"], "403");
    assert!(reply.tracking_id().starts_with("ccconfig_"), "{}", reply.tracking_id());
    let someone_else = app.user_id("agent1@wxcc.example");
    let reply = app.get(&format!("/organization/{org}/user/by-ci-user-id/{someone_else}")).bearer(&agent).send().await;
    assert!(reply.expect(403, None).diagnostic().contains("only their own"));
    let reader = app.world_token("admin-read-only");
    app.get(&format!("/organization/{org}/user/by-ci-user-id/{someone_else}"))
        .bearer(&reader)
        .send()
        .await
        .expect(200, None);
    let nothing = app.token(ME, &["spark:people_read"]);
    let reply = app.get(&format!("/organization/{org}")).bearer(&nothing).send().await.expect(403, None);
    assert!(reply.diagnostic().contains("cjp:config_read"), "{}", reply.diagnostic());
    app.get(&format!("/organization/{org}/agent-profile/nope"))
        .bearer(&agent)
        .send()
        .await
        .expect(404, Some(SchemaId::ApiErrorResponse));
    app.get(&format!("/organization/{org}/site/nope")).bearer(&agent).send().await.expect(404, None);
    app.get(&format!("/organization/{org}")).send().await.expect(400, None);
}

#[tokio::test]
async fn queues_entry_points_and_outdial_numbers_are_served_from_the_world_for_a_task_desktop() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let org = org(&app);
    let world_org = &app.world().orgs[0];

    let queues = app
        .get(&format!("/organization/{org}/v2/contact-service-queue?page=0&pageSize=100"))
        .bearer(&token)
        .send()
        .await;
    let queues = queues.expect(200, Some(SchemaId::ConfigQueuePage)).body;
    let names: Vec<&str> = queues["data"].as_array().expect("data").iter().filter_map(|q| q["name"].as_str()).collect();
    let want: Vec<&str> = world_org.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, want);
    let support_voice = &queues["data"][1];
    assert_eq!(
        (support_voice["channelType"].as_str(), support_voice["ronaTimeoutSeconds"].as_u64()),
        (Some("TELEPHONY"), Some(18))
    );
    let chat_id = world_org.queues[2].id.clone();
    let one = app
        .get(&format!("/organization/{org}/v2/contact-service-queue?filter=id=in=({chat_id})"))
        .bearer(&token)
        .send()
        .await;
    let one = one.expect(200, None).body;
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["data"][0]["channelType"], "CHAT");

    let entry_points = app.get(&format!("/organization/{org}/v2/entry-point")).bearer(&token).send().await;
    let entry_points = entry_points.expect(200, Some(SchemaId::ConfigEntryPointPage)).body;
    let outbound: Vec<&Value> =
        entry_points["data"].as_array().expect("data").iter().filter(|e| e["entryPointType"] == "OUTBOUND").collect();
    assert_eq!(outbound.len(), 1, "{entry_points}");

    let profile = app.world().orgs[0].agent_profiles[0].clone();
    let ani = profile["outdialANIId"].as_str().expect("the profile names an outdial ANI list");
    let entries = app.get(&format!("/organization/{org}/v2/outdial-ani/{ani}/entry")).bearer(&token).send().await;
    let entries = entries.expect(200, Some(SchemaId::ConfigOutdialAniEntryPage)).body;
    assert_eq!(entries["data"][0]["number"], "+14155550100");
    app.get(&format!("/organization/{org}/v2/outdial-ani/no-such-list/entry"))
        .bearer(&token)
        .send()
        .await
        .expect(404, None);
    let other = app.world().orgs[1].id.clone();
    app.get(&format!("/organization/{other}/v2/entry-point")).bearer(&token).send().await.expect(403, None);
}
