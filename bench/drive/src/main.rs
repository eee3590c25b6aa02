//! The load driver of `bench/webhooks.sh` and `bench/memory.sh` (not a test: it prints figures).
//!
//! - `throughput`: queues signed deliveries while the receivers hold their first request, then
//!   lets them go and counts deliveries per second until every one has arrived.
//! - `soak`: many agents change state concurrently for a while, with subscriptions at receivers
//!   that verify signatures (one fails now and then, one is slow); then it checks that every
//!   transition reached every subscription once, in order.
//! - `spam`: the floods of the hardening issue, printing the mock's resident memory after each.
//! - `agents`: logs every agent of the world in with a connected websocket, then measures how long
//!   a state change takes to reach its websocket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "bench-secret-0123456789abcdef0123";

#[derive(Debug, Parser)]
struct Cli {
    /// The mock's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// The world file the mock was started with (bench/world.py makes one).
    #[arg(long)]
    world: std::path::PathBuf,
    /// The mock's process id, for its resident memory.
    #[arg(long)]
    pid: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Signed deliveries per second to a local receiver.
    Throughput {
        /// Subscriptions.
        #[arg(long, default_value_t = 5)]
        subscriptions: usize,
        /// State changes (each is delivered to every subscription).
        #[arg(long, default_value_t = 20_000)]
        transitions: usize,
    },
    /// Many agents, many subscriptions, some receivers failing or slow: nothing lost.
    Soak {
        /// Agents driven at once.
        #[arg(long, default_value_t = 180)]
        agents: usize,
        /// Subscriptions.
        #[arg(long, default_value_t = 5)]
        subscriptions: usize,
        /// How long the agents keep changing state.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Each agent's pause between two state changes, in ms.
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
    },
    /// The floods, with the mock's memory after each.
    Spam,
    /// Every agent connected; state change to websocket latency.
    Agents {
        /// Latency samples.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
    },
}

struct World {
    org: String,
    admin: String,
    agents: Vec<Agent>,
}

#[derive(Clone)]
struct Agent {
    id: String,
    token: String,
    team: String,
    dial: String,
}

fn load_world(path: &std::path::Path) -> anyhow::Result<World> {
    let world: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let org = &world["orgs"][0];
    let org_id = org["id"].as_str().context("org id")?.to_owned();
    let tokens = world["tokens"].as_array().context("tokens")?;
    let token_of = |email: &str| {
        tokens.iter().find(|t| t["email"] == email).and_then(|t| t["accessToken"].as_str()).map(str::to_owned)
    };
    let admin = token_of("admin@wxcc.example").context("an admin token")?;
    let mut agents = Vec::new();
    for user in org["users"].as_array().context("users")? {
        let email = user["email"].as_str().unwrap_or_default();
        if !email.starts_with("bench") {
            continue;
        }
        agents.push(Agent {
            id: user["id"].as_str().context("id")?.to_owned(),
            token: token_of(email).context("a token per bench agent")?,
            team: user["teamIds"][0].as_str().context("team")?.to_owned(),
            dial: user["defaultDialledNumber"].as_str().context("dial number")?.to_owned(),
        });
    }
    Ok(World { org: org_id, admin, agents })
}

fn rss_kb(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn rss(pid: Option<u32>) -> String {
    rss_kb(pid).map_or_else(|| "?".into(), |kb| format!("{:.1} MB", kb as f64 / 1024.0))
}

// ---- Receivers ----

#[derive(Default)]
struct Received {
    /// Per subscription index: (event id, agent id, state) of each 2xx-acknowledged delivery.
    accepted: Vec<Vec<(String, String, String)>>,
    bad_signatures: u64,
    refused: u64,
}

struct Receiver {
    received: Mutex<Received>,
    count: AtomicU64,
    open: AtomicBool,
    opened: tokio::sync::Notify,
    /// Subscription index that answers 500 to every 50th request.
    flaky: Option<usize>,
    /// Subscription index that takes 1 ms per request.
    slow: Option<usize>,
    calls: AtomicU64,
}

async fn hook(State(r): State<Arc<Receiver>>, Path(index): Path<usize>, headers: HeaderMap, body: Bytes) -> StatusCode {
    while !r.open.load(Ordering::SeqCst) {
        let opened = r.opened.notified();
        if r.open.load(Ordering::SeqCst) {
            break;
        }
        opened.await;
    }
    let n = r.calls.fetch_add(1, Ordering::Relaxed);
    if r.slow == Some(index) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("any key");
    mac.update(&body);
    let expected = hex::encode(mac.finalize().into_bytes());
    let given = headers.get("x-webexcc-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if given != expected {
        r.received.lock().expect("lock").bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if r.flaky == Some(index) && n % 500 == 7 {
        r.received.lock().expect("lock").refused += 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let entry = (
        event["id"].as_str().unwrap_or_default().to_owned(),
        event["data"]["agentId"].as_str().unwrap_or_default().to_owned(),
        event["data"]["currentState"].as_str().unwrap_or_default().to_owned(),
    );
    {
        let mut received = r.received.lock().expect("lock");
        if received.accepted.len() <= index {
            received.accepted.resize_with(index + 1, Vec::new);
        }
        received.accepted[index].push(entry);
    }
    r.count.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

async fn start_receiver(receiver: Arc<Receiver>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/hook/{index}", axum::routing::post(hook)).with_state(receiver);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://127.0.0.1:{}", addr.port()))
}

async fn wait_count(receiver: &Receiver, want: u64, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while receiver.count.load(Ordering::SeqCst) < want {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

// ---- The mock ----

struct Mock {
    base: String,
    http: reqwest::Client,
}

impl Mock {
    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn put(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<u16> {
        let response = self.http.put(format!("{}{path}", self.base)).bearer_auth(token).json(body).send().await?;
        Ok(response.status().as_u16())
    }

    async fn subscribe(&self, world: &World, hooks: &str, count: usize) -> anyhow::Result<()> {
        for i in 0..count {
            let body = json!({
                "name": format!("bench subscription {i}"), "eventTypes": ["agent:state_change"],
                "destinationUrl": format!("{hooks}/hook/{i}"), "secret": SECRET,
            });
            let (status, reply) = self.post("/v1/subscriptions", Some(&world.admin), &body).await?;
            if status != 201 {
                bail!("creating a subscription answered {status}: {reply}");
            }
        }
        Ok(())
    }

    async fn login(&self, agent: &Agent) -> anyhow::Result<()> {
        let body = json!({
            "dialNumber": agent.dial, "teamId": agent.team, "roles": ["agent"],
            "deviceType": "EXTENSION", "isExtension": true,
        });
        let (status, reply) = self.post("/v1/agents/login", Some(&agent.token), &body).await?;
        if status != 202 {
            bail!("login answered {status}: {reply}");
        }
        Ok(())
    }

    async fn change(&self, agent: &Agent, available: bool) -> anyhow::Result<()> {
        let body = if available {
            json!({"state": "Available", "auxCodeId": "0"})
        } else {
            json!({"state": "Idle", "auxCodeId": "6ce40f29-84f8-4a8c-bd11-ebf627fe8920"})
        };
        let status = self.put("/v1/agents/session/state", &agent.token, &body).await?;
        if status != 202 {
            bail!("a state change answered {status}");
        }
        Ok(())
    }
}

// ---- Commands ----

async fn throughput(
    mock: &Mock,
    world: &World,
    pid: Option<u32>,
    subscriptions: usize,
    transitions: usize,
) -> anyhow::Result<()> {
    let receiver = Arc::new(Receiver {
        received: Mutex::default(),
        count: AtomicU64::new(0),
        open: AtomicBool::new(false),
        opened: tokio::sync::Notify::new(),
        flaky: None,
        slow: None,
        calls: AtomicU64::new(0),
    });
    let hooks = start_receiver(receiver.clone()).await?;
    let agents = &world.agents[..world.agents.len().min(50)];
    for agent in agents {
        mock.login(agent).await?;
    }
    mock.subscribe(world, &hooks, subscriptions).await?;
    // Queue every event while the receiver holds its first request of each subscription.
    let per_agent = transitions.div_ceil(agents.len());
    let mut tasks = Vec::new();
    for agent in agents {
        let agent = agent.clone();
        let mock = Mock { base: mock.base.clone(), http: mock.http.clone() };
        tasks.push(tokio::spawn(async move {
            for i in 0..per_agent {
                mock.change(&agent, i % 2 == 0).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let want = (per_agent * agents.len() * subscriptions) as u64;
    let started = Instant::now();
    receiver.open.store(true, Ordering::SeqCst);
    receiver.opened.notify_waiters();
    let all = wait_count(&receiver, want, Duration::from_secs(600)).await;
    let took = started.elapsed();
    let got = receiver.count.load(Ordering::SeqCst);
    println!(
        "signed deliveries: {got} of {want} in {:.2} s = {:.0} per second to {subscriptions} subscriptions (target >= 10,000){}",
        took.as_secs_f64(),
        got as f64 / took.as_secs_f64(),
        if all { "" } else { ": NOT ALL ARRIVED" }
    );
    println!("bad signatures: {}", receiver.received.lock().expect("lock").bad_signatures);
    println!("mock resident memory: {}", rss(pid));
    Ok(())
}

async fn soak(
    mock: &Mock,
    world: &World,
    agents: usize,
    subscriptions: usize,
    seconds: u64,
    pace: Duration,
) -> anyhow::Result<()> {
    if world.agents.len() < agents {
        bail!("the world has {} bench agents, {agents} asked for", world.agents.len());
    }
    let receiver = Arc::new(Receiver {
        received: Mutex::default(),
        count: AtomicU64::new(0),
        open: AtomicBool::new(true),
        opened: tokio::sync::Notify::new(),
        flaky: Some(1),
        slow: Some(2),
        calls: AtomicU64::new(0),
    });
    let hooks = start_receiver(receiver.clone()).await?;
    let agents = &world.agents[..agents];
    for agent in agents {
        mock.login(agent).await?;
    }
    mock.subscribe(world, &hooks, subscriptions).await?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for agent in agents.iter().cloned() {
        let mock = Mock { base: mock.base.clone(), http: mock.http.clone() };
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut available = true;
            while Instant::now() < until {
                mock.change(&agent, available).await?;
                sent.push(if available { "available" } else { "idle" });
                available = !available;
                tokio::time::sleep(pace).await;
            }
            anyhow::Ok((agent.id, sent))
        }));
    }
    let mut expected: HashMap<String, Vec<&str>> = HashMap::new();
    for task in tasks {
        let (id, sent) = task.await??;
        expected.insert(id, sent);
    }
    let transitions: usize = expected.values().map(Vec::len).sum();
    println!(
        "{} agents made {transitions} state changes in {seconds} s ({:.0}/s); {subscriptions} subscriptions (one answers 500 now and then, one takes 1 ms)",
        agents.len(),
        transitions as f64 / seconds as f64
    );
    let want = (transitions * subscriptions) as u64;
    let arrived = wait_count(&receiver, want, Duration::from_secs(300)).await;
    let state: Value = mock.http.get(format!("{}/__admin/state", mock.base)).send().await?.json().await?;
    let received = receiver.received.lock().expect("lock");
    let mut failed = !arrived || received.bad_signatures > 0;
    for (index, accepted) in received.accepted.iter().enumerate() {
        let mut ids = std::collections::HashSet::new();
        let duplicated = accepted.iter().filter(|(id, _, _)| !ids.insert(id.clone())).count();
        let mut per_agent: HashMap<&str, Vec<&str>> = HashMap::new();
        for (_, agent, state) in accepted {
            per_agent.entry(agent.as_str()).or_default().push(state.as_str());
        }
        let out_of_order = expected
            .iter()
            .filter(|(agent, sent)| per_agent.get(agent.as_str()).is_some_and(|got| got != *sent))
            .count();
        let lost = transitions.saturating_sub(ids.len());
        println!(
            "subscription {index}: {} delivered, {lost} lost, {duplicated} duplicated, {out_of_order} agents out of order",
            ids.len()
        );
        failed |= lost > 0 || duplicated > 0 || out_of_order > 0;
    }
    println!(
        "receiver: {} bad signatures, {} deliberate 500s (retried by the mock)",
        received.bad_signatures, received.refused
    );
    let dropped: Vec<u64> = state["subscriptions"]
        .as_array()
        .map(|subs| subs.iter().map(|s| s["dropped"].as_u64().unwrap_or(0)).collect())
        .unwrap_or_default();
    println!("the mock's dropped counts per subscription: {dropped:?}");
    if failed {
        bail!("events were lost, duplicated, reordered or badly signed");
    }
    println!("0 lost, 0 duplicated, order kept");
    Ok(())
}

async fn spam(mock: &Mock, world: &World, pid: Option<u32>) -> anyhow::Result<()> {
    let report = |what: &str| {
        let kb = rss_kb(pid).unwrap_or(0);
        let verdict = if kb < 50 * 1024 { "ok" } else { "OVER 50 MB" };
        println!("after {what:<58} resident {:>8}  ({verdict})", rss(pid));
    };
    report("start-up");
    let mut refused = 0;
    for _ in 0..100_000 {
        let (status, _) = mock
            .post(
                "/__admin/tokens",
                None,
                &json!({"email": "agent2@wxcc.example", "scopes": ["cjp:user"], "ttlSeconds": 3600}),
            )
            .await?;
        refused += u32::from(status != 201);
    }
    report(&format!("100,000 token mints ({refused} refused past the bound)"));
    let mut refused = 0;
    for i in 0..25_000 {
        let body = json!({"name": format!("spam {i:05}"), "eventTypes": ["agent:login"], "destinationUrl": "https://hooks.example.com/x"});
        let (status, _) = mock.post("/v1/subscriptions", Some(&world.admin), &body).await?;
        refused += u32::from(status != 201);
    }
    report(&format!("25,000 subscription creates ({refused} refused)"));
    let agent = &world.agents[0];
    let mut sockets = Vec::new();
    let mut refused = 0;
    for i in 0..3000 {
        let (status, reply) = mock
            .post("/v1/notification/subscribe", Some(&agent.token), &json!({"clientType": format!("c{i}")}))
            .await?;
        if status != 200 {
            refused += 1;
            continue;
        }
        let url = reply["webSocketUrl"].as_str().context("url")?.to_owned();
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(url).await {
            sockets.push(ws);
        }
    }
    report(&format!("3,000 websockets of new clientTypes ({refused} refused)"));
    drop(sockets);
    let mut refused = 0;
    for _ in 0..10_000 {
        let (status, _) = mock.post("/v1/notification/subscribe", Some(&agent.token), &json!({})).await?;
        refused += u32::from(status != 200);
    }
    report(&format!("10,000 unconnected subscribe registrations ({refused} refused)"));
    let long = "u".repeat(60 * 1024);
    for _ in 0..3000 {
        let _ = mock
            .http
            .get(format!("{}/v1/subscriptions?pad={long}", mock.base))
            .bearer_auth(&world.admin)
            .send()
            .await?;
    }
    report("3,000 requests with 60 KB URIs");
    let secret_body = json!({"name": "x", "secret": "s", "eventTypes": ["nope"], "destinationUrl": long});
    for _ in 0..3000 {
        mock.post("/v1/subscriptions", Some(&world.admin), &secret_body).await?;
    }
    report("3,000 refused creates with 60 KB bodies (violations)");
    println!("org {}", world.org);
    Ok(())
}

async fn agents(mock: &Mock, world: &World, pid: Option<u32>, samples: usize) -> anyhow::Result<()> {
    println!("before: resident {}", rss(pid));
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(world.agents.len());
    let batch = 64;
    for chunk in world.agents.chunks(batch) {
        let connected = futures_util::future::join_all(chunk.iter().map(|agent| async {
            let body = json!({"clientType": "AgentDesktop", "isKeepAliveEnabled": false});
            let (status, reply) = mock.post("/v1/notification/subscribe", Some(&agent.token), &body).await?;
            if status != 200 {
                bail!("subscribe answered {status}: {reply}");
            }
            let url = reply["webSocketUrl"].as_str().context("url")?.to_owned();
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
            let _welcome = ws.next().await;
            mock.login(agent).await?;
            let _login = ws.next().await;
            anyhow::Ok(ws)
        }))
        .await;
        for ws in connected {
            sockets.push(ws?);
        }
    }
    println!(
        "{} agents logged in, each with a connected websocket, in {:.1} s: resident {}",
        sockets.len(),
        started.elapsed().as_secs_f64(),
        rss(pid)
    );
    let count = sockets.len();
    let sockets: Vec<_> = sockets.into_iter().map(tokio::sync::Mutex::new).collect();
    let sockets = Arc::new(sockets);
    let mut latencies = Vec::with_capacity(samples);
    let step = (count / samples.max(1)).max(1);
    for round in (0..samples).collect::<Vec<_>>().chunks(32) {
        let measured = futures_util::future::join_all(round.iter().map(|i| {
            let index = (i * step + i / count) % count;
            let sockets = sockets.clone();
            let agent = world.agents[index].clone();
            async move {
                let mut ws = sockets[index].lock().await;
                let sent = Instant::now();
                mock.change(&agent, i % 2 == 0).await?;
                loop {
                    let message = ws.next().await.context("the socket closed")??;
                    if message.to_text().unwrap_or_default().contains("AgentStateChange") {
                        break;
                    }
                }
                anyhow::Ok(sent.elapsed())
            }
        }))
        .await;
        for m in measured {
            latencies.push(m?);
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "state change to its websocket, {} samples with all {count} connected: p50 {:.1} ms, p99 {:.1} ms (target < 50 ms)",
        latencies.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
    let kb = rss_kb(pid).unwrap_or(0);
    println!(
        "resident with {count} connected agents: {} ({})",
        rss(pid),
        if kb < 200 * 1024 { "under 200 MB" } else { "OVER 200 MB" }
    );
    for ws in sockets.iter() {
        let _ = ws.lock().await.close(None).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let world = load_world(&cli.world)?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let mock = Mock { base: cli.base.trim_end_matches('/').to_owned(), http };
    match cli.command {
        Command::Throughput { subscriptions, transitions } => {
            throughput(&mock, &world, cli.pid, subscriptions, transitions).await
        }
        Command::Soak { agents, subscriptions, seconds, interval_ms } => {
            let pace = Duration::from_millis(interval_ms);
            soak(&mock, &world, agents, subscriptions, seconds, pace).await
        }
        Command::Spam => spam(&mock, &world, cli.pid).await,
        Command::Agents { samples } => agents(&mock, &world, cli.pid, samples).await,
    }
}
