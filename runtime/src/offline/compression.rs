//! The Parquet compression of a table's new data files, as its Iceberg properties ask.
//!
//! Iceberg names it in the table's properties, which any Iceberg tool can set (Spark's
//! `ALTER TABLE ... SET TBLPROPERTIES`, PyIceberg, `OfflineStore::set_table_properties`):
//! `write.parquet.compression-codec` and `write.parquet.compression-level`. This writer
//! supports `zstd` (levels 1-22, default 1), `snappy` (faster to write and read, larger files)
//! and `uncompressed`; a table asking for another codec fails the job before anything is
//! written, naming the property.
//!
//! A table that names no codec is written with zstd, Iceberg's default, and so is every table
//! skewless creates (ingested sources) but the feature tables, which `apply` creates asking for
//! snappy ([`FEATURE_TABLE_CODEC`]).

use std::collections::HashMap;

use parquet::basic::{Compression, ZstdLevel};

use super::TableName;
use crate::error::{Error, ErrorKind, Result};

/// The property naming the codec.
pub(crate) const CODEC: &str = "write.parquet.compression-codec";
/// The codec of a table whose properties name none, and the one new tables are created with
/// unless they ask for another (Iceberg's default too).
pub(super) const DEFAULT_CODEC: &str = "zstd";
/// The codec feature tables are created with. A feature table is derived data, written by
/// every materialization and read whole by training jobs, so speed weighs more than size:
/// with zstd, compressing (and the contexts the Parquet writer makes for each column chunk)
/// took a quarter of a materialization's CPU time. Snappy materializes the numeric example
/// with 12-25% less CPU for 17% larger files (28% on string columns), and reads faster too
/// (`benches/README.md`, "Feature tables in snappy"). A table set to
/// zstd (`write.parquet.compression-codec`, by any Iceberg tool) is written with zstd from
/// then on.
pub(crate) const FEATURE_TABLE_CODEC: &str = "snappy";
/// The property holding the codec's level.
const LEVEL: &str = "write.parquet.compression-level";

/// The compression `properties` ask for.
pub(super) fn from_properties(
    table: &TableName,
    properties: &HashMap<String, String>,
) -> Result<Compression> {
    let invalid = |message: String| {
        Err(Error::new(ErrorKind::InvalidInput, message).with_context("table", table))
    };
    let codec = properties.get(CODEC).map_or(DEFAULT_CODEC, String::as_str);
    let level = match properties.get(LEVEL) {
        None => None,
        Some(text) => match text.trim().parse::<i32>() {
            Ok(level) => Some(level),
            Err(_) => {
                return invalid(format!(
                    "the table property {LEVEL} is `{text}`; expected an integer"
                ));
            }
        },
    };
    match codec.to_ascii_lowercase().as_str() {
        "zstd" => match ZstdLevel::try_new(level.unwrap_or(1)) {
            Ok(level) => Ok(Compression::ZSTD(level)),
            Err(_) => invalid(format!(
                "the table property {LEVEL} is {}; zstd takes a level from 1 to 22",
                level.unwrap_or(1)
            )),
        },
        "snappy" => Ok(Compression::SNAPPY),
        "uncompressed" | "none" => Ok(Compression::UNCOMPRESSED),
        other => invalid(format!(
            "the table property {CODEC} asks for `{other}`, which this writer does not \
             support; use zstd (the default; level with {LEVEL}), snappy or uncompressed"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compression(pairs: &[(&str, &str)]) -> Result<Compression> {
        let properties = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_properties(&TableName::parse("features.t").unwrap(), &properties)
    }

    #[test]
    fn the_table_properties_choose_the_codec_and_its_level() {
        let zstd = |level| Compression::ZSTD(ZstdLevel::try_new(level).unwrap());
        assert_eq!(compression(&[]).unwrap(), zstd(1));
        assert_eq!(
            compression(&[(CODEC, "ZSTD"), (LEVEL, "9")]).unwrap(),
            zstd(9)
        );
        assert_eq!(
            compression(&[(CODEC, "snappy")]).unwrap(),
            Compression::SNAPPY
        );
        assert_eq!(
            compression(&[(CODEC, "uncompressed")]).unwrap(),
            Compression::UNCOMPRESSED
        );
    }

    #[test]
    fn an_unsupported_codec_or_level_names_the_property_and_what_is_supported() {
        let err = compression(&[(CODEC, "brotli")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("asks for `brotli`"), "{err}");
        assert!(err.message().contains("zstd"), "{err}");
        assert_eq!(err.context_value("table"), Some("features.t"));
        let err = compression(&[(LEVEL, "30")]).unwrap_err();
        assert!(err.message().contains("from 1 to 22"), "{err}");
        let err = compression(&[(LEVEL, "fast")]).unwrap_err();
        assert!(err.message().contains("expected an integer"), "{err}");
    }
}
