//! `parkpay-local`: the whole parkpay API on one port.
//!
//! ```text
//! parkpay-local                      serve (PARKPAY_ADDR, default 127.0.0.1:3000)
//! parkpay-local token SUB [--operator]   print a token for SUB (same secret as the server)
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
        Some("-h") | Some("--help") | Some("help") => {
            println!("usage: parkpay-local [serve] | parkpay-local token SUB [--operator]");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("parkpay-local: unknown command {other:?} (try --help)");
            ExitCode::from(2)
        }
    }
}

fn token(args: &[String]) -> ExitCode {
    let operator = args.iter().any(|a| a == "--operator");
    let Some(sub) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: parkpay-local token SUB [--operator]");
        return ExitCode::from(2);
    };
    let dir = parkpay_local::data_dir(&env);
    match parkpay_local::jwt_secret(&env, &dir)
        .map(JwtKeys::new)
        .and_then(|k| k.mint(sub, operator, 24 * 3600).map_err(|e| parkpay_local::StartError::DataDir(e.to_string())))
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
        println!("  get a token: curl -s '{base}/_dev/token?sub=driver-1'   (operators: &operator=true)");
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
    tokio::select! {
        r = server.handle => match r {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => { eprintln!("parkpay-local: server error: {e}"); ExitCode::FAILURE }
            Err(e) => { eprintln!("parkpay-local: server task failed: {e}"); ExitCode::FAILURE }
        },
        _ = tokio::signal::ctrl_c() => { println!("stopping"); ExitCode::SUCCESS }
    }
}
