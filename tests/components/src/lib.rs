//! Paths of the guest components that tests and benchmarks run.
//!
//! The build script builds every example transform (`examples/*`) and test fixture
//! (`tests/guests/*`) for `wasm32-wasip2` with one nested
//! `cargo build --profile guest --target wasm32-wasip2 -p ...` in `target/guests`, then
//! writes one constant per component holding the absolute path of its `.wasm` file, plus
//! [`ALL`]. A test names a component by constant instead of hard-coding `target/...`, and the
//! components are rebuilt whenever the WIT, the guest SDK or a guest changes:
//!
//! ```no_run
//! let bytes = std::fs::read(skewless_test_components::TRANSACTION_FEATURES)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! | Constant | Crate | What it is |
//! |---|---|---|
//! | [`TRANSACTION_FEATURES`] | `examples/transaction-features` | per-row numeric features |
//! | [`MERCHANT_CATEGORY`] | `examples/merchant-category` | columnar string features |
//! | [`TIME_FEATURES`] | `examples/time-features` | per-row calendar features |
//! | [`REQUEST_AMOUNT_RATIO`] | `examples/request-amount-ratio` | per-row request-time features |
//! | [`ORDER_FEATURES`] | `examples/order-features` | per-row, exact arithmetic; the reference of the other languages |
//! | [`ECHO_GUEST`] | `tests/guests/echo` | copies one nullable column of every type |
//! | [`HOSTILE_GUEST`] | `tests/guests/hostile` | misbehaves as its `mode` column says |
//! | [`WRONG_WORLD_GUEST`] | `tests/guests/wrong-world` | a component of another WIT world |

include!(concat!(env!("OUT_DIR"), "/components.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    /// `\0asm`, then the component-model version and layer: 0x0d 0x00, 0x01 0x00.
    const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    #[test]
    fn every_component_is_built_as_a_component() {
        assert_eq!(ALL.len(), 8);
        for (name, path) in ALL {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
            assert!(
                bytes.starts_with(&COMPONENT_HEADER),
                "{name}: {path} does not start with the component header, but {:02x?}",
                &bytes[..bytes.len().min(8)]
            );
        }
    }

    /// A cheap guard against a component that lost its exports (a guest built without
    /// `export_transform!`): the transform components name the WIT package and both exports.
    #[test]
    fn transform_components_name_their_world_and_exports() {
        let contains =
            |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        for (name, path) in ALL.iter().filter(|(name, _)| *name != "wrong-world-guest") {
            let bytes = std::fs::read(path).unwrap();
            for needle in [
                &b"skewless:transform/types@0.1.0"[..],
                b"describe",
                b"transform",
            ] {
                assert!(
                    contains(&bytes, needle),
                    "{name}: {path} does not mention {:?}",
                    String::from_utf8_lossy(needle)
                );
            }
        }
        let wrong = std::fs::read(WRONG_WORLD_GUEST).unwrap();
        assert!(!contains(&wrong, b"skewless:transform"));
    }

    #[test]
    fn constants_are_listed_in_all() {
        for path in [
            TRANSACTION_FEATURES,
            MERCHANT_CATEGORY,
            TIME_FEATURES,
            REQUEST_AMOUNT_RATIO,
            ECHO_GUEST,
            HOSTILE_GUEST,
            WRONG_WORLD_GUEST,
        ] {
            assert!(
                ALL.iter().any(|(_, p)| *p == path),
                "{path} missing from ALL"
            );
        }
    }
}
