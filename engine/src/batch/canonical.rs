//! NaN canonicalization at the output boundary.
//!
//! WebAssembly float arithmetic is bit-exact on every machine except for the payload and
//! sign of a NaN, which the hardware chooses. Canonicalizing NaNs inside every float
//! instruction (Cranelift's `nan_canonicalization`) was measured to cost +22-85% on
//! float-heavy guests. Canonicalizing the transform's *outputs* instead costs one pass over
//! each float column and gives the guarantee that matters: the bytes a transform hands to
//! the stores are identical everywhere. A guest that inspects NaN bits itself could still
//! diverge; `EngineBuilder::canonicalize_nans_in_guest` closes that gap at the measured cost.

/// The canonical 64-bit NaN: quiet, positive, zero payload.
pub(crate) const CANONICAL_NAN_F64: u64 = 0x7ff8_0000_0000_0000;
/// The canonical 32-bit NaN: quiet, positive, zero payload.
pub(crate) const CANONICAL_NAN_F32: u32 = 0x7fc0_0000;

pub(crate) fn canonicalize_f64(values: &mut [f64]) {
    for v in values.iter_mut() {
        if v.is_nan() {
            *v = f64::from_bits(CANONICAL_NAN_F64);
        }
    }
}

pub(crate) fn canonicalize_f32(values: &mut [f32]) {
    for v in values.iter_mut() {
        if v.is_nan() {
            *v = f32::from_bits(CANONICAL_NAN_F32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nan_becomes_the_canonical_bit_pattern_and_other_values_are_untouched() {
        let mut v = [
            f64::from_bits(0xfff8_0000_0000_0001),
            f64::from_bits(0x7ff0_0000_0000_0001),
            -0.0,
            f64::INFINITY,
            1.5,
        ];
        canonicalize_f64(&mut v);
        assert_eq!(v[0].to_bits(), CANONICAL_NAN_F64);
        assert_eq!(v[1].to_bits(), CANONICAL_NAN_F64);
        assert_eq!(v[2].to_bits(), (-0.0f64).to_bits());
        assert_eq!(v[3], f64::INFINITY);
        assert_eq!(v[4], 1.5);

        let mut w = [f32::from_bits(0xffc0_0001), 2.0];
        canonicalize_f32(&mut w);
        assert_eq!(w[0].to_bits(), CANONICAL_NAN_F32);
        assert_eq!(w[1], 2.0);
    }
}
