//! The subcommands of the `commitment-tracker` binary (DESIGN §7).

use crate::auth::Role;
use crate::commands::Commands;
use crate::config::{
    Cli, Command, DEFAULT_DATABASE_URL, LogCommand, ServeArgs, Settings, TokenCommand,
};
use crate::embedded::{self, EmbeddedPostgres};
use crate::progress::Progress;
use crate::startup::Application;
use crate::store::{self, feed::Feed, feed::FeedSettings, tokens};
use crate::{graphql, seed};
use anyhow::Context;
use sqlx::PgPool;
use std::path::Path;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let needs_database = !matches!(cli.command, Command::ExportSchema | Command::Log(_));
    let (database_url, cluster) = if needs_database {
        resolve_database(cli.database_url.as_deref(), &cli.data_dir).await?
    } else {
        (String::new(), None)
    };
    let result = run_command(cli.command, database_url).await;
    // A private cluster this command started stops now, whatever the outcome.
    drop(cluster);
    result
}

/// The database to use, and the private cluster serving it if there is one: `embedded`
/// starts (or joins) the cluster in `data_dir`; no URL at all means the local server at the
/// default address, or the private cluster when nothing answers there.
async fn resolve_database(
    url: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<(String, Option<EmbeddedPostgres>)> {
    let embedded = |why: &str| {
        tracing::info!(data_dir = %data_dir.display(), "{why}");
        let data_dir = data_dir.to_owned();
        async move {
            let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&data_dir))
                .await
                .context("starting the private PostgreSQL cluster")??;
            Ok((cluster.url(embedded::DATABASE), Some(cluster)))
        }
    };
    match url {
        Some("embedded") => {
            embedded("DATABASE_URL=embedded: using a private PostgreSQL cluster").await
        }
        Some(url) => Ok((url.to_owned(), None)),
        None => {
            let address = "127.0.0.1:5432";
            let answers = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                tokio::net::TcpStream::connect(address),
            )
            .await
            .is_ok_and(|c| c.is_ok());
            if answers {
                Ok((DEFAULT_DATABASE_URL.to_owned(), None))
            } else {
                embedded("DATABASE_URL is not set and nothing answers at 127.0.0.1:5432: using a private PostgreSQL cluster").await
            }
        }
    }
}

async fn run_command(command: Command, database_url: String) -> anyhow::Result<()> {
    let cli_database_url = database_url;
    match command {
        Command::Serve(args) => serve(cli_database_url, *args).await,
        Command::Migrate => {
            open(&cli_database_url).await?;
            eprintln!("migrations are up to date");
            Ok(())
        }
        Command::Import { file } => {
            let pool = open(&cli_database_url).await?;
            import(&pool, &file).await
        }
        Command::ExportSchema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Log(LogCommand::Audit {
            url,
            key,
            state,
            witnesses,
            witness_quorum,
        }) => {
            let policy = witness_policy(&witnesses, witness_quorum)?;
            let progress = Progress::for_terminal();
            let audited =
                crate::tlog::audit::audit_with(&url, &key, state.as_deref(), &policy, &progress)
                    .await;
            progress.finish();
            match audited {
                Ok(report) => {
                    println!(
                        "OK: checkpoint of {} leaves signed by {}{}; {} new leaves in {} tiles recompute its root{}",
                        report.checkpoint.size,
                        report.checkpoint.origin,
                        if report.cosigned_by.is_empty() {
                            String::new()
                        } else {
                            format!(" and cosigned by {}", report.cosigned_by.join(", "))
                        },
                        report.leaves_fetched,
                        report.tiles_fetched,
                        if report.previous_size > 0 {
                            format!(
                                " and extend the {} leaves saved before",
                                report.previous_size
                            )
                        } else {
                            String::new()
                        }
                    );
                    Ok(())
                }
                Err(e) => {
                    println!("FAIL {e}");
                    anyhow::bail!("the audit failed: {e}")
                }
            }
        }
        Command::Log(LogCommand::Keygen { origin }) => {
            anyhow::ensure!(
                signed_note::is_key_name_valid(&origin),
                "--origin must be non-empty, without spaces or '+' (e.g. tracker.example.org/log)"
            );
            let (skey, vkey) = crate::tlog::checkpoint::generate_key(&origin)?;
            println!("{skey}");
            eprintln!("{vkey}");
            Ok(())
        }
        Command::Verify => {
            let pool = open(&cli_database_url).await?;
            let progress = Progress::for_terminal();
            let report = store::verify::verify_with(&pool, &progress).await;
            progress.finish();
            let report = report?;
            println!(
                "checked {} events in {} streams (hash chains, versions, stream heads) and {} projection rows against a replay",
                report.events, report.streams, report.projection_rows
            );
            for p in &report.problems {
                println!("FAIL {p}");
            }
            if report.ok() {
                println!("OK: every chain holds and the projections equal the replay");
                Ok(())
            } else {
                anyhow::bail!("{} problem(s) found", report.problems.len())
            }
        }
        Command::Erase { name, reason } => {
            let pool = open(&cli_database_url).await?;
            erase(&pool, &name, &reason).await
        }
        Command::RebuildProjections => {
            let pool = open(&cli_database_url).await?;
            let progress = Progress::for_terminal();
            let report = store::rebuild::rebuild_with(&pool, &progress).await;
            progress.finish();
            let report = report?;
            println!(
                "rebuilt the projections from {} events ({} during the rebuild) and swapped them in",
                report.events, report.caught_up
            );
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            role,
            name,
            expires_in_days,
        }) => {
            let pool = open(&cli_database_url).await?;
            let role = Role::parse(&role).context("unknown role")?;
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let expires =
                expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let (_, token) = tokens::create(&pool, name.trim(), role, expires).await?;
            println!("{token}");
            Ok(())
        }
        Command::Token(TokenCommand::List) => {
            let pool = open(&cli_database_url).await?;
            for t in tokens::list(&pool).await? {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) if at <= chrono::Utc::now() => format!("expired {at}"),
                    (None, Some(at)) => format!("expires {at}"),
                    (None, None) => "active".to_owned(),
                };
                println!(
                    "{}\t{}\t{}\tcreated {}\t{}",
                    t.id, t.role, t.name, t.created_at, state
                );
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            let pool = open(&cli_database_url).await?;
            anyhow::ensure!(
                tokens::revoke(&pool, id).await?,
                "no active token has id {id}"
            );
            eprintln!("revoked {id}");
            Ok(())
        }
    }
}

/// Creates the database if missing, connects and migrates.
async fn open(url: &str) -> anyhow::Result<PgPool> {
    let pool = store::open_pool(url, 5).await?;
    store::migrate(&pool)
        .await
        .context("cannot migrate the database")?;
    Ok(pool)
}

async fn import(pool: &PgPool, file: &Path) -> anyhow::Result<()> {
    let seed = seed::load(file)?;
    let feed = Feed::new(pool.clone(), FeedSettings::default()).await?;
    let commands = Commands::new(pool.clone(), feed);
    let progress = Progress::for_terminal();
    let report = seed::import_with(&commands, &seed, &progress).await;
    progress.finish();
    let report = report?;
    eprintln!(
        "imported {:?} from {}: {} items written, {} already present",
        seed.name,
        file.display(),
        report.written,
        report.already_present
    );
    Ok(())
}

/// The actor recorded for an erasure run from the command line, by an operator with access
/// to the database.
const ERASE_ACTOR: &str = "commitment-tracker erase";

async fn erase(pool: &PgPool, name: &str, reason: &str) -> anyhow::Result<()> {
    let cmd = crate::domain::erasure::ErasePersonalData::parse(name, reason)?;
    let feed = Feed::new(pool.clone(), FeedSettings::default()).await?;
    let commands = Commands::new(pool.clone(), feed);
    let ctx = crate::commands::CommandContext {
        actor: crate::auth::Actor {
            token_id: uuid::Uuid::nil(),
            name: ERASE_ACTOR.to_owned(),
            role: Role::Admin,
        },
        request_id: None,
        idempotency_key: None,
        written: Default::default(),
    };
    let outcome = commands.erase_personal_data(&ctx, cmd).await?;
    println!("{}", outcome.erased_values);
    if outcome.erased_values == 0 {
        eprintln!("no stored value was that name: nothing was erased or recorded");
    } else {
        eprintln!(
            "erased {} values ({} token names; those tokens are revoked) and recorded PersonalDataErased",
            outcome.erased_values,
            outcome.revoked_tokens.len()
        );
    }
    Ok(())
}

/// The witnesses `log audit` was told to trust, and how many must have cosigned.
fn witness_policy(
    witnesses: &[String],
    quorum: Option<usize>,
) -> anyhow::Result<crate::tlog::audit::WitnessPolicy> {
    let witnesses = witnesses
        .iter()
        .map(|w| crate::tlog::cosignature::CosignatureVerifier::new(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--witness: {e}"))?;
    let quorum = quorum.unwrap_or(witnesses.len());
    anyhow::ensure!(
        quorum <= witnesses.len(),
        "--witness-quorum {quorum} is more than the {} witnesses given",
        witnesses.len()
    );
    Ok(crate::tlog::audit::WitnessPolicy { witnesses, quorum })
}

async fn serve(database_url: String, args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(database_url, &args)?;
    let app = Application::build(settings).await?;
    if let Some(file) = &args.import {
        import(app.pool(), file).await?;
    }
    tracing::info!(address = %app.local_addr(), "serving GraphQL at http://{}/graphql", app.local_addr());
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
