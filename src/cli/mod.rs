//! The command line (DESIGN section 8). `main` calls [`run`] and maps its result to an exit
//! code: 0 success, 1 a step failed / a finding was reported / the operator aborted, 2 usage,
//! configuration or inventory error (nothing ran).

mod audit;
mod auth;
#[cfg(feature = "demo")]
mod demo;
mod discover;
mod docs;
mod drill;
mod gate;
mod incident;
mod inventory;
mod notify;
mod progress;
mod record;
mod records;
mod report;
mod rotate;
mod scan;
mod sink;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::inventory::Inventory;
use crate::paths;
use crate::runbook::Runbook;

pub use gate::TerminalGate;
pub use sink::LineSink;

/// Incident response for leaked API keys held by AI agents.
///
/// keyfire keeps an inventory of agent keys (metadata only, never a secret value) and, when
/// one leaks, walks the on-call engineer through revoke, redeploy, audit, report and
/// reschedule, calling the providers' APIs and writing a tamper-evident record.
#[derive(Debug, Parser)]
#[command(name = "keyfire", version, propagate_version = true)]
pub struct Cli {
    /// Inventory file or directory of *.toml files (repeatable; `:`-separated in the variable).
    #[arg(
        long,
        global = true,
        env = "KEYFIRE_INVENTORY",
        value_delimiter = ':',
        value_name = "PATH"
    )]
    pub inventory: Vec<PathBuf>,
    /// Where incident records live.
    #[arg(long, global = true, env = "KEYFIRE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: config.toml in the platform's config directory).
    #[arg(long, global = true, env = "KEYFIRE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Runbook file to use instead of the built-in runbooks/key-compromise.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    /// The team's shared record location (s3://bucket/prefix, gs://, az://, file:///path;
    /// `?endpoint=URL&region=NAME` for S3-compatible stores). Overrides `[records] location`.
    #[arg(long, global = true, env = "KEYFIRE_RECORDS", value_name = "URL")]
    pub records: Option<String>,
    /// Write a debug log (scrubbed of secrets) to logs/ in the data directory, for a bug
    /// report: -v for requests, actions and record appends, -vv for more. `KEYFIRE_LOG=debug`
    /// does the same. On a terminal, -v also shows a campaign's per-action lines.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The subcommand to run; `None` opens the console (an input error without the `tui`
    /// feature or without a terminal).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Browse and check the key inventory.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// Start, resume and inspect incidents.
    Incident {
        #[command(subcommand)]
        command: IncidentCommand,
    },
    /// Check incident records for tampering.
    Record {
        #[command(subcommand)]
        command: RecordCommand,
    },
    /// The team's shared record location: retention check, queued uploads.
    Records {
        #[command(subcommand)]
        command: RecordsCommand,
    },
    /// Admin credentials in the OS keyring, referenced as `keyring:NAME`.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Rehearse the runbook: reads are real, writes are shown and never sent (exit 1 when the
    /// reads found problems).
    Drill {
        #[arg(value_name = "KEY", required_unless_present_any = ["agent", "all"])]
        keys: Vec<String>,
        /// Every key this agent holds.
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// Every key in the inventory.
        #[arg(long)]
        all: bool,
        /// Send the drill's messages (each labelled DRILL) to the notifiers routed "drill".
        #[arg(long)]
        notify: bool,
    },
    /// Send a test message through the inventory's notifiers.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Check keys' usage for anomalies over a window (exit 1 when a rule fires; for cron).
    Audit {
        /// The key to audit (or --all).
        #[arg(
            value_name = "KEY",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        key: Option<String>,
        /// Every key in the inventory (default window: the last 24 hours).
        #[arg(long)]
        all: bool,
        /// Start of the window (RFC 3339 time or YYYY-MM-DD); default: the key's last rotation.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Gateway logs to read (JSON Lines or CSV; see the README for the fields).
        #[arg(long = "logs", value_name = "FILE")]
        logs: Vec<PathBuf>,
        /// One JSON document on stdout, as described by assets/audit.schema.json.
        #[arg(long)]
        json: bool,
        /// Send the findings (and overdue drills) to the notifiers routed "finding"/"drill".
        #[arg(long, requires = "all")]
        notify: bool,
        /// Open an incident for each key with findings of the rules in policy.respond_to,
        /// and notify (approvals as usual, or --yes).
        #[arg(long, requires = "all")]
        respond: bool,
        /// With --respond: approve every write without asking (unattended contain-first).
        #[arg(long, requires = "respond")]
        yes: bool,
    },
    /// Render an incident's breach report from its record (also written beside it).
    Report {
        id: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Render a record that fails verification anyway; every page is marked UNVERIFIED.
        #[arg(long)]
        force: bool,
    },
    /// Rotate keys in the safe order: create, store, verify, then revoke the old key.
    Rotate {
        /// Keys to rotate (or --due).
        #[arg(
            value_name = "KEY",
            required_unless_present_any = ["due", "resume"],
            conflicts_with_all = ["due", "resume"]
        )]
        keys: Vec<String>,
        /// Every key whose rotation is due or overdue (interrupted rotations are finished
        /// first).
        #[arg(long, conflicts_with = "resume")]
        due: bool,
        /// Finish an interrupted or failed rotation from its record.
        #[arg(long, value_name = "ID")]
        resume: Option<String>,
        /// Rehearse: reads are sent, writes are shown and recorded, never sent.
        #[arg(long)]
        dry_run: bool,
        /// Approve every write without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Run keyfire over its built-in training environment (no set-up, no network).
    Demo {
        /// Run a scripted incident headless and print the outcome.
        #[arg(long)]
        no_tui: bool,
    },
    /// Find leaked keys in files, git history or scanner reports and match them to the
    /// inventory, never printing a value (exit 1 when a live or unmanaged key is found).
    Scan(scan::ScanArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print keyfire's manual page, or write one page per command into a directory.
    Man {
        /// Write keyfire.1, keyfire-incident.1, keyfire-incident-start.1, … here.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Every key with agents, provider, scopes, age, days until due and status.
    List {
        /// One JSON document on stdout, as described by assets/inventory-list.schema.json.
        #[arg(long)]
        json: bool,
    },
    /// One key with its blast radius: agents, their other keys, store, owner and on-call.
    Show {
        key: String,
        /// One JSON document on stdout, as described by assets/inventory-show.schema.json.
        #[arg(long)]
        json: bool,
    },
    /// Hygiene findings (exit 1 when there are any).
    Lint {
        /// One JSON document on stdout, as described by assets/inventory-lint.schema.json.
        #[arg(long)]
        json: bool,
        /// Also list every key at the providers that can (read-only, as `discover`):
        /// shadow keys, keys the provider no longer knows, drift.
        #[arg(long)]
        online: bool,
    },
    /// Compare the keys the providers hold with the inventory: shadow keys, keys gone from
    /// the provider, drift (read-only; exit 1 when anything differs or a provider could not
    /// be listed).
    Discover {
        /// Only this provider (repeatable; default: every provider that can list keys).
        #[arg(long = "provider", value_name = "ID")]
        providers: Vec<String>,
        /// One JSON document on stdout, as described by assets/inventory-discover.schema.json.
        #[arg(long)]
        json: bool,
        /// Write the shadow keys as [[keys]] entries to this new file (never a value).
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Open an incident over one or more keys and run the compromise runbook. Several keys
    /// (or --agent) make a campaign: one incident, keys run concurrently, one approval per
    /// step for the batch.
    Start {
        #[arg(required_unless_present = "agent", value_name = "KEY")]
        keys: Vec<String>,
        /// Every key this agent holds (a leaked agent config).
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// Drill: reads are sent, writes are shown and recorded but never sent.
        #[arg(long)]
        dry_run: bool,
        /// Create, store and verify the replacement before revoking (no outage).
        #[arg(long)]
        zero_downtime: bool,
        /// Start of the exposure window (RFC 3339 time or YYYY-MM-DD, not in the future);
        /// default: last rotation.
        #[arg(long, value_name = "TIME")]
        exposed_since: Option<String>,
        /// Why the incident was opened (leak report, ticket), kept in the record.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Gateway logs (JSON Lines or CSV) the audit step reads besides the provider's usage.
        #[arg(long = "logs", value_name = "FILE")]
        logs: Vec<PathBuf>,
        /// Approve every write without asking (destructive ones included).
        #[arg(long)]
        yes: bool,
        /// Run headless: status lines on stdout, approvals on the terminal or by --yes.
        #[arg(long)]
        no_tui: bool,
        /// The report step's answer to "could customer data have been reached?", in the
        /// console or headless (without it: asked on a terminal; with --yes alone: unknown).
        #[arg(long, value_name = "ANSWER", value_parser = ["yes", "no", "unknown"])]
        customer_data: Option<String>,
    },
    /// Continue an interrupted incident from its record (from the shared location when one
    /// is configured: on any machine).
    Resume {
        id: String,
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        no_tui: bool,
        /// Take the incident's lease even though another process holds it (recorded).
        #[arg(long)]
        take_over: bool,
        /// The report step's answer to "could customer data have been reached?", if the
        /// record has none yet (see `incident start`).
        #[arg(long, value_name = "ANSWER", value_parser = ["yes", "no", "unknown"])]
        customer_data: Option<String>,
    },
    /// Open and past incidents and drills.
    List {
        /// One JSON document on stdout, as described by assets/incident-list.schema.json.
        #[arg(long)]
        json: bool,
    },
    /// One incident: summary and timeline.
    Show {
        id: String,
        /// One JSON document on stdout, as described by assets/incident-show.schema.json.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message to each notifier (or the one named) and show what it answered
    /// (exit 1 when one was not delivered).
    Test {
        #[arg(value_name = "ID")]
        id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Store a credential: masked prompt, or one line of stdin when it is not a terminal.
    Set { name: String },
    /// Names stored by `auth set` and the keyring back-end (never values).
    List {
        /// One JSON document on stdout, as described by assets/auth-list.schema.json.
        #[arg(long)]
        json: bool,
    },
    /// Delete a stored credential.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Check the hash chain and the signed head of one record (incident id or path), or of
    /// every record.
    Verify {
        #[arg(value_name = "ID|PATH")]
        target: Option<String>,
        /// One JSON document on stdout, as described by assets/record-verify.schema.json.
        #[arg(long)]
        json: bool,
        /// Trust only the public keys in FILE (`ed25519:<hex>`, one a line; see `record
        /// public-key`): for a record copied from another machine.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Compare the local record with its shared copy at URL and name the first
        /// difference.
        #[arg(long, value_name = "URL")]
        against: Option<String>,
    },
    /// Print the public key that signs this machine's records (creating the key on first
    /// use), to verify them elsewhere with `record verify --public-key`.
    PublicKey,
}

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Whether the location enforces write-once retention: creates a probe object, tries to
    /// create it again and to delete it, and says what the store allowed (exit 1 when a
    /// record could be deleted or overwritten).
    Check {
        /// One JSON document on stdout, as described by assets/records-check.schema.json.
        #[arg(long)]
        json: bool,
    },
    /// Share the entries still queued in this data directory's incident folders.
    Flush,
}

/// An error at the binary edge, with its exit code.
impl Cli {
    /// Commands that only print (reports, listings, verification, documentation): when the
    /// reader of their output goes away (`| head`), they stop quietly like any Unix filter.
    /// Commands that act on keys never do: an incident must not die with its pager.
    pub fn only_prints(&self) -> bool {
        matches!(
            &self.command,
            Some(
                Command::Report { .. }
                    | Command::Record { .. }
                    | Command::Completions { .. }
                    | Command::Man { .. }
                    | Command::Incident {
                        command: IncidentCommand::List { .. } | IncidentCommand::Show { .. }
                    }
            )
        )
    }
}

/// Why a command did not run to the end: the process exit status and the line printed on
/// standard error. Error paths avoid quoting a value that may be a key; the binary still
/// passes the message through [`scrub_formats`](crate::scrub_formats) before printing it.
#[derive(Debug)]
pub struct CliError {
    /// Exit status: 2 for bad input (arguments, inventory, configuration), 1 for a failure
    /// while running.
    pub code: u8,
    /// What went wrong, for the operator; printed as `keyfire: {message}`.
    pub message: String,
}

impl CliError {
    /// Bad input from the operator (arguments, files, configuration): exit status 2.
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// A failure while running (network, file system, terminal): exit status 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Exit status of a command that ran.
pub type Exit = Result<u8, CliError>;

/// Resolved global options.
pub struct Context {
    pub inventory_paths: Option<Vec<PathBuf>>,
    pub data_dir: PathBuf,
    pub runbook_path: Option<PathBuf>,
    pub clock: Arc<dyn Clock>,
    /// `--records`, `KEYFIRE_RECORDS` or `[records] location`, with the `[records]` table.
    pub records: Option<(String, crate::record::shared::RecordsConfig)>,
    sharing: std::sync::OnceLock<Arc<crate::record::shared::Sharing>>,
}

impl Context {
    pub fn from_cli(cli: &Cli) -> Result<Self, CliError> {
        let config = crate::config::load_config(cli.config.clone())
            .map_err(|e| CliError::input(e.to_string()))?;
        Ok(Self {
            inventory_paths: crate::config::inventory_paths(&cli.inventory, &config),
            data_dir: paths::data_dir(cli.data_dir.clone().or(config.data_dir.clone())),
            runbook_path: cli.runbook.clone().or(config.runbook),
            clock: Arc::new(SystemClock),
            records: {
                let table = config.records.unwrap_or_default();
                cli.records
                    .clone()
                    .filter(|l| !l.trim().is_empty())
                    .or_else(|| table.location.clone())
                    .map(|l| (l, table))
            },
            sharing: std::sync::OnceLock::new(),
        })
    }

    /// The shared record location, opened (`None` when none is configured).
    pub fn sharing(&self) -> Result<Option<Arc<crate::record::shared::Sharing>>, CliError> {
        use crate::record::shared::{Location, SharedStore, Sharing, block_on};
        let Some((location, table)) = &self.records else {
            return Ok(None);
        };
        if let Some(s) = self.sharing.get() {
            return Ok(Some(s.clone()));
        }
        let parsed =
            Location::parse(location, table).map_err(|e| CliError::input(e.to_string()))?;
        let store = block_on(SharedStore::open(parsed, table.clone()))
            .map_err(|e| CliError::input(e.to_string()))?;
        let sharing = Arc::new(Sharing::new(store));
        Ok(Some(self.sharing.get_or_init(|| sharing).clone()))
    }

    pub fn inventory(&self) -> Result<Inventory, CliError> {
        let paths = self.inventory_paths.clone().ok_or_else(|| {
            CliError::input(
                crate::inventory::InventoryError::NoneConfigured(
                    paths::config_dir().join("inventory.toml"),
                )
                .to_string(),
            )
        })?;
        let inventory =
            crate::inventory::load(&paths).map_err(|e| CliError::input(e.to_string()))?;
        tracing::debug!(
            keys = inventory.keys.len(),
            agents = inventory.agents.len(),
            "inventory loaded"
        );
        Ok(inventory)
    }

    pub fn runbook(&self) -> Result<Runbook, CliError> {
        match &self.runbook_path {
            Some(p) => Runbook::load(p),
            None => Runbook::builtin(),
        }
        .map_err(|e| CliError::input(e.to_string()))
    }

    pub fn today(&self) -> chrono::NaiveDate {
        self.clock.now().date_naive()
    }
}

/// Runs the parsed command line as the `keyfire` binary does: resolves configuration,
/// inventory and data directory, then the subcommand (or the console when there is none).
/// Returns the exit status; output goes to the process's standard output and error.
pub fn run(cli: Cli) -> Exit {
    // Generated documentation needs no inventory, data directory or configuration.
    match &cli.command {
        Some(Command::Completions { shell }) => return docs::completions(*shell),
        Some(Command::Man { dir }) => return docs::man(dir.as_deref()),
        _ => {}
    }
    // A misspelt keyring choice is an input error before anything runs, not a failed step.
    crate::keyring::Choice::from_env().map_err(|e| CliError::input(e.to_string()))?;
    let ctx = Context::from_cli(&cli)?;
    progress::set_verbose(cli.verbose);
    let log = start_debug_log(&cli, &ctx)?;
    let result = dispatch(cli, &ctx);
    if let Some(mut log) = log {
        match &result {
            Ok(code) => tracing::debug!(code, "command finished"),
            Err(e) => tracing::debug!(code = e.code, error = %e.message, "command failed"),
        }
        log.finish();
        eprintln!("keyfire: debug log written to {}", log.path().display());
    }
    result
}

/// The debug log, when `-v` or `KEYFIRE_LOG` asks for one, with what a bug report opens
/// with: version, command line (scrubbed), data directory and inventory.
fn start_debug_log(
    cli: &Cli,
    ctx: &Context,
) -> Result<Option<crate::debug_log::DebugLog>, CliError> {
    use crate::debug_log::{DebugLog, ENV, level};
    let env = std::env::var(ENV).ok();
    let wanted = level(cli.verbose, env.as_deref()).map_err(|e| CliError::input(e.to_string()))?;
    let Some(level) = wanted else {
        return Ok(None);
    };
    let log =
        DebugLog::start(&ctx.data_dir, level).map_err(|e| CliError::failed(e.to_string()))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        command = %crate::debug_log::command_line(),
        "keyfire started"
    );
    tracing::info!(
        data_dir = %ctx.data_dir.display(),
        inventory = ?ctx.inventory_paths,
        config = ?cli.config,
        records = ctx.records.as_ref().map(|(l, _)| crate::debug_log::shown_url(l)),
        "configuration"
    );
    Ok(Some(log))
}

fn dispatch(cli: Cli, ctx: &Context) -> Exit {
    match cli.command {
        None => console(ctx),
        Some(Command::Inventory { command }) => inventory::run(ctx, command),
        Some(Command::Incident { command }) => incident::run(ctx, command),
        Some(Command::Record { command }) => record::run(ctx, command),
        Some(Command::Records { command }) => records::run(ctx, command),
        Some(Command::Auth { command }) => auth::run(ctx, command),
        Some(Command::Audit {
            key,
            all,
            since,
            logs,
            json,
            notify,
            respond,
            yes,
        }) => audit::run(
            ctx,
            audit::Args {
                key,
                all,
                since,
                logs,
                json,
                notify,
                respond,
                yes,
            },
        ),
        Some(Command::Notify {
            command: NotifyCommand::Test { id },
        }) => notify::test(ctx, id),
        Some(Command::Report { id, format, force }) => report::run(ctx, &id, format, force),
        Some(Command::Drill {
            keys,
            agent,
            all,
            notify,
        }) => drill::run(ctx, keys, agent, all, notify),
        Some(Command::Rotate {
            keys,
            due,
            resume,
            dry_run,
            yes,
        }) => match resume {
            Some(id) => rotate::resume(ctx, &id, dry_run, yes),
            None => rotate::run(ctx, keys, due, dry_run, yes),
        },
        #[cfg(feature = "demo")]
        Some(Command::Demo { no_tui }) => demo::run(ctx, no_tui),
        #[cfg(not(feature = "demo"))]
        Some(Command::Demo { .. }) => Err(CliError::input(
            "this build of keyfire has no training environment: build it with the `demo` feature (on by default)",
        )),
        Some(Command::Scan(args)) => scan::run(ctx, args),
        Some(Command::Completions { .. } | Command::Man { .. }) => Ok(0),
    }
}

/// `keyfire` with no subcommand: the console over the configured inventory. Input errors are
/// reported before the terminal is touched.
#[cfg(feature = "tui")]
fn console(ctx: &Context) -> Exit {
    use std::io::IsTerminal;
    let setup = incident::setup(ctx)?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::input(
            "the console needs a terminal; use a subcommand (see `keyfire --help`)",
        ));
    }
    crate::tui::run(setup, crate::tui::ConsoleOptions::default())
        .map_err(|e| CliError::failed(format!("terminal error: {e}")))?;
    Ok(0)
}

#[cfg(not(feature = "tui"))]
fn console(_ctx: &Context) -> Exit {
    Err(CliError::input(
        "this keyfire was built without the console (feature `tui`); use a subcommand (see `keyfire --help`)",
    ))
}

/// One tokio runtime for a command that talks to the network.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))
}

/// `1 key`, `3 keys`: counts in summary lines.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `--exposed-since` and `--since`: RFC 3339, or a date meaning its midnight UTC; not later
/// than the command's clock.
pub fn parse_start(ctx: &Context, text: &str) -> Result<chrono::DateTime<chrono::Utc>, CliError> {
    crate::clock::parse_start(text, ctx.clock.now()).map_err(CliError::input)
}
