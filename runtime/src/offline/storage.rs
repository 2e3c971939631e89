//! Where a catalog's table files live: the one place that chooses iceberg's storage (the
//! `StorageFactory` every table's file IO is built from) by the warehouse's scheme.
//!
//! - A local path or `file://` warehouse: iceberg's own local file system storage, with
//!   whole-file writes (metadata files, manifests) synced (`durable.rs`).
//! - `s3://bucket[/prefix]`, or any warehouse with `[offline.s3]` settings: S3 or an
//!   S3-compatible server (SeaweedFS, MinIO, ...) through `iceberg-storage-opendal`, built only
//!   with the cargo feature `s3`. Every table file (Parquet data files, manifests, manifest
//!   lists, metadata files, and the deletes of an aborted job or of snapshot expiry) goes
//!   through the table's file IO, so all of them land there; only historical retrieval's spill
//!   files stay on the local disk.
//!
//! Credentials come from `[offline.s3]` or else from `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`; with neither, OpenDAL's own AWS chain
//! (profile files, web identity, EC2 metadata) applies. Secrets are [`Secret`]s: `***` in
//! `Debug`, `Display` and serialized forms, and [`S3Settings::scrub`] removes them from any
//! message that might quote them.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::io::{
    S3_ACCESS_KEY_ID, S3_ENDPOINT, S3_PATH_STYLE_ACCESS, S3_REGION, S3_SECRET_ACCESS_KEY,
    S3_SESSION_TOKEN, StorageFactory,
};
use serde::{Deserialize, Serialize};

use super::durable::DurableLocalStorageFactory;
use crate::error::{Error, ErrorKind, Result};
pub use crate::online::Secret;

/// `[offline.s3]`: how to reach the S3-compatible storage a catalog's tables are on.
///
/// ```toml
/// [offline.s3]
/// endpoint = "http://127.0.0.1:8333"   # optional: an S3-compatible server instead of AWS
/// region = "us-east-1"                 # else AWS_REGION
/// path_style = true                    # `endpoint/bucket/key` URLs (most self-hosted servers)
/// access_key_id = "..."                # optional, with secret_access_key (and session_token);
/// secret_access_key = "..."            # else AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// The server's URL (`http://host:port`); AWS's endpoint for the region when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The region; from `AWS_REGION` (or the AWS profile) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted ones
    /// (`bucket.endpoint/key`, Iceberg's and AWS's default).
    #[serde(default)]
    pub path_style: bool,
    /// The access key id; with `secret_access_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The secret access key (never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// A session token for temporary credentials (never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
}

/// The environment variables credentials are read from when the file has none.
const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
const ENV_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

impl S3Settings {
    /// The settings with the key pair taken from the environment when the file gives none.
    /// Half a key pair (an id without a secret or the reverse) is an
    /// [`InvalidInput`](ErrorKind::InvalidInput) error naming the missing half.
    pub fn resolved(&self) -> Result<S3Settings> {
        let mut out = self.clone();
        if out.access_key_id.is_none() && out.secret_access_key.is_none() {
            let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
            out.access_key_id = var(ENV_ACCESS_KEY_ID);
            out.secret_access_key = var(ENV_SECRET_ACCESS_KEY).map(Secret::new);
            if out.session_token.is_none() {
                out.session_token = var(ENV_SESSION_TOKEN).map(Secret::new);
            }
        }
        match (&out.access_key_id, &out.secret_access_key) {
            (Some(_), None) => Err(Error::new(
                ErrorKind::InvalidInput,
                "`[offline.s3]` has access_key_id but no secret_access_key (nor is \
                 AWS_SECRET_ACCESS_KEY set)",
            )),
            (None, Some(_)) => Err(Error::new(
                ErrorKind::InvalidInput,
                "`[offline.s3]` has secret_access_key but no access_key_id (nor is \
                 AWS_ACCESS_KEY_ID set)",
            )),
            _ => Ok(out),
        }
    }

    /// Where the storage is, for messages: `s3 endpoint <url> (region <r>)`, no credentials.
    pub fn describe(&self) -> String {
        let mut out = match &self.endpoint {
            Some(endpoint) => format!("s3 endpoint {endpoint}"),
            None => "aws s3".to_owned(),
        };
        if let Some(region) = &self.region {
            out.push_str(&format!(" (region {region})"));
        }
        out
    }

    /// The file IO properties iceberg's S3 storage reads (`s3.endpoint`, ...).
    pub(super) fn file_io_props(&self) -> HashMap<String, String> {
        let mut props = HashMap::new();
        if let Some(endpoint) = &self.endpoint {
            props.insert(S3_ENDPOINT.to_owned(), endpoint.clone());
        }
        if let Some(region) = &self.region {
            props.insert(S3_REGION.to_owned(), region.clone());
        }
        props.insert(S3_PATH_STYLE_ACCESS.to_owned(), self.path_style.to_string());
        if let Some(id) = &self.access_key_id {
            props.insert(S3_ACCESS_KEY_ID.to_owned(), id.clone());
        }
        if let Some(secret) = &self.secret_access_key {
            props.insert(S3_SECRET_ACCESS_KEY.to_owned(), secret.expose().to_owned());
        }
        if let Some(token) = &self.session_token {
            props.insert(S3_SESSION_TOKEN.to_owned(), token.expose().to_owned());
        }
        props
    }

    /// `message` with every secret of these settings replaced by `***`: for messages built
    /// from other libraries' errors, which might quote a request or a configuration.
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for secret in [&self.secret_access_key, &self.session_token]
            .into_iter()
            .flatten()
        {
            if !secret.expose().is_empty() {
                out = out.replace(secret.expose(), "***");
            }
        }
        out
    }
}

/// Whether `warehouse` names S3 storage by its scheme (`s3://`, `s3a://`, `s3n://`).
pub(super) fn is_s3_url(warehouse: &str) -> bool {
    ["s3://", "s3a://", "s3n://"]
        .iter()
        .any(|scheme| warehouse.starts_with(scheme))
}

/// The storage for a warehouse: local files unless the warehouse is an `s3://` URL or S3
/// settings are given.
pub(super) fn factory(
    warehouse: Option<&str>,
    s3: Option<&S3Settings>,
) -> Result<Arc<dyn StorageFactory>> {
    let wants_s3 = s3.is_some() || warehouse.is_some_and(is_s3_url);
    if !wants_s3 {
        return Ok(Arc::new(DurableLocalStorageFactory));
    }
    if let Some(warehouse) = warehouse
        && warehouse.contains("://")
        && !is_s3_url(warehouse)
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "`[offline.s3]` is given but the warehouse is not an `s3://bucket[/prefix]` URL",
        )
        .with_context("warehouse", warehouse));
    }
    s3_factory()
}

#[cfg(feature = "s3")]
fn s3_factory() -> Result<Arc<dyn StorageFactory>> {
    Ok(Arc::new(
        iceberg_storage_opendal::OpenDalStorageFactory::S3 {
            customized_credential_load: None,
        },
    ))
}

#[cfg(not(feature = "s3"))]
fn s3_factory() -> Result<Arc<dyn StorageFactory>> {
    Err(Error::new(
        ErrorKind::InvalidInput,
        "this skewless is built without S3 storage: build it with the `s3` feature (cargo \
         install --path cli --features s3)",
    ))
}

/// Checks that the storage answers and accepts the settings: lists at most one object under
/// the warehouse. (A `HEAD` of an absent object would not do: S3 table buckets, like
/// SeaweedFS's, refuse it with the same 403 as a wrong key.) Fails with
/// [`InvalidInput`](ErrorKind::InvalidInput) when the storage refuses (wrong keys, region,
/// or a missing bucket) and [`Unavailable`](ErrorKind::Unavailable) when it does not answer;
/// the message may quote the storage's error, so callers scrub it.
#[cfg(feature = "s3")]
pub(super) async fn check(settings: &S3Settings, warehouse: &str) -> Result<()> {
    let location = warehouse
        .split_once("://")
        .map_or(warehouse, |(_, rest)| rest);
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    let mut builder = opendal::services::S3::default()
        .bucket(bucket)
        .root(&format!("/{}", prefix.trim_matches('/')));
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if let Some(region) = &settings.region {
        builder = builder.region(region);
    }
    if !settings.path_style {
        builder = builder.enable_virtual_host_style();
    }
    if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
        builder = builder.access_key_id(id).secret_access_key(secret.expose());
    }
    if let Some(token) = &settings.session_token {
        builder = builder.session_token(token.expose());
    }
    let failed = |e: opendal::Error| {
        use opendal::ErrorKind as Kind;
        let kind = match e.kind() {
            Kind::PermissionDenied | Kind::NotFound | Kind::ConfigInvalid => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Unavailable,
        };
        Error::new(kind, format!("cannot use the S3 storage: {e}"))
    };
    let operator = opendal::Operator::new(builder).map_err(failed)?.finish();
    let mut lister = operator.lister_with("/").limit(1).await.map_err(failed)?;
    match futures::TryStreamExt::try_next(&mut lister).await {
        Ok(_) => Ok(()),
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_and_are_scrubbed_from_messages() {
        let settings: S3Settings = toml::from_str(
            "endpoint = \"http://127.0.0.1:1\"\nregion = \"us-east-1\"\npath_style = true\n\
             access_key_id = \"AKIAEXAMPLE\"\nsecret_access_key = \"wJalrXUtnFEMI\"\n\
             session_token = \"FwoGZXIvYXdzEXAMPLE\"",
        )
        .unwrap();
        let shown = format!(
            "{settings:?} {} {}",
            settings.describe(),
            serde_json::to_string(&settings).unwrap()
        );
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("FwoGZXIvYXdzEXAMPLE"), "{shown}");
        assert_eq!(
            settings.describe(),
            "s3 endpoint http://127.0.0.1:1 (region us-east-1)"
        );
        assert_eq!(
            settings.scrub("signed with wJalrXUtnFEMI and FwoGZXIvYXdzEXAMPLE"),
            "signed with *** and ***"
        );
        let props = settings.file_io_props();
        assert_eq!(props[S3_SECRET_ACCESS_KEY], "wJalrXUtnFEMI");
        assert_eq!(props[S3_PATH_STYLE_ACCESS], "true");
        let e = toml::from_str::<S3Settings>("secret = \"x\"").unwrap_err();
        assert!(e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn half_a_key_pair_is_refused() {
        let settings = S3Settings {
            access_key_id: Some("AKIAEXAMPLE".into()),
            ..S3Settings::default()
        };
        let e = settings.resolved().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("no secret_access_key"), "{e}");
    }

    #[test]
    fn the_warehouse_scheme_chooses_the_storage() {
        assert!(is_s3_url("s3://bucket/prefix"));
        assert!(!is_s3_url("file:///tmp/w"));
        // Local unless the warehouse is S3 or S3 settings are given.
        for local in [factory(Some("file:///tmp/w"), None), factory(None, None)] {
            // Whole files (metadata, manifests) synced: `durable.rs`.
            let local = format!("{:?}", local.unwrap());
            assert!(local.contains("DurableLocalStorageFactory"), "{local}");
        }
        let e = factory(Some("gs://bucket"), Some(&S3Settings::default()))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.context_value("warehouse"), Some("gs://bucket"));
        let s3 = factory(Some("s3://bucket"), None);
        assert_eq!(s3.is_ok(), cfg!(feature = "s3"));
    }
}
