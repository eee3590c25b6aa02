//! The `wxcc-mock` command: `serve` runs the mock, `validate` checks a JSON document against one
//! of the contract's schemas.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

use wxcc_mock::delivery::DeliveryConfig;
use wxcc_mock::journal::DEFAULT_JOURNAL_BYTES;
use wxcc_mock::notifications::NotificationConfig;
use wxcc_mock::state::{DEFAULT_MAX_MINTED_TOKENS, DEFAULT_MAX_SUBSCRIPTIONS, StateOptions};
use wxcc_mock::{AppState, Clock, ClockMode, Config, World};
use wxcc_schemas::SchemaId;

/// The target of the start-up and shut-down lines, which `--quiet` keeps.
const STARTUP: &str = "wxcc_mock::startup";

/// How the console writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Parser)]
#[command(name = "wxcc-mock", version, about = "A local, stateful stand-in for the Webex Contact Center API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the mock server.
    Serve(Box<ServeArgs>),
    /// Check a JSON document against one of the contract's schemas.
    Validate(ValidateArgs),
    /// Run a webhook receiver that prints each delivery and checks its signature.
    Receive(ReceiveArgs),
    /// Subscribe an agent to notifications and print every websocket message (keep-alives too).
    Listen(ListenArgs),
    /// Play a replay bundle (GET /__admin/journal/export) against a server, the mock by default
    /// (started here with its embedded world), and report what answers differently: status,
    /// content type and Retry-After, bodies with ids and times redacted. Exit 1 on a difference.
    Replay(ReplayArgs),
    /// Stand in front of any WxCC server (a real org, or another mock) and record every exchange
    /// and notification websocket frame into a replay bundle, tokens named and secrets redacted.
    Proxy(ProxyArgs),
    /// Scenario files: `wxcc-mock scenario check FILE…` says what is wrong with each.
    #[command(subcommand)]
    Scenario(ScenarioCommand),
    /// Run a client against a fresh mock, then report the requests it sent off-contract:
    /// `wxcc-mock test [serve flags] [--junit FILE] -- <command…>`. The command gets
    /// WXCC_BASE_URL, WXCC_ORG_ID and WXCC_TOKEN_<NAME> for each ready-made token; the exit code
    /// is the command's when it failed, 1 when it broke the contract, else 0.
    Test(Box<TestArgs>),
}

#[derive(Debug, Args)]
struct ProxyArgs {
    /// The server to forward to, e.g. https://api.wxcc-us1.cisco.com.
    #[arg(long, env = "WXCC_UPSTREAM")]
    upstream: String,
    /// Where to write the bundle (rewritten after each exchange).
    #[arg(long)]
    record: PathBuf,
    /// Interface to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free port).
    #[arg(long, default_value_t = 8081)]
    port: u16,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The bundle.
    file: PathBuf,
    /// The server to play it against (default: a mock started here, with its embedded world).
    #[arg(long, env = "WXCC_BASE_URL")]
    base_url: Option<String>,
    /// The token to send for a recorded token name (NAME=TOKEN); repeat it. Against the mock
    /// started here, the world's tokens are given already.
    #[arg(long = "token", value_name = "NAME=TOKEN", value_parser = parse_var)]
    tokens: Vec<(String, String)>,
    /// Send the requests back to back rather than with their recorded gaps.
    #[arg(long)]
    no_timing: bool,
    /// Write the report as JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ScenarioCommand {
    /// Check scenario files against the format (schemas/json/scenario.json), their routes,
    /// bodies, names and world tokens; exit 1 if any is wrong.
    Check {
        /// The scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct TestArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Write the report as JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// The command to run, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct ReceiveArgs {
    /// Interface to listen on.
    #[arg(long, env = "WXCC_RECEIVER_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free port).
    #[arg(long, env = "WXCC_RECEIVER_PORT", default_value_t = 9000)]
    port: u16,
    /// The subscription's secret, to check X-WebexCC-Signature.
    #[arg(long, env = "WXCC_RECEIVER_SECRET")]
    secret: Option<String>,
    /// Answer 500 to this many deliveries first (to watch retries and disabling).
    #[arg(long, default_value_t = 0)]
    fail_first: u32,
}

#[derive(Debug, Args)]
struct ListenArgs {
    /// The mock's (or any WxCC's) base URL.
    #[arg(long, env = "WXCC_BASE_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// The agent's bearer token.
    #[arg(long, env = "WXCC_TOKEN")]
    token: String,
    /// clientType for the subscription.
    #[arg(long, default_value = "WxccMockListen")]
    client_type: String,
    /// Never send keep-alives (the mock then closes the socket with 4000 after 16 s of its clock).
    #[arg(long)]
    no_keepalive: bool,
    /// Subscribe with isKeepAliveEnabled false, as Cisco's SDK does by default: the mock never
    /// closes the socket for silence (handy on a virtual clock that jumps).
    #[arg(long, conflicts_with = "no_keepalive")]
    no_idle_close: bool,
    /// A certificate (PEM) to trust for https:// and wss://: the one `serve --tls` wrote.
    #[arg(long, env = "WXCC_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Interface to listen on.
    #[arg(long, env = "WXCC_MOCK_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free port).
    #[arg(long, env = "WXCC_MOCK_PORT", default_value_t = 8080)]
    port: u16,
    /// A world file to load instead of the embedded default (fixtures/world.json).
    #[arg(long, env = "WXCC_MOCK_WORLD")]
    world: Option<PathBuf>,
    /// Refuse every request that breaks its schema, even where the real API is lenient
    /// (capitalised roles, isExtension as a string); see GET /__admin/violations.
    #[arg(long, env = "WXCC_MOCK_STRICT")]
    strict: bool,
    /// Webhook attempts after the first.
    #[arg(long, env = "WXCC_MOCK_WEBHOOK_RETRIES", default_value_t = 5)]
    webhook_retries: u32,
    /// Delay before the first webhook retry, in ms; each later retry doubles it.
    #[arg(long, env = "WXCC_MOCK_WEBHOOK_BACKOFF_MS", default_value_t = 1000)]
    webhook_backoff_ms: u64,
    /// Consecutive events that fail every attempt before a subscription turns inactive.
    #[arg(long, env = "WXCC_MOCK_WEBHOOK_DISABLE_AFTER", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    webhook_disable_after: u32,
    /// Which clock runs every timer: system (wall time), or virtual (time moves only with
    /// POST /__admin/clock/advance or /__admin/clock/set).
    #[arg(long, env = "WXCC_MOCK_CLOCK", value_enum, default_value = "system")]
    clock: ClockMode,
    /// Where a virtual clock starts, in epoch ms (default: now).
    #[arg(long, env = "WXCC_MOCK_CLOCK_START")]
    clock_start: Option<i64>,
    /// The journal's bound in bytes; the oldest entries roll out first.
    #[arg(long, env = "WXCC_MOCK_JOURNAL_BYTES", default_value_t = DEFAULT_JOURNAL_BYTES)]
    journal_bytes: usize,
    /// Finished tasks kept for GET /v1/tasks and /__admin/tasks; the oldest finished go first
    /// (unfinished tasks are always kept).
    #[arg(long, env = "WXCC_MOCK_TASK_HISTORY", default_value_t = 10_000)]
    task_history: usize,
    /// The URL clients reach the mock at, when it is not the bound address (a proxy, a
    /// container's published port): /__admin answers to its host, and webSocketUrl is built
    /// from it (https gives wss).
    #[arg(long, env = "WXCC_MOCK_PUBLIC_URL")]
    public_url: Option<url::Url>,
    /// Another host name /__admin answers to (besides localhost, 127.0.0.1, [::1], the bound
    /// address and the public URL's host); repeat it, or separate names with commas.
    #[arg(long = "allow-host", env = "WXCC_MOCK_ALLOW_HOSTS", value_delimiter = ',')]
    allow_hosts: Vec<String>,
    /// Serve https:// and wss:// with a certificate made at start for localhost, 127.0.0.1, ::1,
    /// --host, the --public-url host and every --allow-host (written to --tls-cert-out for
    /// clients to trust).
    #[arg(long, env = "WXCC_MOCK_TLS")]
    tls: bool,
    /// Where --tls writes the certificate it made (PEM).
    #[arg(long, env = "WXCC_MOCK_TLS_CERT_OUT")]
    tls_cert_out: Option<PathBuf>,
    /// Serve TLS with this certificate chain (PEM) instead of a made one; needs --tls-key.
    #[arg(long, env = "WXCC_MOCK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "WXCC_MOCK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// An origin whose web pages may call the WxCC routes (CORS), such as
    /// https://widget.example.com, or * for any; repeat it, or separate origins with commas.
    /// Without it: any localhost, 127.0.0.1 or [::1] origin. /__admin allows none.
    #[arg(long = "cors-origin", env = "WXCC_MOCK_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Subscriptions one org may hold, v1 and v2 together; past it, a create answers 400.
    #[arg(long, env = "WXCC_MOCK_MAX_SUBSCRIPTIONS", default_value_t = DEFAULT_MAX_SUBSCRIPTIONS)]
    max_subscriptions: usize,
    /// Minted tokens held at once (each is forgotten an hour after it expires); past it,
    /// POST /__admin/tokens answers 409.
    #[arg(long, env = "WXCC_MOCK_MAX_MINTED_TOKENS", default_value_t = DEFAULT_MAX_MINTED_TOKENS)]
    max_minted_tokens: usize,
    /// Notification websockets one user may hold across every clientType; past it, subscribe
    /// answers 409 unless force replaces the oldest.
    #[arg(long, env = "WXCC_MOCK_MAX_CONNECTIONS_PER_USER", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_user: u32,
    /// Connections open at once; past it, a new client is answered 503 (Retry-After: 1) and
    /// closed. Keep it under the process's file-descriptor limit.
    #[arg(long, env = "WXCC_MOCK_MAX_CONNECTIONS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// How long a client has to send a request's headers before its connection is closed, in ms.
    #[arg(long, env = "WXCC_MOCK_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_ms: u64,
    /// Limit each client id (the integration a token was issued to; tokens that name none share
    /// one) to N requests per minute, as the real API does (300/min by default there): past it,
    /// 429 with no body and Retry-After in seconds, on the mock's clock. Off unless given.
    #[arg(long, env = "WXCC_MOCK_RATE_LIMIT", value_name = "N/min")]
    rate_limit: Option<wxcc_mock::rate::RateLimit>,
    /// Keep subscriptions, minted tokens, agent sessions, tasks and pending webhook deliveries
    /// in this file: loaded at start, written before each state-changing 2xx and at shutdown.
    /// Without it, state lives in memory only.
    #[arg(long, env = "WXCC_MOCK_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C, how long to keep delivering pending webhooks before stopping
    /// (5s, 500ms, or seconds).
    #[arg(long, env = "WXCC_MOCK_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// Require 'Authorization: Bearer <token>' on /__admin (advised when binding a non-loopback
    /// address).
    #[arg(long, env = "WXCC_MOCK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A scenario file to start with: its world and clock replace --world and --clock, its
    /// rate limit --rate-limit; its fault rules, setup requests and timed script run once the
    /// mock listens (see fixtures/scenarios).
    #[arg(long, env = "WXCC_MOCK_SCENARIO")]
    scenario: Option<PathBuf>,
    /// A value for the scenario's {{NAME}} (a webhook receiver's URL, say); repeat it.
    #[arg(long = "var", value_name = "NAME=VALUE", requires = "scenario", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Console lines as text or as JSON objects.
    #[arg(long, env = "WXCC_MOCK_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Only warnings and errors on the console (and the start-up line); RUST_LOG still wins.
    #[arg(long, env = "WXCC_MOCK_QUIET")]
    quiet: bool,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// Schema name, e.g. subscription-create-request (see the files in schemas/json).
    #[arg(long)]
    schema: String,
    /// The JSON file to check (- reads standard input).
    file: PathBuf,
}

impl ServeArgs {
    fn into_config(mut self) -> anyhow::Result<Config> {
        let mut scenario_world = None;
        let scenario = match &self.scenario {
            Some(path) => {
                let (mut scenario, world) = wxcc_mock::scenario::Scenario::from_file(path)
                    .with_context(|| format!("--scenario {}", path.display()))?;
                for (name, value) in std::mem::take(&mut self.vars) {
                    if !scenario.vars.contains_key(&name) {
                        anyhow::bail!(
                            "--var {name}: the scenario has no var {name:?} (it has {})",
                            scenario.vars.keys().cloned().collect::<Vec<_>>().join(", ")
                        );
                    }
                    scenario.vars.insert(name, value);
                }
                if let Some(world) = world {
                    if self.world.is_some() {
                        anyhow::bail!("--scenario {} names its own world: drop --world", path.display());
                    }
                    scenario_world = Some(world);
                }
                if let Some(clock) = scenario.clock {
                    self.clock = clock.mode;
                    self.clock_start = clock.start.or(self.clock_start.filter(|_| clock.mode == ClockMode::Virtual));
                }
                // The world is loaded here, the clock starts where the scenario says.
                scenario.world = None;
                scenario.clock = None;
                Some(scenario)
            }
            None => None,
        };
        let world = match (scenario_world, &self.world) {
            (Some(world), _) => world,
            (None, Some(path)) => {
                World::from_file(path).with_context(|| format!("loading --world {}", path.display()))?
            }
            (None, None) => World::default_world(),
        };
        let served: Vec<(String, String)> =
            wxcc_mock::routes::endpoints().iter().map(|e| (e.method.to_string(), e.path.to_owned())).collect();
        if let Some(problem) = wxcc_mock::rate::unknown_routes(&world, &served).into_iter().next() {
            anyhow::bail!("the world's {problem}");
        }
        let delivery = DeliveryConfig {
            retries: self.webhook_retries,
            backoff: Duration::from_millis(self.webhook_backoff_ms),
            disable_after: self.webhook_disable_after,
            ..DeliveryConfig::default()
        };
        if self.clock_start.is_some() && self.clock == ClockMode::System {
            anyhow::bail!("--clock-start sets where a virtual clock starts: add --clock virtual");
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(wxcc_mock::tls::Identity::from_files(cert, key)?),
            _ if self.tls => {
                let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
                if !matches!(self.host.as_str(), "0.0.0.0" | "::" | "127.0.0.1" | "localhost" | "::1") {
                    names.push(self.host.clone());
                }
                names.extend(self.public_url.as_ref().and_then(|u| u.host_str()).map(str::to_owned));
                names.extend(self.allow_hosts.iter().cloned());
                let identity = wxcc_mock::tls::Identity::generate(&names)?;
                let out = self.tls_cert_out.clone().unwrap_or_else(|| std::env::temp_dir().join("wxcc-mock-cert.pem"));
                std::fs::write(&out, &identity.cert_pem)
                    .with_context(|| format!("writing the certificate to {}", out.display()))?;
                tracing::info!(
                    target: STARTUP,
                    "TLS with a certificate made now for {}: trust {} (curl --cacert, listen --ca-cert)",
                    names.join(", "),
                    out.display()
                );
                Some(identity)
            }
            _ => None,
        };
        Ok(Config {
            host: self.host,
            port: self.port,
            world,
            delivery,
            strict: self.strict,
            clock: self.clock,
            clock_start: self.clock_start,
            journal_bytes: self.journal_bytes,
            task_history: self.task_history,
            max_subscriptions_per_org: self.max_subscriptions,
            max_minted_tokens: self.max_minted_tokens,
            max_connections_per_user: self.max_connections_per_user as usize,
            state_file: self.state_file,
            shutdown_grace: self.shutdown_grace,
            rate_limit: self.rate_limit,
            scenario,
            server: wxcc_mock::server::ServerLimits {
                max_connections: self.max_connections as usize,
                header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            },
            access: wxcc_mock::access::AccessConfig {
                tls,
                cors_origins: self.cors_origins,
                public_url: self.public_url,
                allow_hosts: self.allow_hosts,
                admin_token: self.admin_token.filter(|t| !t.is_empty()),
            },
        })
    }
}

/// `NAME=VALUE`.
fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?}: write NAME=VALUE, e.g. receiver=http://127.0.0.1:9000/hook")),
    }
}

/// `wxcc-mock replay FILE`: one line per exchange, the summary, 1 on a difference.
fn replay(args: ReplayArgs) -> ExitCode {
    let bundle = match std::fs::read_to_string(&args.file)
        .map_err(|e| e.to_string())
        .and_then(|t| wxcc_mock::bundle::Bundle::parse(&t))
    {
        Ok(bundle) => bundle,
        Err(e) => {
            eprintln!("wxcc-mock: {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let run = async {
        let mut tokens: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let (base_url, _mock) = match args.base_url {
            Some(url) => (url, None),
            None => {
                let mock = wxcc_mock::MockServer::start().await;
                for name in mock.token_names() {
                    tokens.insert(name.clone(), mock.token(&name));
                }
                (mock.url(), Some(mock))
            }
        };
        tokens.extend(args.tokens);
        let options = wxcc_mock::bundle::ReplayOptions { base_url, tokens, timing: !args.no_timing };
        wxcc_mock::bundle::replay(&bundle, &options).await
    };
    let report = match runtime() {
        Ok(rt) => rt.block_on(run),
        Err(e) => {
            eprintln!("wxcc-mock: {e}");
            return ExitCode::from(2);
        }
    };
    for outcome in &report.outcomes {
        println!("{outcome}");
    }
    report.finish(args.junit.as_deref(), "wxcc-mock replay")
}

/// `wxcc-mock scenario check FILE…`: one line per file, 1 if any is wrong.
fn check_scenarios(files: &[PathBuf]) -> ExitCode {
    let mut wrong = 0;
    for file in files {
        match wxcc_mock::scenario::Scenario::from_file(file) {
            Ok((scenario, _)) => println!(
                "ok   {}: {} ({} setup requests, {} fault rules, {} script steps, {} checks)",
                file.display(),
                scenario.name,
                scenario.setup.len(),
                scenario.faults.len(),
                scenario.script.len(),
                scenario.expect.len()
            ),
            Err(e) => {
                wrong += 1;
                println!("FAIL {}:", file.display());
                for line in e.to_string().lines() {
                    println!("  {line}");
                }
            }
        }
    }
    if wrong == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// `5s`, `500ms` or `5` (seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 5s or 500ms"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(format!("{text:?} is not a duration such as 5s or 500ms")),
    }
}

fn main() -> ExitCode {
    // mimalloc: the webhook and request paths allocate many small, short-lived buffers, where
    // glibc's allocator spent a third of the time (bench/webhooks.sh). Built with its `override`
    // feature, it *is* `malloc` and `free` in this binary, so Rust's default allocator reaches its
    // fast path directly (`mimalloc::MiMalloc` as the global allocator calls its aligned entry
    // points for every allocation, a slower path; about 550 instructions a request more). The
    // call links it in: nothing else names it.
    let _ = mimalloc::MiMalloc.version();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => report(serve(*args)),
        Command::Test(args) => test(*args),
        Command::Validate(args) => validate(&args),
        Command::Receive(args) => report(runtime().and_then(|rt| rt.block_on(receive(args)))),
        Command::Scenario(ScenarioCommand::Check { files }) => check_scenarios(&files),
        Command::Replay(args) => replay(args),
        Command::Proxy(args) => report(runtime().and_then(|rt| rt.block_on(proxy(args)))),
        Command::Listen(args) => {
            let ca_cert = match args.ca_cert.as_ref().map(std::fs::read_to_string).transpose() {
                Ok(pem) => pem,
                Err(e) => {
                    eprintln!("wxcc-mock: reading --ca-cert: {e}");
                    return ExitCode::from(2);
                }
            };
            let options = wxcc_mock::tools::ListenOptions {
                ca_cert,
                base_url: args.base_url,
                token: args.token,
                client_type: args.client_type,
                keepalive: !args.no_keepalive && !args.no_idle_close,
                idle_close: !args.no_idle_close,
            };
            report(runtime().and_then(|rt| rt.block_on(wxcc_mock::tools::listen(&options))))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wxcc-mock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn proxy(args: ProxyArgs) -> anyhow::Result<()> {
    init_logging(LogFormat::Text, false);
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.host, args.port))?;
    tracing::info!(
        target: STARTUP,
        "proxying http://{} to {}, recording into {}",
        listener.local_addr()?,
        args.upstream,
        args.record.display()
    );
    let options =
        wxcc_mock::proxy::ProxyOptions { upstream: args.upstream, record: args.record, world: World::default_world() };
    wxcc_mock::proxy::run(listener, options, shutdown_signal()).await?;
    Ok(())
}

async fn receive(args: ReceiveArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.host, args.port))?;
    eprintln!("receiving webhooks on http://{}/", listener.local_addr()?);
    wxcc_mock::tools::receive(listener, args.secret, args.fail_first, shutdown_signal()).await?;
    Ok(())
}

fn init_logging(format: LogFormat, quiet: bool) {
    let default = if quiet { format!("warn,{STARTUP}=info") } else { "info".to_owned() };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A console that went away (a closed pipe) must not take requests with it: a failed write is
    // dropped, not reported with eprintln! (which panics when stderr is gone).
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // While the world loads and the socket binds.
    wxcc_schemas::init_in_background();
    init_logging(args.log_format, args.quiet);
    let structured = args.log_format == LogFormat::Json;
    let config = args.into_config()?;
    let runtime = runtime()?;
    runtime.block_on(async move {
        let (listener, state) = start(&config, structured).await?;
        wxcc_mock::serve_within(listener, state.clone(), config.server, shutdown_signal()).await?;
        stop(&config, &state).await;
        Ok(())
    })
}

/// Binds, builds the state (restored from the state file, if any) and says where it listens.
async fn start(config: &Config, structured: bool) -> anyhow::Result<(tokio::net::TcpListener, AppState)> {
    let (listener, addr) =
        wxcc_mock::bind(config).await.with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let options = StateOptions {
        delivery: config.delivery.clone(),
        strict: config.strict,
        journal_bytes: config.journal_bytes,
        task_history: config.task_history,
        access: config.access.clone(),
        max_subscriptions_per_org: config.max_subscriptions_per_org,
        max_minted_tokens: config.max_minted_tokens,
        notifications: NotificationConfig {
            max_connections_per_user: config.max_connections_per_user,
            ..NotificationConfig::default()
        },
        state_file: config.state_file.clone(),
        rate_limit: config.rate_limit,
        ..StateOptions::default()
    };
    let clock = Clock::new(config.clock, config.clock_start);
    let saved = match &config.state_file {
        Some(path) => wxcc_mock::state::persist::read(path)?,
        None => None,
    };
    if let Some(saved) = &saved
        && clock.is_virtual()
        && config.clock_start.is_none()
    {
        let _ = clock.set(saved.clock_now).await;
    }
    let state = AppState::with_clock(config.world.clone(), clock, options);
    wxcc_mock::console::attach(state.journal(), structured);
    match (&config.state_file, saved) {
        (Some(path), Some(saved)) => {
            let r = state.restore(saved);
            tracing::info!(
                target: STARTUP,
                "restored from {}: {} subscriptions, {} minted tokens, {} agent sessions, {} tasks, {} pending deliveries",
                path.display(),
                r.subscriptions,
                r.tokens,
                r.sessions,
                r.tasks,
                r.deliveries
            );
            for skipped in r.skipped {
                tracing::warn!(target: STARTUP, "not restored: {skipped}");
            }
        }
        (Some(path), None) => {
            tracing::info!(target: STARTUP, "state file {} does not exist yet: starting afresh", path.display());
        }
        (None, _) => {}
    }
    let scheme = if config.access.tls.is_some() { "https" } else { "http" };
    tracing::info!(target: STARTUP, "listening on {scheme}://{addr} (clock: {:?})", state.clock().mode());
    if let Some(limit) = config.rate_limit {
        tracing::info!(target: STARTUP, "rate limit: {limit} per client id (429 with Retry-After past it)");
    }
    if !addr.ip().is_loopback() {
        let guard = if config.access.admin_token.is_some() {
            "it needs the --admin-token"
        } else {
            "anyone who can reach it can reset the mock and read its journal: add --admin-token"
        };
        tracing::warn!(
            target: STARTUP,
            "bound to {addr}, not loopback: /__admin is reachable from other machines by the names it answers to; {guard}"
        );
    }
    state.bind_to(addr);
    if let Some(scenario) = &config.scenario {
        wxcc_mock::scenario::load(&state, scenario)
            .await
            .with_context(|| format!("loading the scenario {}", scenario.name))?;
    }
    Ok((listener, state))
}

/// After the listener stopped: delivers pending webhooks within the grace, saves the state.
async fn stop(config: &Config, state: &AppState) {
    let pending = state.dispatcher().pending_count();
    if pending > 0 {
        tracing::info!(
            target: STARTUP,
            "stopped accepting; delivering {pending} pending webhooks for up to {:?} (--shutdown-grace)",
            config.shutdown_grace
        );
    }
    let left = state.dispatcher().drain(config.shutdown_grace).await;
    match &config.state_file {
        Some(path) => {
            state.persist().await;
            tracing::info!(
                target: STARTUP,
                "state saved to {} ({} delivered during the grace, {left} pending deliveries kept for the next start)",
                path.display(),
                pending.saturating_sub(left)
            );
        }
        None if left > 0 => tracing::warn!(
            target: STARTUP,
            "{left} pending webhook deliveries discarded ({} delivered during the grace): without --state-file they do not survive",
            pending.saturating_sub(left)
        ),
        None => {}
    }
    tracing::info!(target: STARTUP, "shut down");
}

/// `wxcc-mock test`: a fresh mock on a free port (unless --port names one), the command run
/// against it, then the report of what it sent off-contract.
fn test(args: TestArgs) -> ExitCode {
    match run_test(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wxcc-mock test: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_test(args: TestArgs) -> anyhow::Result<ExitCode> {
    // The command's output is what matters: the mock says only what goes wrong (RUST_LOG wins).
    init_logging(args.serve.log_format, true);
    let structured = args.serve.log_format == LogFormat::Json;
    let mut config = args.serve.into_config()?;
    if config.port == 8080 {
        config.port = 0;
    }
    runtime()?.block_on(async move {
        let (listener, state) = start(&config, structured).await?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(wxcc_mock::serve_within(listener, state.clone(), config.server, async move {
            let _ = stop_rx.await;
        }));
        let mut env = vec![("WXCC_BASE_URL".to_owned(), state.http_base())];
        env.push(("WXCC_ORG_ID".to_owned(), state.world().orgs.first().map(|o| o.id.clone()).unwrap_or_default()));
        for token in &state.world().tokens {
            let name = token.name().to_ascii_uppercase().replace('-', "_");
            env.push((format!("WXCC_TOKEN_{name}"), token.access_token.clone()));
        }
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        eprintln!(
            "wxcc-mock test: the mock is at {}; running {:?} with {}",
            state.http_base(),
            args.command,
            names.join(", ")
        );
        let status = tokio::process::Command::new(&args.command[0]).args(&args.command[1..]).envs(env).status().await;
        let _ = stop_tx.send(());
        let _ = serving.await;
        let status = status.with_context(|| format!("cannot run {:?}", args.command[0]))?;
        let violations: Vec<serde_json::Value> =
            state.violations().iter().filter_map(|v| serde_json::to_value(v).ok()).collect();
        let report = wxcc_mock::report::violations_report(&violations);
        report.outcomes.iter().for_each(|outcome| println!("{outcome}"));
        let verdict = report.finish(args.junit.as_deref(), "client-contract");
        if !status.success() {
            eprintln!("wxcc-mock test: the command failed ({status})");
            let code = status.code().and_then(|c| u8::try_from(c).ok()).filter(|c| *c != 0).unwrap_or(1);
            return Ok(ExitCode::from(code));
        }
        Ok(verdict)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Exit codes: 0 valid, 1 invalid, 2 unusable input (unknown schema, unreadable file, not JSON).
fn validate(args: &ValidateArgs) -> ExitCode {
    let Some(schema) = SchemaId::from_name(&args.schema) else {
        let names: Vec<&str> = SchemaId::ALL.iter().map(|s| s.name()).collect();
        eprintln!("unknown schema '{}'; the schemas are: {}", args.schema, names.join(", "));
        return ExitCode::from(2);
    };
    let shown = args.file.display();
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(&args.file)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{shown}: cannot read: {e}");
            return ExitCode::from(2);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{shown}: not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    match wxcc_schemas::validate(schema, &value) {
        Ok(()) => {
            println!("{shown}: valid against {schema}");
            ExitCode::SUCCESS
        }
        Err(violations) => {
            for v in &violations {
                println!("{shown}: {v} [{}]", v.rule);
            }
            eprintln!("{shown}: {} violation(s) of {schema}", violations.len());
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Bytes in huge blocks mimalloc holds now, by its own statistics.
    fn mimalloc_huge_bytes() -> i64 {
        let stats = mimalloc::MiMalloc::stats_json().expect("mimalloc's statistics");
        let stats: serde_json::Value = serde_json::from_slice(stats.to_bytes()).expect("JSON");
        stats["malloc_huge"]["current"].as_i64().expect("a count of huge blocks")
    }

    #[test]
    fn rusts_default_allocator_allocates_through_mimalloc() {
        // No global allocator is set: Rust calls `malloc`, which mimalloc provides (`override`).
        let before = mimalloc_huge_bytes();
        let block = vec![1u8; 64 << 20];
        let after = mimalloc_huge_bytes();
        assert!(after - before >= 64 << 20, "mimalloc did not see the block: {before} then {after}");
        drop(block);
    }

    #[test]
    fn serve_flags_become_the_config() {
        let cli = <super::Cli as clap::Parser>::try_parse_from([
            "wxcc-mock",
            "serve",
            "--port",
            "0",
            "--strict",
            "--webhook-retries",
            "2",
            "--webhook-backoff-ms",
            "5",
            "--webhook-disable-after",
            "4",
        ])
        .expect("valid flags");
        let super::Command::Serve(args) = cli.command else { panic!("serve") };
        let args = *args;
        let config = args.into_config().expect("config");
        assert!(config.strict);
        assert_eq!(config.port, 0);
        assert_eq!(config.delivery.retries, 2);
        assert_eq!(config.delivery.backoff, std::time::Duration::from_millis(5));
        assert_eq!(config.delivery.disable_after, 4);
        let zero = <super::Cli as clap::Parser>::try_parse_from(["wxcc-mock", "serve", "--webhook-disable-after", "0"]);
        assert!(zero.is_err(), "a subscription cannot be disabled after zero failures");
    }

    fn serve_config(args: &[&str]) -> anyhow::Result<wxcc_mock::Config> {
        let mut all = vec!["wxcc-mock", "serve"];
        all.extend_from_slice(args);
        let cli = <super::Cli as clap::Parser>::try_parse_from(all)?;
        let super::Command::Serve(args) = cli.command else { anyhow::bail!("not serve") };
        let config = args.into_config()?;
        Ok(config)
    }

    #[test]
    fn the_clock_and_journal_flags_reach_the_config() {
        let config = serve_config(&[
            "--clock",
            "virtual",
            "--clock-start",
            "1000",
            "--journal-bytes",
            "4096",
            "--task-history",
            "7",
        ])
        .expect("config");
        assert_eq!(config.clock, wxcc_mock::ClockMode::Virtual);
        assert_eq!(config.clock_start, Some(1000));
        assert_eq!(config.journal_bytes, 4096);
        assert_eq!(config.task_history, 7);
        let default = serve_config(&[]).expect("config");
        assert_eq!(default.clock, wxcc_mock::ClockMode::System);
        assert_eq!(default.journal_bytes, 16 * 1024 * 1024);
        assert_eq!(default.task_history, 10_000);
        assert_eq!(
            (default.max_subscriptions_per_org, default.max_minted_tokens, default.max_connections_per_user),
            (200, 10_000, 20)
        );
        let bounded =
            serve_config(&["--max-subscriptions", "3", "--max-minted-tokens", "7", "--max-connections-per-user", "2"])
                .expect("config");
        assert_eq!(
            (bounded.max_subscriptions_per_org, bounded.max_minted_tokens, bounded.max_connections_per_user),
            (3, 7, 2)
        );
        assert!(serve_config(&["--max-connections-per-user", "0"]).is_err());
        assert_eq!(default.rate_limit, None, "no rate limit unless asked");
        let limited = serve_config(&["--rate-limit", "300/min"]).expect("config");
        assert_eq!(limited.rate_limit.map(|l| l.per_minute.get()), Some(300));
        let error = serve_config(&["--rate-limit", "300"]).expect_err("no unit").to_string();
        assert!(error.contains("N/min"), "{error}");
        assert_eq!(default.server, wxcc_mock::server::ServerLimits::default());
        let guarded = serve_config(&["--max-connections", "64", "--header-read-timeout-ms", "250"]).expect("config");
        assert_eq!(guarded.server.max_connections, 64);
        assert_eq!(guarded.server.header_read_timeout, std::time::Duration::from_millis(250));
        assert_eq!((default.state_file, default.shutdown_grace), (None, std::time::Duration::from_secs(5)));
        assert!(default.access.cors_origins.is_empty() && default.access.tls.is_none());
        let out = std::env::temp_dir().join(format!("wxcc-mock-flags-{}.pem", std::process::id()));
        let tls = serve_config(&["--tls", "--tls-cert-out", out.to_str().expect("utf-8")]).expect("config");
        let written = std::fs::read_to_string(&out).expect("the certificate is written");
        assert_eq!(tls.access.tls.map(|t| t.cert_pem), Some(written));
        let _ = std::fs::remove_file(out);
        assert!(serve_config(&["--tls-cert", "/tmp/c.pem"]).is_err(), "a certificate needs its key");
        let cors = serve_config(&["--cors-origin", "https://a.example,https://b.example"]).expect("config");
        assert_eq!(cors.access.cors_origins, ["https://a.example", "https://b.example"]);
        let kept = serve_config(&["--state-file", "/tmp/s.json", "--shutdown-grace", "250ms"]).expect("config");
        assert_eq!(kept.state_file.as_deref(), Some(std::path::Path::new("/tmp/s.json")));
        assert_eq!(kept.shutdown_grace, std::time::Duration::from_millis(250));
        assert_eq!(super::parse_duration("2"), Ok(std::time::Duration::from_secs(2)));
        assert!(super::parse_duration("soon").is_err());
        assert!(default.access.admin_token.is_none() && default.access.allow_hosts.is_empty());
        let exposed = serve_config(&[
            "--public-url",
            "https://mock.example.com",
            "--allow-host",
            "a.lan,b.lan",
            "--admin-token",
            "t0k",
        ])
        .expect("config");
        assert_eq!(exposed.access.public_url.map(|u| u.to_string()), Some("https://mock.example.com/".to_owned()));
        assert_eq!(exposed.access.allow_hosts, ["a.lan", "b.lan"]);
        assert_eq!(exposed.access.admin_token.as_deref(), Some("t0k"));
        let err = serve_config(&["--clock-start", "1000"]).expect_err("a start needs a virtual clock");
        assert!(err.to_string().contains("--clock virtual"), "{err}");
    }
}
