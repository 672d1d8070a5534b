//! PhonePe's published conformance vectors, byte for byte: the exact inputs of its documented
//! examples and the `X-VERIFY` (or v2 webhook `Authorization`) value each must give.
//!
//! `docs/phonepe.md` §5 carries the same vectors as text; `tests/vectors.rs` checks that the
//! document and this list are identical and that every vector reproduces, and the simulator's
//! conformance test sends the request vectors to the simulator.

/// PhonePe's public sandbox salt key (merchant `PGTESTPAYUAT`), which the v1 vectors are signed
/// with. Public, not a secret.
pub const SANDBOX_SALT_KEY: &str = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";
/// Its index.
pub const SANDBOX_SALT_INDEX: u32 = 1;
/// PhonePe's public sandbox merchant.
pub const SANDBOX_MERCHANT_ID: &str = "PGTESTPAYUAT";

/// The documented pay request: the base64 of a pretty-printed JSON payload (PGTESTPAYUAT,
/// merchantTransactionId MT7850590068188104, 10000 paise, PAY_PAGE), exactly as sent.
pub const PAY_BASE64: &str = "ewogICJtZXJjaGFudElkIjogIlBHVEVTVFBBWVVBVCIsCiAgIm1lcmNoYW50VHJhbnNhY3Rpb25JZCI6ICJNVDc4NTA1OTAwNjgxODgxMDQiLAogICJtZXJjaGFudFVzZXJJZCI6ICJNVUlEMTIzIiwKICAiYW1vdW50IjogMTAwMDAsCiAgInJlZGlyZWN0VXJsIjogImh0dHBzOi8vd2ViaG9vay5zaXRlL3JlZGlyZWN0LXVybCIsCiAgInJlZGlyZWN0TW9kZSI6ICJSRURJUkVDVCIsCiAgImNhbGxiYWNrVXJsIjogImh0dHBzOi8vd2ViaG9vay5zaXRlL2NhbGxiYWNrLXVybCIsCiAgIm1vYmlsZU51bWJlciI6ICI5OTk5OTk5OTk5IiwKICAicGF5bWVudEluc3RydW1lbnQiOiB7CiAgICAidHlwZSI6ICJQQVlfUEFHRSIKICB9Cn0=";
pub const PAY_PATH: &str = "/pg/v1/pay";
pub const PAY_X_VERIFY: &str = "d7a8e4458caa6fcd781166bbdc85fec76740c18cb9baa9a4c48cf2387d554180###1";

/// The documented status request of that payment.
pub const STATUS_PATH: &str = "/pg/v1/status/PGTESTPAYUAT/MT7850590068188104";
pub const STATUS_X_VERIFY: &str = "95c6d60f014b7190aa417083aca2489bb5b0a729d0421c17dea19f5913e6d741###1";

/// The documented refund request (original OD620471739210623, refund ROD620471739210623, 1000
/// paise), base64 exactly as sent.
pub const REFUND_BASE64: &str = "ewogICAgIm1lcmNoYW50SWQiOiAiUEdURVNUUEFZVUFUIiwKICAgICJtZXJjaGFudFVzZXJJZCI6ICJVc2VyMTIzIiwKICAgICJvcmlnaW5hbFRyYW5zYWN0aW9uSWQiOiAiT0Q2MjA0NzE3MzkyMTA2MjMiLAogICAgIm1lcmNoYW50VHJhbnNhY3Rpb25JZCI6ICJST0Q2MjA0NzE3MzkyMTA2MjMiLAogICAgImFtb3VudCI6IDEwMDAsCiAgICAiY2FsbGJhY2tVcmwiOiAiaHR0cHM6Ly93ZWJob29rLnNpdGUvY2FsbGJhY2stdXJsIgp9";
pub const REFUND_PATH: &str = "/pg/v1/refund";
pub const REFUND_X_VERIFY: &str = "9dbaf1a531f683699ca9385103f321bc75f6adce881e68c6557cacc0b088d3f8###1";

/// PG v2 webhook `Authorization` for username `username`, password `password` (the official
/// SDKs' own test vector).
pub const WEBHOOK_AUTHORIZATION: &str = "bc842c31a9e54efe320d30d948be61291f3ceee4766e36ab25fa65243cd76e0e";
/// ... and for an empty username and password (`sha256(":")`).
pub const WEBHOOK_EMPTY_AUTHORIZATION: &str = "e7ac0786668e0ff0f02b62bd04f45ff636fd82db63b1104601c975dc005f3a67";

/// Our simulator's default PG v2 OAuth client (not PhonePe's: PhonePe issues each merchant its
/// own). Public, not secrets; a deployment in simulation mode uses them unless told otherwise.
pub const SIMULATOR_CLIENT_ID: &str = "PARKPAY-SIM-CLIENT";
pub const SIMULATOR_CLIENT_SECRET: &str = "parkpay-simulator-client-secret";
/// PhonePe's sandbox (UAT) client version.
pub const SIMULATOR_CLIENT_VERSION: u32 = 1;
/// The simulator's default webhook username and password: the pair of
/// [`WEBHOOK_AUTHORIZATION`].
pub const SIMULATOR_WEBHOOK_USERNAME: &str = "username";
pub const SIMULATOR_WEBHOOK_PASSWORD: &str = "password";

/// What a vector signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// v1 pay or refund: `sha256(base64 + path + salt_key) + "###" + salt_index`.
    Body { salt_key: &'static str, salt_index: u32, path: &'static str, base64: &'static str },
    /// v1 status: `sha256(path + salt_key) + "###" + salt_index`.
    Path { salt_key: &'static str, salt_index: u32, path: &'static str },
    /// v2 webhook: `sha256(username + ":" + password)`.
    Webhook { username: &'static str, password: &'static str },
}

/// One published example and the header value it must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vector {
    /// Its name in `docs/phonepe.md` §5.
    pub name: &'static str,
    pub input: Input,
    pub expected: &'static str,
}

/// Every vector, in the order of `docs/phonepe.md` §5.
pub const VECTORS: &[Vector] = &[
    Vector {
        name: "v1-pay",
        input: Input::Body {
            salt_key: SANDBOX_SALT_KEY,
            salt_index: SANDBOX_SALT_INDEX,
            path: PAY_PATH,
            base64: PAY_BASE64,
        },
        expected: PAY_X_VERIFY,
    },
    Vector {
        name: "v1-status",
        input: Input::Path { salt_key: SANDBOX_SALT_KEY, salt_index: SANDBOX_SALT_INDEX, path: STATUS_PATH },
        expected: STATUS_X_VERIFY,
    },
    Vector {
        name: "v1-refund",
        input: Input::Body {
            salt_key: SANDBOX_SALT_KEY,
            salt_index: SANDBOX_SALT_INDEX,
            path: REFUND_PATH,
            base64: REFUND_BASE64,
        },
        expected: REFUND_X_VERIFY,
    },
    Vector {
        name: "v2-webhook",
        input: Input::Webhook { username: "username", password: "password" },
        expected: WEBHOOK_AUTHORIZATION,
    },
    Vector {
        name: "v2-webhook-empty",
        input: Input::Webhook { username: "", password: "" },
        expected: WEBHOOK_EMPTY_AUTHORIZATION,
    },
];
