//! `wxcc-contract`: verify a server against the WxCC contract, or report what a client sent
//! off-contract to the mock.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use wxcc_contract_tests::verify::{self, Outcome, VerifyConfig};

#[derive(Debug, Parser)]
#[command(name = "wxcc-contract", version, about = "Check servers and clients against the WxCC contract")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the contract suite over HTTP against a server (the mock, or a real WxCC org).
    Verify(VerifyArgs),
    /// Print the off-contract requests the mock recorded; exit 1 if there are any.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The server, e.g. http://127.0.0.1:8080 or https://api.wxcc-us1.cisco.com.
    #[arg(long, env = "WXCC_BASE_URL")]
    base_url: String,
    /// A Contact Center administrator's token with cjp:config_read and cjp:config_write.
    #[arg(long, env = "WXCC_ADMIN_TOKEN")]
    admin_token: String,
    /// A plain agent's token (no administrator role) with cjp:user.
    #[arg(long, env = "WXCC_AGENT_TOKEN")]
    agent_token: String,
    /// Seed for the generated bodies (the same seed sends the same bodies).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many generated bodies to send.
    #[arg(long, default_value_t = 16)]
    cases: u32,
    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Only run checks that cannot change the org (for production).
    #[arg(long)]
    read_only: bool,
    /// A certificate (PEM) to trust for https:// and wss://: the one `wxcc-mock serve --tls` wrote.
    #[arg(long, env = "WXCC_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The mock's base URL.
    #[arg(long, env = "WXCC_BASE_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// The mock's --admin-token, if it runs with one.
    #[arg(long, env = "WXCC_MOCK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
}

fn print(outcome: &Outcome) {
    println!("{outcome}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wxcc-contract: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Verify(args) => {
            let config = VerifyConfig {
                base_url: args.base_url,
                admin_token: args.admin_token,
                agent_token: args.agent_token,
                seed: args.seed,
                cases: args.cases,
                read_only: args.read_only,
                ca_cert: match args.ca_cert.as_ref().map(std::fs::read_to_string).transpose() {
                    Ok(pem) => pem,
                    Err(e) => {
                        eprintln!("wxcc-contract: reading --ca-cert: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            println!(
                "verifying {} (seed {}, {} cases{})",
                config.base_url,
                config.seed,
                config.cases,
                if config.read_only { ", read-only" } else { "" }
            );
            let report = runtime.block_on(verify::verify(&config, print));
            report.finish(args.junit.as_deref(), "verify")
        }
        Command::Report(args) => {
            match runtime.block_on(verify::violations(&args.base_url, args.admin_token.as_deref())) {
                Ok(violations) => {
                    let report = verify::violations_report(&violations);
                    report.outcomes.iter().for_each(print);
                    report.finish(args.junit.as_deref(), "client-contract")
                }
                Err(e) => {
                    eprintln!("wxcc-contract: {e}");
                    ExitCode::from(2)
                }
            }
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
}
