//! The rows of an export, one at a time, as a stream: the delta import writes the rows that
//! differ without ever holding the export (or more than one row) in memory.

use std::fmt;
use std::io::Read;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::export::Row;

/// Calls `each(table, row)` for every row of the export in `reader`, in file order; an error
/// from `each` stops the reading and is returned.
pub fn for_each_row<R: Read>(
    reader: R,
    each: &mut dyn FnMut(&str, Row) -> Result<(), String>,
) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader));
    let mut failure = None;
    let result = Document {
        each,
        failure: &mut failure,
    }
    .deserialize(&mut de);
    if let Some(f) = failure {
        return Err(f);
    }
    result.map_err(|e| format!("the export cannot be read: {e}"))
}

/// The callback's own error, kept apart from parse errors.
type Failure<'a> = &'a mut Option<String>;

struct Document<'a, 'f> {
    each: &'a mut dyn FnMut(&str, Row) -> Result<(), String>,
    failure: Failure<'f>,
}

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an export object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "tables" {
                map.next_value_seed(Tables {
                    each: &mut *self.each,
                    failure: &mut *self.failure,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Tables<'a, 'f> {
    each: &'a mut dyn FnMut(&str, Row) -> Result<(), String>,
    failure: Failure<'f>,
}

impl<'de> DeserializeSeed<'de> for Tables<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Tables<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of tables")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Table {
                each: &mut *self.each,
                failure: &mut *self.failure,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct Table<'a, 'f> {
    each: &'a mut dyn FnMut(&str, Row) -> Result<(), String>,
    failure: Failure<'f>,
}

impl<'de> DeserializeSeed<'de> for Table<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Table<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // the tool writes `name` before `data`; a table whose data comes first cannot be named
        let mut name: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => name = Some(map.next_value()?),
                "data" => {
                    let table = name
                        .clone()
                        .ok_or_else(|| de::Error::custom("a table's data comes before its name"))?;
                    map.next_value_seed(Rows {
                        table: &table,
                        each: &mut *self.each,
                        failure: &mut *self.failure,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Rows<'a, 'f> {
    table: &'a str,
    each: &'a mut dyn FnMut(&str, Row) -> Result<(), String>,
    failure: Failure<'f>,
}

impl<'de> DeserializeSeed<'de> for Rows<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<Row>()? {
            if let Err(e) = (self.each)(self.table, row) {
                *self.failure = Some(e.clone());
                return Err(de::Error::custom(e));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"linstor_version":"1.33.3","tables":[
        {"name":"NODES","column_description":[],"data":[{"node_name":"A"},{"node_name":"B"}]},
        {"name":"EMPTY","column_description":[],"data":[]},
        {"name":"FILES","column_description":[],"data":[{"path":"/x"}]}],"exported_from":"etcd"}"#;

    #[test]
    fn every_row_comes_once_in_file_order_with_its_table() {
        let mut seen = Vec::new();
        for_each_row(DOC.as_bytes(), &mut |table, row| {
            seen.push(format!("{table}:{}", row.values().next().unwrap()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["NODES:\"A\"", "NODES:\"B\"", "FILES:\"/x\""]);
    }

    #[test]
    fn the_callbacks_error_stops_the_reading_and_is_returned_as_it_is() {
        let mut n = 0;
        let err = for_each_row(DOC.as_bytes(), &mut |_, _| {
            n += 1;
            Err("the cluster refused".into())
        })
        .unwrap_err();
        assert_eq!(err, "the cluster refused");
        assert_eq!(n, 1);
        assert!(for_each_row(&b"{\"tables\": [{\"name\": 1"[..], &mut |_, _| Ok(())).is_err());
    }
}
