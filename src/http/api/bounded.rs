//! Whole numbers with a range, for query parameters and headers. One type states the range for
//! both sides of the contract: deserialization refuses a number outside it (a 400), and the
//! OpenAPI document shows it as `minimum`/`maximum` (use it with `inline`, as each range is its
//! own schema).

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

/// An `i64` in `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: i64, const MAX: i64>(i64);

/// A sequence number: any `i64` from 0.
pub type Seq = Bounded<0, { i64::MAX }>;

impl<const MIN: i64, const MAX: i64> Bounded<MIN, MAX> {
    /// `n` when it lies in the range; otherwise what is wrong with it.
    pub fn new(n: i64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(format!("{n} is not in {MIN}..={MAX}"))
        }
    }

    /// Parses a header value or other text: digits with an optional sign, nothing else.
    pub fn parse(s: &str) -> Result<Self, String> {
        let n = s
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is not a whole number in {MIN}..={MAX}"))?;
        Self::new(n)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl<const MIN: i64, const MAX: i64> fmt::Display for Bounded<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        Self::new(n).map_err(D::Error::custom)
    }
}

impl<const MIN: i64, const MAX: i64> PartialSchema for Bounded<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(MIN))
            .maximum(Some(MAX))
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Limit = Bounded<1, 1000>;

    #[test]
    fn the_range_is_checked_in_both_directions() {
        assert_eq!(Limit::new(1).unwrap().get(), 1);
        assert_eq!(Limit::new(1000).unwrap().get(), 1000);
        assert!(Limit::new(0).is_err());
        assert!(Limit::new(1001).is_err());
        assert_eq!(Limit::parse("7").unwrap().get(), 7);
        for bad in ["", "x", "1.0", "-1", "9223372036854775808", " 7"] {
            assert!(Limit::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Seq::parse("9223372036854775807").unwrap().get(), i64::MAX);
        assert!(Seq::parse("-9223372036854775808").is_err());
    }

    #[test]
    fn query_strings_deserialize_within_the_range_only() {
        #[derive(Deserialize)]
        struct Q {
            limit: Limit,
        }
        let q: Q = serde_urlencoded::from_str("limit=5").unwrap();
        assert_eq!(q.limit.get(), 5);
        for bad in ["limit=0", "limit=1001", "limit=abc", "limit=9223372036854775808"] {
            assert!(serde_urlencoded::from_str::<Q>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_schema_states_the_range() {
        let schema = serde_json::to_value(Limit::schema()).unwrap();
        assert_eq!(schema["type"], "integer");
        assert_eq!(schema["minimum"], 1);
        assert_eq!(schema["maximum"], 1000);
    }
}
