//! A row parsed without copying its text: the strings of a `k8s`-backend object's `spec` borrow
//! from the LIST answer they were read from (an escaped string is the exception), and the columns
//! sit in one sorted vector instead of a map of owned strings. The direct read of the backend
//! parses every object of every table this way (100,000 objects at 100k rows), where building an
//! owned [`Row`](crate::export::Row) per object cost an allocation per column name and value.
//!
//! What is computed from it is the same as from the owned row: [`RowRef::digest`] equals
//! [`row_digest`](crate::export::row_digest) and the primary-key text of
//! [`naming::key_text`](crate::naming::key_text) equals the owned row's (both serialize with
//! serde_json's own serializer, keys sorted, top-level nulls left out; tested over every row of
//! both recordings).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use sha2::{Digest, Sha256};

use crate::export::Hashing;

/// A JSON value whose strings borrow from the parsed text where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<ValueRef<'a>>),
    /// Sorted by key, each key once (the last value of a repeated key, as serde_json's map).
    Object(Vec<(Cow<'a, str>, ValueRef<'a>)>),
}

/// A row: its columns sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowRef<'a> {
    columns: Vec<(Cow<'a, str>, ValueRef<'a>)>,
}

impl<'a> RowRef<'a> {
    /// The value of `column`, if the row has it.
    pub fn get(&self, column: &str) -> Option<&ValueRef<'a>> {
        self.columns
            .binary_search_by(|(k, _)| k.as_ref().cmp(column))
            .ok()
            .map(|i| &self.columns[i].1)
    }

    /// SHA-256 of the row's canonical JSON: the same bytes, so the same digest, as
    /// [`row_digest`](crate::export::row_digest) of the owned row.
    pub fn digest(&self) -> [u8; 32] {
        let mut hashing = Hashing(Sha256::new());
        serde_json::to_writer(&mut hashing, &WithoutNulls(&self.columns)).expect("a JSON map serializes");
        hashing.0.finalize().into()
    }
}

impl ValueRef<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, ValueRef::Null)
    }

    /// As [`scalar_text`](crate::export::scalar_text): a string as it is, anything else as JSON.
    pub fn text(&self) -> String {
        match self {
            ValueRef::String(s) => s.to_string(),
            other => serde_json::to_string(other).expect("a JSON value serializes"),
        }
    }
}

/// Sorts by key and keeps the last value of a repeated key.
fn sorted<'a>(mut entries: Vec<(Cow<'a, str>, ValueRef<'a>)>) -> Vec<(Cow<'a, str>, ValueRef<'a>)> {
    // stable: of equal keys the later stays later, and dedup keeps the first of a run, so
    // reverse first to keep the last value
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, first| later.0 == first.0);
    entries
}

/// A string that borrows from the input when it can.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

struct ValueVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = ValueRef<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<ValueRef<'a>, E> {
        Ok(ValueRef::Null)
    }
    fn visit_none<E>(self) -> Result<ValueRef<'a>, E> {
        Ok(ValueRef::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<ValueRef<'a>, E> {
        Ok(ValueRef::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<ValueRef<'a>, E> {
        Ok(ValueRef::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<ValueRef<'a>, E> {
        Ok(ValueRef::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<ValueRef<'a>, E> {
        // as serde_json's Value: a float that is no JSON number (never parsed from JSON) is null
        Ok(serde_json::Number::from_f64(n).map_or(ValueRef::Null, ValueRef::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<ValueRef<'a>, E> {
        Ok(ValueRef::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<ValueRef<'a>, E> {
        Ok(ValueRef::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<ValueRef<'a>, E> {
        Ok(ValueRef::String(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ValueRef<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(ValueRef::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValueRef<'a>, A::Error> {
        Ok(ValueRef::Object(entries(map)?))
    }
}

fn entries<'de: 'a, 'a, A: MapAccess<'de>>(
    mut map: A,
) -> Result<Vec<(Cow<'a, str>, ValueRef<'a>)>, A::Error> {
    let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
    while let Some(Text(k)) = map.next_key::<Text<'a>>()? {
        entries.push((k, map.next_value()?));
    }
    Ok(sorted(entries))
}

impl<'de: 'a, 'a> Deserialize<'de> for ValueRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RowRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RowRef<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a row (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RowRef<'a>, A::Error> {
                Ok(RowRef {
                    columns: entries(map)?,
                })
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl Serialize for ValueRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ValueRef::Null => s.serialize_unit(),
            ValueRef::Bool(b) => s.serialize_bool(*b),
            ValueRef::Number(n) => n.serialize(s),
            ValueRef::String(t) => s.serialize_str(t),
            ValueRef::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            ValueRef::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

/// A row's columns without the null ones (nested nulls stay, as in `row_digest`).
struct WithoutNulls<'r, 'a>(&'r [(Cow<'a, str>, ValueRef<'a>)]);

impl Serialize for WithoutNulls<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.0.iter().filter(|(_, v)| !v.is_null()) {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::export::{Row, row_digest, scalar_text};

    fn both(text: &str) -> (Row, RowRef<'_>) {
        (
            serde_json::from_str(text).unwrap(),
            serde_json::from_str(text).unwrap(),
        )
    }

    #[test]
    fn digest_and_texts_equal_the_owned_rows() {
        let cases = [
            r#"{"b":1,"a":"x","c":null}"#,
            r#"{"uuid":"0f\"q\\u00e9\n<&>","n":-17,"f":1.5,"big":18446744073709551615,"t":true}"#,
            r#"{"z":[1,null,{"y":2,"x":[]}],"a":{"k":null,"j":"é"}}"#,
            r#"{"dup":1,"dup":2}"#,
            r#"{}"#,
            r#"{"e":1e3,"g":-0.0,"h":0.1}"#,
        ];
        for text in cases {
            let (owned, borrowed) = both(text);
            assert_eq!(borrowed.digest(), row_digest(&owned), "{text}");
            for (k, v) in &owned {
                let got = borrowed.get(k).unwrap_or_else(|| panic!("{k} in {text}"));
                assert_eq!(got.is_null(), v.is_null());
                assert_eq!(got.text(), scalar_text(v), "{k} in {text}");
            }
            assert_eq!(borrowed.columns.len(), owned.len());
        }
    }

    #[test]
    fn strings_without_escapes_borrow() {
        let text = json!({"a": "plain", "b": "esc\"aped"}).to_string();
        let row: RowRef = serde_json::from_str(&text).unwrap();
        assert!(matches!(
            row.get("a"),
            Some(ValueRef::String(Cow::Borrowed("plain")))
        ));
        assert!(matches!(row.get("b"), Some(ValueRef::String(Cow::Owned(_)))));
        assert!(matches!(row.columns[0].0, Cow::Borrowed("a")));
    }

    #[test]
    fn not_an_object_is_an_error() {
        assert!(serde_json::from_str::<RowRef>("[1]").is_err());
        assert!(serde_json::from_str::<RowRef>("\"x\"").is_err());
    }
}
