//! `parkpay-local`: the whole parkpay API on one port.
//!
//! ```text
//! parkpay-local                      serve (PARKPAY_ADDR, default 127.0.0.1:3000)
//! parkpay-local token SUB [--operator] [--gate]   print a token for SUB (same secret as the server)
//! parkpay-local sweep                turn money owed with no obligation into obligations, in
//!                                    the store the settings name (embedded, or PARKPAY_STORE=dynamodb
//!                                    PARKPAY_TABLE=… on a deployment's table); prints a JSON summary
//! ```

use std::process::ExitCode;

use parkpay_local::jwt::JwtKeys;

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("token") => token(&args[1..]),
        Some("sweep") => sweep().await,
        Some("-h") | Some("--help") | Some("help") => {
            println!(
                "usage: parkpay-local [serve] | parkpay-local token SUB [--operator] [--gate] | parkpay-local sweep"
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("parkpay-local: unknown command {other:?} (try --help)");
            ExitCode::from(2)
        }
    }
}

fn token(args: &[String]) -> ExitCode {
    let mut groups = Vec::new();
    if args.iter().any(|a| a == "--operator") {
        groups.push(parkpay_api::identity::OPERATOR_GROUP);
    }
    if args.iter().any(|a| a == "--gate") {
        groups.push(parkpay_api::identity::GATE_GROUP);
    }
    let Some(sub) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: parkpay-local token SUB [--operator] [--gate]");
        return ExitCode::from(2);
    };
    let dir = parkpay_local::data_dir(&env);
    match parkpay_local::jwt_secret(&env, &dir)
        .map(JwtKeys::new)
        .and_then(|k| k.mint_in(sub, &groups, 24 * 3600).map_err(|e| parkpay_local::StartError::DataDir(e.to_string())))
    {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("parkpay-local: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The one-time sweep (`parkpay_api::sweep`) over the configured store. Safe to repeat and to
/// run beside live traffic; exit status 1 if any session could not be checked.
async fn sweep() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let table = env("PARKPAY_TABLE").filter(|t| !t.is_empty()).unwrap_or_else(|| "parkpay".to_owned());
    let stores = match parkpay_local::open_stores(&env, &table, false).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("parkpay-local sweep: {e}");
            return ExitCode::FAILURE;
        }
    };
    let clock = parkpay_api::SystemClock;
    match parkpay_api::sweep::sweep_all(&*stores.store, &*stores.scan, &clock, parkpay_local::SWEEP_PAGE_ITEMS).await {
        Ok(r) => {
            let summary = serde_json::json!({
                "sessions": r.sessions, "pages": r.pages, "turned": r.turned, "total": r.total(), "errors": r.errors,
            });
            println!("{summary}");
            if r.errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("parkpay-local sweep: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,parkpay=info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let server = match parkpay_local::start(&env).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("parkpay-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = server.base_url.as_str().trim_end_matches('/');
    println!("parkpay local server listening on {base}");
    println!("  data:        {}", parkpay_local::data_dir(&env).display());
    println!("  PhonePe:     simulator at {base}{}/ (pay pages, /_sim/ control API)", parkpay_local::SIMULATOR_PREFIX);
    if server.dev.token {
        println!(
            "  get a token: curl -s '{base}/_dev/token?sub=driver-1'   (operators: &operator=true, gates: &gate=true)"
        );
    } else {
        println!(
            "  get a token: parkpay-local token driver-1 [--operator]   (/_dev/ is off: not loopback, or PRODUCTION)"
        );
    }
    if server.dev.clock {
        println!(
            "  move time:   curl -s -X POST {base}/_dev/clock/advance -d '{{\"seconds\": 60}}'   (reconciles meanwhile)"
        );
    }
    println!("  try:         curl -s {base}/api/lots/");
    println!("  console:     {base}{}   (operators: sign in with an operator's token)", parkpay_api::console::PATH);
    tokio::select! {
        r = server.handle => match r {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => { eprintln!("parkpay-local: server error: {e}"); ExitCode::FAILURE }
            Err(e) => { eprintln!("parkpay-local: server task failed: {e}"); ExitCode::FAILURE }
        },
        _ = tokio::signal::ctrl_c() => { println!("stopping"); ExitCode::SUCCESS }
    }
}
