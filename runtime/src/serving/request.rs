//! The body of an online feature request, as Feast's feature server accepts it.
//!
//! ```json
//! {
//!   "features": ["user_transaction_features:amount_log1p", "req:amount_to_avg_ratio"],
//!   "entities": {"user_id": [42, 43], "amount": [12.5, 980.0]},
//!   "full_feature_names": false
//! }
//! ```
//!
//! `features` or `feature_service` (exactly one) names what to serve; `entities` is columnar:
//! one array per join key and per request field, all of the same length, one element per row.
//! Request data (the inputs of request-time views that come from the caller) rides in
//! `entities` too, as in Feast.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};

/// The entity columns of a request: name and one value per row.
pub(crate) type EntityColumns<'a> = Vec<(&'a str, &'a [Value])>;

/// An online feature request (the JSON body of `POST /get-online-features`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureRequest {
    /// Features, `view:feature` (or `view:*` for every feature of a view).
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// A feature service declared in `skewless.toml`, instead of `features`.
    #[serde(default)]
    pub feature_service: Option<String>,
    /// Join keys and request fields, columnar: name -> one value per row.
    #[serde(default)]
    pub entities: Map<String, Value>,
    /// Name features `view__feature` instead of `feature`.
    #[serde(default)]
    pub full_feature_names: bool,
}

impl FeatureRequest {
    /// Parses a JSON body; a malformed body or an unknown field is `InvalidInput` with
    /// serde's line and column.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the request body is not a valid feature request: {e}; expected \
                     {{\"features\": [\"view:feature\", ...] or \"feature_service\": \"name\", \
                     \"entities\": {{\"join_key\": [...], ...}}, \"full_feature_names\": bool}}"
                ),
            )
            .with_context("field", "body")
        })
    }

    /// The entity columns as arrays, and their common length; an error naming the column
    /// that is not an array or whose length differs.
    pub(crate) fn columns(&self) -> Result<(EntityColumns<'_>, usize)> {
        let mut columns = Vec::with_capacity(self.entities.len());
        let mut rows: Option<(usize, &str)> = None;
        for (name, value) in &self.entities {
            let Value::Array(values) = value else {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "`entities.{name}` is {}, expected an array with one value per row",
                        json_kind(value)
                    ),
                )
                .with_context("field", format!("entities.{name}")));
            };
            match rows {
                Some((n, first)) if n != values.len() => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "`entities.{name}` has {} values but `entities.{first}` has {n}; \
                             every entity column needs one value per row",
                            values.len()
                        ),
                    )
                    .with_context("field", format!("entities.{name}")));
                }
                Some(_) => {}
                None => rows = Some((values.len(), name)),
            }
            columns.push((name.as_str(), values.as_slice()));
        }
        Ok((columns, rows.map_or(0, |(n, _)| n)))
    }
}

/// "a string", "an object"...: what a JSON value is, for messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_feast_shape() {
        let r = FeatureRequest::from_json(
            br#"{"features": ["v:a"], "entities": {"user_id": [1, 2]}, "full_feature_names": true}"#,
        )
        .unwrap();
        assert_eq!(r.features.as_deref(), Some(&["v:a".to_owned()][..]));
        assert!(r.full_feature_names);
        let (columns, rows) = r.columns().unwrap();
        assert_eq!(rows, 2);
        assert_eq!(columns[0].0, "user_id");
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        let e =
            FeatureRequest::from_json(b"{\"features\": [\"v:a\"], \"entity\": {}}").unwrap_err();
        assert!(e.to_string().contains("unknown field `entity`"), "{e}");
        let e = FeatureRequest::from_json(b"{\"features\": 3}").unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = FeatureRequest::from_json(b"not json").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);

        let r = FeatureRequest::from_json(br#"{"entities": {"a": [1, 2], "b": [1]}}"#).unwrap();
        let e = r.columns().unwrap_err();
        assert!(
            e.to_string()
                .contains("`entities.b` has 1 values but `entities.a` has 2"),
            "{e}"
        );
        let r = FeatureRequest::from_json(br#"{"entities": {"a": 1}}"#).unwrap();
        let e = r.columns().unwrap_err();
        assert!(
            e.to_string()
                .contains("`entities.a` is a number, expected an array"),
            "{e}"
        );
        assert_eq!(e.context_value("field"), Some("entities.a"));
    }
}
