//! Served features as JSON: the Feast feature server's response, and the native one.
//!
//! **Feast** (`POST /get-online-features`), column-major, join keys first:
//!
//! ```json
//! {"metadata": {"feature_names": ["user_id", "amount_log1p"]},
//!  "results": [
//!    {"values": [42], "statuses": ["PRESENT"], "event_timestamps": ["1970-01-01T00:00:00Z"]},
//!    {"values": [4.61], "statuses": ["PRESENT"], "event_timestamps": ["2026-10-31T23:12:00Z"]}]}
//! ```
//!
//! Join keys report `PRESENT` at the epoch, and a feature with no visible row reports the
//! epoch too, as Feast does.
//!
//! **Native** (`POST /v1/online-features`): the same answer, plus what a caller needs to prove
//! where each value came from: per feature its view, type, and per value the component digest
//! that computed it; event times are exact microseconds (`null` when there is no row).
//!
//! ```json
//! {"now": "2026-11-25T10:00:00.123456Z",
//!  "join_keys": {"user_id": [42]},
//!  "features": [{"name": "amount_log1p", "view": "user_transaction_features",
//!                "feature": "amount_log1p", "type": "float64",
//!                "values": [4.61], "statuses": ["PRESENT"],
//!                "event_timestamps": [1793488320000000], "digests": ["sha256:..."]}]}
//! ```

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use skewless_runtime::online::{FeatureValue, KeyValue, ReadStatus};
use skewless_runtime::serving::{FeatureColumn, JsonValue, OnlineFeatures, format_timestamp};

/// `body` as JSON, into a buffer sized for the answer `f` up front (growing it as the answer
/// is written copied it several times).
pub(crate) fn to_json(body: &impl Serialize, f: &OnlineFeatures) -> serde_json::Result<Vec<u8>> {
    let columns = f.join_keys.len() + f.features.len();
    let mut out = Vec::with_capacity(64 + columns * (96 + 64 * f.rows));
    serde_json::to_writer(&mut out, body)?;
    Ok(out)
}

/// Feast's name of a status.
pub(crate) fn feast_status(status: ReadStatus) -> &'static str {
    match status {
        ReadStatus::Present => "PRESENT",
        ReadStatus::NullValue => "NULL_VALUE",
        ReadStatus::NotFound => "NOT_FOUND",
        ReadStatus::OutsideMaxAge => "OUTSIDE_MAX_AGE",
    }
}

const EPOCH: &str = "1970-01-01T00:00:00Z";

/// The Feast feature server's response body; with `view_metadata`, the
/// `metadata.feature_view_metadata` that Feast adds when a request sets
/// `include_feature_view_version_metadata`.
#[derive(Debug)]
pub(crate) struct Feast<'a> {
    pub(crate) features: &'a OnlineFeatures,
    pub(crate) view_metadata: Option<Vec<ViewMetadata<'a>>>,
}

/// One served view in `metadata.feature_view_metadata`. Feast's entry is `{name, version}`,
/// with `version` (an integer) left out when the view is not versioned, which ours are not:
/// a skewless view is identified by the digest of the component that computes it, given as
/// `digest` (a key Feast's clients ignore).
#[derive(Debug, Serialize)]
pub(crate) struct ViewMetadata<'a> {
    pub(crate) name: &'a str,
    pub(crate) digest: &'a str,
}

impl Serialize for Feast<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.features;
        let names: Vec<&str> = f
            .join_keys
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(f.features.iter().map(|c| &*c.name))
            .collect();
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry(
            "metadata",
            &Metadata {
                feature_names: names,
                feature_view_metadata: self.view_metadata.as_deref(),
            },
        )?;
        map.serialize_entry("results", &FeastResults(f))?;
        map.end()
    }
}

#[derive(Serialize)]
struct Metadata<'a> {
    feature_names: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature_view_metadata: Option<&'a [ViewMetadata<'a>]>,
}

struct FeastResults<'a>(&'a OnlineFeatures);

impl Serialize for FeastResults<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut seq = s.serialize_seq(Some(f.join_keys.len() + f.features.len()))?;
        for (_, keys) in &f.join_keys {
            seq.serialize_element(&FeastKeyResult(keys))?;
        }
        for column in &f.features {
            seq.serialize_element(&FeastFeatureResult(column))?;
        }
        seq.end()
    }
}

struct FeastKeyResult<'a>(&'a [KeyValue]);

impl Serialize for FeastKeyResult<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0.len();
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("values", &Keys(self.0))?;
        map.serialize_entry("statuses", &vec!["PRESENT"; n])?;
        map.serialize_entry("event_timestamps", &vec![EPOCH; n])?;
        map.end()
    }
}

struct FeastFeatureResult<'a>(&'a FeatureColumn);

impl Serialize for FeastFeatureResult<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let timestamps: Vec<String> = c
            .event_ts
            .iter()
            .map(|t| t.map_or_else(|| EPOCH.to_owned(), format_timestamp))
            .collect();
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("values", &Values(&c.values))?;
        map.serialize_entry("statuses", &Statuses(&c.statuses))?;
        map.serialize_entry("event_timestamps", &timestamps)?;
        map.end()
    }
}

/// The native response body.
#[derive(Debug)]
pub(crate) struct Native<'a>(pub(crate) &'a OnlineFeatures);

impl Serialize for Native<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("now", &format_timestamp(f.now_us))?;
        map.serialize_entry("join_keys", &JoinKeys(&f.join_keys))?;
        map.serialize_entry("features", &NativeFeatures(&f.features))?;
        map.end()
    }
}

struct JoinKeys<'a>(&'a [(String, Vec<KeyValue>)]);

impl Serialize for JoinKeys<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, keys) in self.0 {
            map.serialize_entry(name, &Keys(keys))?;
        }
        map.end()
    }
}

struct NativeFeatures<'a>(&'a [FeatureColumn]);

impl Serialize for NativeFeatures<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for c in self.0 {
            let digests: Vec<Option<&str>> = c.digests.iter().map(|d| d.as_deref()).collect();
            seq.serialize_element(&NativeFeature {
                name: &c.name,
                view: &c.view,
                feature: &c.feature,
                r#type: c.data_type.to_string(),
                values: Values(&c.values),
                statuses: Statuses(&c.statuses),
                event_timestamps: &c.event_ts,
                digests,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct NativeFeature<'a> {
    name: &'a str,
    view: &'a str,
    feature: &'a str,
    r#type: String,
    values: Values<'a>,
    statuses: Statuses<'a>,
    event_timestamps: &'a [Option<i64>],
    digests: Vec<Option<&'a str>>,
}

struct Keys<'a>(&'a [KeyValue]);

impl Serialize for Keys<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for key in self.0 {
            match key {
                KeyValue::Int64(v) => seq.serialize_element(v)?,
                KeyValue::Utf8(v) => seq.serialize_element(v)?,
            }
        }
        seq.end()
    }
}

struct Values<'a>(&'a [FeatureValue]);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(&JsonValue(v))?;
        }
        seq.end()
    }
}

struct Statuses<'a>(&'a [ReadStatus]);

impl Serialize for Statuses<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for status in self.0 {
            seq.serialize_element(feast_status(*status))?;
        }
        seq.end()
    }
}
