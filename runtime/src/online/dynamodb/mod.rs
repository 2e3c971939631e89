//! The DynamoDB online store: its configuration (always compiled, so that a project file
//! naming it parses in every build) and, with the `dynamodb` cargo feature, the store itself
//! (`store.rs`, on the AWS SDK).

#[cfg(feature = "dynamodb")]
mod store;

use std::fmt;

use serde::{Deserialize, Serialize};

#[cfg(feature = "dynamodb")]
pub use store::DynamoDbStore;

/// A secret from a configuration file (an AWS secret key, a session token): shown as `***` by
/// `Debug` and `Display` and serialized as `***`, so that no log line, error or dump of a
/// configuration carries it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that hands it to the AWS SDK.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// `[online] type = "dynamodb"`: one DynamoDB table holds every view's rows.
///
/// ```toml
/// [online]
/// type = "dynamodb"
/// table = "skewless-online"
/// region = "eu-west-1"                # else AWS_REGION or the AWS profile's region
/// endpoint = "http://127.0.0.1:8000"  # optional: a local DynamoDB-compatible server
/// # Optional: without them, the standard AWS chain (AWS_ACCESS_KEY_ID and
/// # AWS_SECRET_ACCESS_KEY, the profile files, web identity, ECS and EC2 roles).
/// access_key_id = "AKIA..."
/// secret_access_key = "..."
/// session_token = "..."
/// ```
///
/// The table has the partition key `pk` (binary) and the sort key `sk` (string); see
/// `docs/online-stores.md` for the command that creates it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoDbConfig {
    /// The table's name.
    pub table: String,
    /// The AWS region; from the standard AWS environment when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Another endpoint than AWS's (`http://host:port`), for a local DynamoDB-compatible
    /// server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The access key id; with `secret_access_key`, instead of the standard AWS chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The secret access key (never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// A session token for temporary credentials (never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
}

impl DynamoDbConfig {
    /// Where the table is, for messages: `table <name> (region <r>, endpoint <url>)`, no
    /// credentials.
    pub fn describe(&self) -> String {
        let mut out = format!("table {}", self.table);
        let mut parts = Vec::new();
        if let Some(region) = &self.region {
            parts.push(format!("region {region}"));
        }
        if let Some(endpoint) = &self.endpoint {
            parts.push(format!("endpoint {endpoint}"));
        }
        if !parts.is_empty() {
            out.push_str(&format!(" ({})", parts.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let config: DynamoDbConfig = toml::from_str(
            "table = \"t\"\nregion = \"eu-west-1\"\naccess_key_id = \"AKIAEXAMPLE\"\n\
             secret_access_key = \"wJalrXUtnFEMI\"\nsession_token = \"FwoGZXIvYXdzEXAMPLE\"",
        )
        .unwrap();
        assert_eq!(
            config.secret_access_key.as_ref().unwrap().expose(),
            "wJalrXUtnFEMI"
        );
        let shown = format!(
            "{config:?} {} {}",
            config.describe(),
            serde_json::to_string(&config).unwrap()
        );
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("FwoGZXIvYXdzEXAMPLE"), "{shown}");
        assert_eq!(config.describe(), "table t (region eu-west-1)");
        let e = toml::from_str::<DynamoDbConfig>("table = \"t\"\nsecret = \"x\"").unwrap_err();
        assert!(e.to_string().contains("secret"), "{e}");
    }
}
