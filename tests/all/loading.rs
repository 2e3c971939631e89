//! Loading: digests, signatures, and the compiled cache.

use skewless_runtime::DataType;
use skewless_tests::{components, engine, load};

#[test]
fn the_digest_is_the_sha256_of_the_file() {
    let cache = tempfile::tempdir().unwrap();
    let transform = load(&engine(&cache), components::TRANSACTION_FEATURES);
    let bytes = std::fs::read(components::TRANSACTION_FEATURES).unwrap();
    let expected = format!("sha256:{}", sha256_hex(&bytes));
    assert_eq!(transform.digest(), expected);
}

fn sha256_hex(bytes: &[u8]) -> String {
    // Shell out to the system's sha256sum: an independent implementation of the digest.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.wasm");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn the_signature_is_read_from_the_component() {
    let cache = tempfile::tempdir().unwrap();
    let transform = load(&engine(&cache), components::ECHO_GUEST);
    let s = transform.signature();
    let types: Vec<DataType> = s.inputs.iter().map(|f| f.data_type).collect();
    assert_eq!(
        types,
        [
            DataType::Boolean,
            DataType::Int32,
            DataType::Int64,
            DataType::Float32,
            DataType::Float64,
            DataType::Utf8,
            DataType::Binary,
            DataType::Timestamp,
            DataType::Float32Vector(4),
        ]
    );
    assert_eq!(s.inputs, s.outputs);
}

#[test]
fn a_second_load_maps_the_cached_artifact_instead_of_compiling() {
    let cache = tempfile::tempdir().unwrap();
    let first = load(&engine(&cache), components::MERCHANT_CATEGORY);
    assert!(!first.loaded_from_cache());
    let entries = walk(cache.path());
    assert_eq!(entries.len(), 1, "one artifact: {entries:?}");
    assert!(entries[0].ends_with(&format!("{}.cwasm", &first.digest()["sha256:".len()..])));

    // A new engine (a new process, in effect) over the same cache directory.
    let second = load(&engine(&cache), components::MERCHANT_CATEGORY);
    assert!(second.loaded_from_cache());
    assert_eq!(second.digest(), first.digest());
    assert_eq!(second.signature(), first.signature());
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let first = load(&engine(&cache), components::TIME_FEATURES);
    let entry = walk(cache.path()).pop().unwrap();
    std::fs::write(&entry, b"garbage").unwrap();
    let again = load(&engine(&cache), components::TIME_FEATURES);
    assert!(!again.loaded_from_cache());
    assert_eq!(again.digest(), first.digest());
    assert!(load(&engine(&cache), components::TIME_FEATURES).loaded_from_cache());
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path.display().to_string());
        }
    }
    files
}
