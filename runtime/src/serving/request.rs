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
///
/// The fields and their rules are those of Feast's feature server (`GetOnlineFeaturesRequest`,
/// Feast 0.67): `entities` is required; `features` is a list (`[]` when absent, never `null`);
/// `feature_service` is a name or `null`; the two flags are booleans. Unknown top-level fields
/// are ignored, as Feast's server ignores them, so a newer client's extra field does not break
/// a request; a known field with a value of the wrong type is an error naming the field.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FeatureRequest {
    /// Features, `view:feature` (or `view:*` for every feature of a view); `None` when absent
    /// or empty (Feast's default is `[]`).
    #[serde(default, deserialize_with = "non_empty_list")]
    pub features: Option<Vec<String>>,
    /// A feature service declared in `skewless.toml`, instead of `features`.
    #[serde(default)]
    pub feature_service: Option<String>,
    /// Join keys and request fields, columnar: name -> one value per row.
    pub entities: Map<String, Value>,
    /// Name features `view__feature` instead of `feature`.
    #[serde(default)]
    pub full_feature_names: bool,
    /// Add, per feature view served, its name and the digest of the component serving it
    /// (`metadata.feature_view_metadata` in the Feast response).
    #[serde(default)]
    pub include_feature_view_version_metadata: bool,
}

/// `features`: a list of strings (not `null`, as in Feast); an empty list counts as absent.
fn non_empty_list<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let list = Vec::<String>::deserialize(deserializer)?;
    Ok((!list.is_empty()).then_some(list))
}

impl FeatureRequest {
    /// Parses a JSON body; a malformed body, a missing `entities` or a field of the wrong
    /// type is `InvalidInput` naming the field (with serde's line and column).
    pub fn from_json(body: &[u8]) -> Result<Self> {
        // The common case parses once; only a body that fails is looked at again, to name
        // the field at fault (serde says what was wrong, not always where).
        serde_json::from_slice(body).map_err(|e| diagnose(body, &e))
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

/// The error for a body that did not parse: the field at fault when one can be named.
fn diagnose(body: &[u8], parse_error: &serde_json::Error) -> Error {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            return Error::new(
                ErrorKind::InvalidInput,
                format!("the request body is not valid JSON: {e}; expected {SHAPE}"),
            )
            .with_context("field", "body");
        }
    };
    let Value::Object(fields) = &value else {
        return Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the request body is {}, expected a JSON object: {SHAPE}",
                json_kind(&value)
            ),
        )
        .with_context("field", "body");
    };
    if !fields.contains_key("entities") {
        return Error::new(
            ErrorKind::InvalidInput,
            format!("the request has no `entities`; expected {SHAPE}"),
        )
        .with_context("field", "entities");
    }
    for (field, expected) in FIELD_TYPES {
        let Some(given) = fields.get(*field) else {
            continue;
        };
        let fits = match *field {
            "features" => given
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            "feature_service" => given.is_string() || given.is_null(),
            "entities" => given.is_object(),
            _ => given.is_boolean(),
        };
        if !fits {
            return Error::new(
                ErrorKind::InvalidInput,
                format!("`{field}` is {}, expected {expected}", describe(given)),
            )
            .with_context("field", *field);
        }
    }
    Error::new(
        ErrorKind::InvalidInput,
        format!("the request body is not a valid feature request: {parse_error}; expected {SHAPE}"),
    )
    .with_context("field", "body")
}

/// What a feature request looks like, for messages.
const SHAPE: &str = "{\"features\": [\"view:feature\", ...] or \"feature_service\": \"name\", \
                     \"entities\": {\"join_key\": [...], ...}, \"full_feature_names\": bool}";

/// The known fields and what each must be.
const FIELD_TYPES: &[(&str, &str)] = &[
    (
        "entities",
        "an object of arrays, one per join key or request field",
    ),
    ("features", "an array of strings (\"view:feature\")"),
    (
        "feature_service",
        "a string (a feature service name) or null",
    ),
    ("full_feature_names", "true or false"),
    ("include_feature_view_version_metadata", "true or false"),
];

/// `a string ("x")`, `an array`...: a value's kind, with the value when it is short.
fn describe(value: &Value) -> String {
    match value {
        Value::Array(items) => match items.iter().find(|v| !v.is_string()) {
            Some(item) => format!("an array holding {}", describe(item)),
            None => "an array".to_owned(),
        },
        Value::Object(_) => "an object".to_owned(),
        Value::Null => "null".to_owned(),
        short => {
            let text = short.to_string();
            match text.len() <= 40 {
                true => format!("{} ({text})", json_kind(short)),
                false => json_kind(short).to_owned(),
            }
        }
    }
}

/// Checks the flags Feast's write bodies (`/push`, `/write-to-online-store`) may carry,
/// `allow_registry_cache` and `transform_on_write`: each, when given, must be a boolean. The
/// error names the flag (`field` context) and what it was.
pub fn check_feast_write_flags(body: &Map<String, Value>) -> Result<()> {
    for flag in ["allow_registry_cache", "transform_on_write"] {
        if let Some(given) = body.get(flag).filter(|v| !v.is_boolean()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{flag}` is {}, expected true or false", json_kind(given)),
            )
            .with_context("field", flag));
        }
    }
    Ok(())
}

/// "a string", "an object"...: what a JSON value is, for messages.
pub fn json_kind(value: &Value) -> &'static str {
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
    fn ignores_unknown_fields_and_takes_feasts_defaults() {
        // What Feast 0.67's SDK sends, plus a field of some newer client.
        let r = FeatureRequest::from_json(
            br#"{"entities": {"user_id": [1]}, "features": ["v:a"], "full_feature_names": false,
                 "include_feature_view_version_metadata": true, "some_future_field": {"x": 1}}"#,
        )
        .unwrap();
        assert!(r.include_feature_view_version_metadata);
        let r = FeatureRequest::from_json(
            br#"{"entities": {}, "features": [], "feature_service": "fraud"}"#,
        )
        .unwrap();
        assert_eq!(r.features, None, "an empty list counts as absent");
        assert_eq!(r.feature_service.as_deref(), Some("fraud"));
        let r = FeatureRequest::from_json(
            br#"{"entities": {}, "features": ["v:a"], "feature_service": null}"#,
        )
        .unwrap();
        assert_eq!(r.feature_service, None);
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        let e =
            FeatureRequest::from_json(b"{\"features\": [\"v:a\"], \"entity\": {}}").unwrap_err();
        assert!(e.to_string().contains("no `entities`"), "{e}");
        assert_eq!(e.context_value("field"), Some("entities"));
        for (body, field, says) in [
            (
                r#"{"entities": {}, "features": 3}"#,
                "features",
                "is a number (3)",
            ),
            (
                r#"{"entities": {}, "features": null}"#,
                "features",
                "is null",
            ),
            (
                r#"{"entities": {}, "features": ["v:a", 1]}"#,
                "features",
                "holding a number",
            ),
            (
                r#"{"entities": {}, "feature_service": 7}"#,
                "feature_service",
                "a string",
            ),
            (
                r#"{"entities": [], "features": ["v:a"]}"#,
                "entities",
                "an object of arrays",
            ),
            (
                r#"{"entities": {}, "full_feature_names": "yes"}"#,
                "full_feature_names",
                "true or false",
            ),
            (
                r#"{"entities": {}, "include_feature_view_version_metadata": 1}"#,
                "include_feature_view_version_metadata",
                "true or false",
            ),
            ("[1]", "body", "expected a JSON object"),
            ("not json", "body", "not valid JSON"),
        ] {
            let e = FeatureRequest::from_json(body.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{body}");
            assert_eq!(e.context_value("field"), Some(field), "{body}: {e}");
            assert!(e.to_string().contains(says), "{body}: {e}");
        }

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
