//! The `payhost` command: serve, check a config, run benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "payhost", version, about = "Payment-gateway host running provider plugins as WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the plugins of a config file until SIGINT/SIGTERM; SIGHUP reloads the config.
    Serve {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        /// Write the bound addresses here as JSON once serving (for scripts and tests).
        #[arg(long)]
        ready_file: Option<PathBuf>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        json_logs: bool,
    },
    /// Validate a config: parse it, read its secrets, load and check every plugin; then exit.
    Check {
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Write a new plugin crate, or check a built component (against a config).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Measure dispatch cost, HTTP throughput, swap latency and ledger throughput.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write the crate NAME (outside any workspace): a component that builds with one
    /// command, a native unit test, a README and a sample [[plugins]] block.
    New {
        name: String,
        #[arg(long, value_enum, default_value_t = World::Provider)]
        world: World,
        /// Folder to create the crate in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Depend on payhost-sdk at this path (default: the SDK of the source tree this
        /// binary was built from).
        #[arg(long, conflicts_with = "sdk_git")]
        sdk_path: Option<PathBuf>,
        /// Depend on payhost-sdk from this git repository (the payhost repository).
        #[arg(long)]
        sdk_git: Option<String>,
        /// Tag, branch or commit of --sdk-git.
        #[arg(long, requires = "sdk_git")]
        sdk_rev: Option<String>,
    },
    /// Print a component's world, contract version, needs and imports; with --config and
    /// --instance, every grant that instance lacks or has beyond what the plugin declares.
    /// Exits non-zero with one message per problem.
    Check {
        file: PathBuf,
        #[arg(long, requires = "instance")]
        config: Option<PathBuf>,
        #[arg(long, requires = "config")]
        instance: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum World {
    Provider,
    PaymentSystem,
}

const TEMPLATE_WASM: &str = "target/wasm32-wasip2/plugin/payhost_plugin_template.wasm";
const OTHER_WASM: &str = "target/wasm32-wasip2/plugin/payhost_plugin_faulty.wasm";

#[derive(Subcommand)]
enum BenchCommand {
    /// Per-request dispatch of the template plugin: fresh store, instantiate, call, drop.
    Dispatch {
        #[arg(long, default_value = TEMPLATE_WASM)]
        component: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        iterations: usize,
    },
    /// Requests/second of a template route vs the native /healthz route, same server.
    Http {
        #[arg(long, default_value = TEMPLATE_WASM)]
        component: PathBuf,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Per route and round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rounds of the three routes one after another; the ratios are their median.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Reload-to-serving time and latency during swaps vs without.
    Swap {
        #[arg(long, default_value = TEMPLATE_WASM)]
        component: PathBuf,
        #[arg(long, default_value = OTHER_WASM)]
        other: PathBuf,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Ledger debits/second and latency per client count on a storage URL, beside the
    /// single-commit ceiling of the same storage.
    Ledger {
        #[arg(long, default_value = "sqlite://data/bench-ledger.db")]
        storage: String,
        /// Client counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = payhost::ledger_bench::DEFAULT_CLIENTS.to_vec())]
        clients: Vec<usize>,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// The fresh path under each engine knob (copy-on-write off, batched decommit, ...).
    Knobs {
        #[arg(long, default_value = TEMPLATE_WASM)]
        component: PathBuf,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// payhost's routes beside `wasmtime serve` in one run (`tests/peer/run.sh` builds
    /// the peer and calls this).
    Peer {
        #[arg(long, default_value = TEMPLATE_WASM)]
        component: PathBuf,
        /// The `wasmtime` CLI to compare with.
        #[arg(long)]
        wasmtime: PathBuf,
        /// A `wasi:http` proxy component for `wasmtime serve`.
        #[arg(long)]
        hello: PathBuf,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// p50/p99 of /healthz and a template route with 0, 1 and 2 instances burning CPU.
    Isolation {
        #[arg(long, default_value = TEMPLATE_WASM)]
        component: PathBuf,
        /// The looping plugin (the faulty test plugin's `/loop`).
        #[arg(long, default_value = OTHER_WASM)]
        faulty: PathBuf,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// The server's `runtime.plugin_nice` (0: plugin threads at the host's priority).
        #[arg(long, default_value_t = 10)]
        plugin_nice: i32,
    },
    /// Every benchmark above but `peer`, with its defaults (PostgreSQL too when reachable).
    All,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_logs = matches!(cli.command, Command::Serve { json_logs: true, .. });
    // Only a server exports spans; a config that does not load is reported by `serve`.
    let otlp = match &cli.command {
        Command::Serve { config, .. } => payhost::config::Config::load(config).ok().and_then(|c| c.tracing.otlp),
        _ => None,
    };
    let telemetry = match payhost::telemetry::init(json_logs, otlp.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if telemetry.exporting() {
        tracing::info!(endpoint = %otlp.as_ref().map(|o| o.endpoint.as_str()).unwrap_or_default(), "exporting spans over OTLP");
    }
    // The host's own workers: connections, `/healthz`, the admin API, job scheduling.
    // Plugin code runs on threads of its own (`runtime::pool`).
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config, ready_file, .. } => serve(config, ready_file).await,
            Command::Check { config } => check(config).await,
            Command::Plugin { command } => plugin(command).await,
            Command::Bench { what } => bench(what).await,
        }
    });
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: PathBuf, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let running = payhost::app::start(&config).await?;
    if let Some(path) = ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&running.bound)?)?;
        std::fs::rename(&tmp, &path)?;
    }
    let app = running.live.clone();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                let result = app.reload_config("SIGHUP").await;
                payhost::admin::audit::config_reload_by_signal(&app, &result).await;
                match result {
                    Ok(summary) => tracing::info!(%summary, "config reloaded on SIGHUP"),
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "config reload on SIGHUP refused; the running config stays"),
                }
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    Ok(())
}

async fn check(config_path: PathBuf) -> anyhow::Result<()> {
    let config = payhost::config::Config::load(&config_path)?;
    let summary = payhost::app::check(&config).await?;
    println!("{summary}");
    Ok(())
}

async fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    use payhost::plugin_kit::new::{new_plugin, SdkSource};
    use payhost::runtime::component::WorldKind;
    match command {
        PluginCommand::New { name, world, dir, sdk_path, sdk_git, sdk_rev } => {
            let sdk = match (sdk_path, sdk_git) {
                (Some(path), _) => SdkSource::Path(std::path::absolute(&path)?),
                (None, Some(url)) => SdkSource::Git { url, rev: sdk_rev },
                (None, None) => SdkSource::from_build_tree().ok_or_else(|| {
                    anyhow::anyhow!("this binary was not built from a payhost checkout: give --sdk-path PATH or --sdk-git URL")
                })?,
            };
            let world = match world {
                World::Provider => WorldKind::Provider,
                World::PaymentSystem => WorldKind::PaymentSystem,
            };
            let root = new_plugin(&name, world, &dir, &sdk)?;
            println!("created {}", root.display());
            println!("next: cd {} && cargo test && cargo build --target wasm32-wasip2 --profile plugin", root.display());
            Ok(())
        }
        PluginCommand::Check { file, config, instance } => {
            let with = config.as_deref().zip(instance.as_deref());
            let report = payhost::plugin_kit::check::check_plugin(&file, with).await?;
            for line in &report.lines {
                println!("{line}");
            }
            for problem in &report.problems {
                eprintln!("problem: {problem}");
            }
            match report.problems.len() {
                0 => Ok(()),
                n => anyhow::bail!("{n} problem(s) found"),
            }
        }
    }
}

async fn bench(what: BenchCommand) -> anyhow::Result<()> {
    use payhost::bench;
    match what {
        BenchCommand::Dispatch { component, iterations } => println!("{}", bench::dispatch(&component, iterations).await?),
        BenchCommand::Http { component, connections, seconds, rounds } => {
            println!("{}", bench::http(&component, connections, seconds, rounds).await?)
        }
        BenchCommand::Swap { component, other, connections, seconds } => {
            println!("{}", bench::swap(&component, &other, connections, seconds).await?)
        }
        BenchCommand::Ledger { storage, clients, seconds } => {
            let report = payhost::ledger_bench::bench_ledger(&storage, &clients, std::time::Duration::from_secs(seconds)).await?;
            print!("{report}");
        }
        BenchCommand::Knobs { component, connections, seconds } => print!("{}", bench::knobs(&component, connections, seconds).await?),
        BenchCommand::Peer { component, wasmtime, hello, connections, seconds } => {
            print!("{}", payhost::peer_bench::peer(&component, &wasmtime, &hello, connections, seconds).await?)
        }
        BenchCommand::Isolation { component, faulty, connections, seconds, plugin_nice } => {
            println!("{}", payhost::isolation_bench::isolation(&component, &faulty, connections, seconds, plugin_nice).await?)
        }
        BenchCommand::All => {
            let template = PathBuf::from(TEMPLATE_WASM);
            println!("{}", bench::dispatch(&template, 20_000).await?);
            println!("{}", bench::http(&template, 32, 5, 3).await?);
            println!("{}", bench::swap(&template, &PathBuf::from(OTHER_WASM), 16, 5).await?);
            println!("{}", payhost::isolation_bench::isolation(&template, &PathBuf::from(OTHER_WASM), 8, 3, 10).await?);
            std::fs::create_dir_all("data")?;
            let clients = payhost::ledger_bench::DEFAULT_CLIENTS;
            let sqlite = payhost::ledger_bench::bench_ledger("sqlite://data/bench-ledger.db", clients, std::time::Duration::from_secs(5)).await?;
            print!("{sqlite}");
            let pg = std::env::var("PAYHOST_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            match payhost::ledger_bench::bench_ledger(&pg, clients, std::time::Duration::from_secs(5)).await {
                Ok(report) => print!("{report}"),
                Err(e) => println!("ledger on PostgreSQL skipped: {e:#}"),
            }
        }
    }
    Ok(())
}
