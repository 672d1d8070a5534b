//! One PhonePe PG v2 token for the whole deployment: 20 instances (each with its own memory and
//! its own HTTP client, as 20 cold Lambda instances would have) sharing one store ask PhonePe's
//! token endpoint (the simulator's) once per token, at its half-life, and once more when PhonePe
//! refuses it, however many of them need it at the same moment.

use std::sync::Arc;
use std::time::Duration;

use parkpay_api::shared_token::SharedToken;
use parkpay_checksum::WebhookCredentials;
use parkpay_gateway::phonepe_v2::OAuthTokenProvider;
use parkpay_gateway::phonepe_v2::token::{AccessToken, TokenProvider};
use parkpay_gateway::{Environment, PhonePeV2Config};
use parkpay_simulator::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, Simulator, SimulatorConfig};
use parkpay_store::{EmbeddedStore, TokenStore};
use secrecy::SecretString;

const INSTANCES: usize = 20;

fn instances(store: &Arc<dyn TokenStore>, base: &url::Url) -> Vec<Arc<SharedToken>> {
    let cfg = PhonePeV2Config::new(
        Environment::Simulation { base_url: base.clone() },
        SANDBOX_CLIENT_ID,
        1,
        SecretString::from(SANDBOX_CLIENT_SECRET),
        WebhookCredentials::new("username", SecretString::from("password")),
    );
    (0..INSTANCES)
        .map(|_| {
            let endpoint = Arc::new(OAuthTokenProvider::new(reqwest::Client::new(), &cfg));
            Arc::new(SharedToken::new(Arc::clone(store), endpoint, format!("phonepe-v2#{SANDBOX_CLIENT_ID}")))
        })
        .collect()
}

async fn all_current(instances: &[Arc<SharedToken>]) -> Vec<AccessToken> {
    // Spawned all before any is awaited: they run at once.
    let calls: Vec<_> = instances
        .iter()
        .map(|i| {
            let i = Arc::clone(i);
            tokio::spawn(async move { i.current().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.unwrap().unwrap());
    }
    tokens
}

fn all_same(tokens: &[AccessToken]) -> AccessToken {
    assert!(tokens.iter().all(|t| t.same_as(&tokens[0])), "every instance uses the same token");
    tokens[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_instances_share_one_token_per_half_life() {
    // Tokens live 6 s: due for refresh at 3 s.
    let cfg = SimulatorConfig::sandbox().with_fast_timings().with_token_lifetime(Duration::from_secs(6));
    let sim = Simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(EmbeddedStore::open(dir.path().join("t.redb")).unwrap());
    let fleet = instances(&store, &sim.base_url);

    // Cold: twenty at once, one token request.
    let first = all_same(&all_current(&fleet).await);
    assert_eq!(sim.simulator.token_requests(), 1);
    // Warm: from memory, no store read needed, no token request.
    all_same(&all_current(&fleet).await);
    assert_eq!(sim.simulator.token_requests(), 1);
    // A new instance (a cold start later) reads the stored token.
    let late = instances(&store, &sim.base_url);
    assert!(late[0].current().await.unwrap().same_as(&first));
    assert_eq!(sim.simulator.token_requests(), 1);

    // Past the half-life: one refresh for all of them. While one instance fetches, the others
    // go on with the old token (valid until it expires); the next call finds the new one stored.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let during = all_current(&fleet).await;
    assert_eq!(sim.simulator.token_requests(), 2);
    let second = during.iter().find(|t| !t.same_as(&first)).expect("one instance refreshed").clone();
    assert!(during.iter().all(|t| t.same_as(&first) || t.same_as(&second)));
    assert!(all_same(&all_current(&fleet).await).same_as(&second));
    assert_eq!(sim.simulator.token_requests(), 2);

    // PhonePe refuses the token (revoked): every instance asks for a replacement at once; one
    // request.
    sim.simulator.revoke_tokens();
    let calls: Vec<_> = fleet
        .iter()
        .map(|i| {
            let (i, rejected) = (Arc::clone(i), second.clone());
            tokio::spawn(async move { i.refresh(&rejected).await })
        })
        .collect();
    let mut replaced = Vec::new();
    for call in calls {
        replaced.push(call.await.unwrap().unwrap());
    }
    let third = all_same(&replaced);
    assert!(!third.same_as(&second));
    assert_eq!(sim.simulator.token_requests(), 3);
    // And the warm path then serves the replacement.
    assert!(all_same(&all_current(&fleet).await).same_as(&third));
    assert_eq!(sim.simulator.token_requests(), 3);
}
