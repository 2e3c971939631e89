//! Value types that have no exact Rust standard-library counterpart.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// An instant as microseconds since the Unix epoch, UTC: the WIT `timestamp` type (Arrow
/// `Timestamp(Microsecond, UTC)`). Negative values are instants before 1970.
///
/// ```
/// use skewless_guest::Timestamp;
///
/// let t = Timestamp::from_secs(1_700_000_000);
/// assert_eq!(t.micros(), 1_700_000_000_000_000);
/// assert_eq!(Timestamp::from_micros(-1).secs(), -1); // floors, even before 1970
/// assert_eq!(Timestamp::from_micros(-1).subsec_micros(), 999_999);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Microseconds in a second.
    pub const MICROS_PER_SECOND: i64 = 1_000_000;
    /// Microseconds in a day (86 400 s; UTC timestamps ignore leap seconds).
    pub const MICROS_PER_DAY: i64 = 86_400 * Self::MICROS_PER_SECOND;
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Self = Self(0);

    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// The instant `millis` milliseconds after the Unix epoch (saturating).
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(1_000))
    }

    /// The instant `secs` seconds after the Unix epoch (saturating).
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(Self::MICROS_PER_SECOND))
    }

    /// Microseconds since the Unix epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded towards negative infinity.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(Self::MICROS_PER_SECOND)
    }

    /// Microseconds past [`secs`](Self::secs): always in `0..1_000_000`.
    pub const fn subsec_micros(self) -> i64 {
        self.0.rem_euclid(Self::MICROS_PER_SECOND)
    }

    /// Whole days since 1970-01-01, rounded towards negative infinity.
    pub const fn days(self) -> i64 {
        self.0.div_euclid(Self::MICROS_PER_DAY)
    }

    /// Microseconds since midnight UTC of [`days`](Self::days): always in
    /// `0..MICROS_PER_DAY`.
    pub const fn micros_of_day(self) -> i64 {
        self.0.rem_euclid(Self::MICROS_PER_DAY)
    }
}

impl From<i64> for Timestamp {
    fn from(micros: i64) -> Self {
        Self(micros)
    }
}

impl From<Timestamp> for i64 {
    fn from(timestamp: Timestamp) -> Self {
        timestamp.0
    }
}

/// A fixed-size float32 vector (an embedding) of dimension `N`: the WIT
/// `float32-vector(N)` type (Arrow `FixedSizeList<Float32>(N)`).
///
/// A row field of type `Vector<N>` or `[f32; N]` declares a column of dimension `N`; the
/// dimension is checked when the batch is read. `Vector<N>` dereferences to `[f32; N]`.
///
/// ```
/// use skewless_guest::Vector;
///
/// let v = Vector([3.0, 4.0]);
/// let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
/// assert_eq!(norm, 5.0);
/// ```
#[derive(Clone, Copy, PartialEq)]
pub struct Vector<const N: usize>(pub [f32; N]);

impl<const N: usize> Vector<N> {
    /// The dimension, `N`.
    pub const DIMENSION: usize = N;

    /// The components as a slice.
    pub const fn as_slice(&self) -> &[f32] {
        &self.0
    }
}

impl<const N: usize> Default for Vector<N> {
    fn default() -> Self {
        Self([0.0; N])
    }
}

impl<const N: usize> fmt::Debug for Vector<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Vector").field(&self.0.as_slice()).finish()
    }
}

impl<const N: usize> Deref for Vector<N> {
    type Target = [f32; N];

    fn deref(&self) -> &[f32; N] {
        &self.0
    }
}

impl<const N: usize> DerefMut for Vector<N> {
    fn deref_mut(&mut self) -> &mut [f32; N] {
        &mut self.0
    }
}

impl<const N: usize> From<[f32; N]> for Vector<N> {
    fn from(values: [f32; N]) -> Self {
        Self(values)
    }
}

impl<const N: usize> From<Vector<N>> for [f32; N] {
    fn from(vector: Vector<N>) -> Self {
        vector.0
    }
}
