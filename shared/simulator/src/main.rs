//! `parkpay-simulator`: PhonePe PG v1 and v2 on `PARKPAY_SIM_ADDR` (default 127.0.0.1:8090).
//! Settings: see `parkpay_simulator::settings_from`. A bad setting stops start-up with one line.

use std::io::IsTerminal;
use std::process::ExitCode;

use parkpay_simulator::{Simulator, settings_from_env};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let settings = match settings_from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("parkpay-simulator: {e}");
            return ExitCode::from(2);
        }
    };
    let (merchant, index) =
        settings.config.merchants.first().map(|(m, k)| (m.clone(), k.active_index().to_string())).unwrap_or_default();
    let client = settings.config.v2.client_id.clone();
    let webhooks = settings.config.v2.webhook_url.as_ref().map_or_else(|| "none".to_owned(), |u| u.to_string());
    let running = match Simulator::spawn(settings.config, settings.addr).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("parkpay-simulator: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "parkpay-simulator: PhonePe PG v1 and v2 simulator listening on {} (merchant {merchant}, salt index {index}; v2 client {client}, webhooks to {webhooks}; control API under /_sim/)",
        running.base_url
    );
    match running.handle.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("parkpay-simulator: server stopped: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("parkpay-simulator: server task failed: {e}");
            ExitCode::from(1)
        }
    }
}
