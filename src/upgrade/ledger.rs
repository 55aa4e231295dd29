//! The record of every v1 value the mapping looked at: converted, equal to v2's default, or not
//! converted, with the words from the catalogue. Whatever the mapping does not recognise is
//! recorded as not converted, so that no value goes missing without a line on the page.

use serde_json::Value;

use super::catalogue::{Handling, Kind, rule};
use super::{FieldOutcome, Outcome};

/// Longest value shown (a sidecar's spec can be long; the v1 resource backup has it whole).
const MAX_VALUE: usize = 2000;

#[derive(Debug, Default)]
pub(super) struct Ledger {
    fields: Vec<FieldOutcome>,
}

/// `lvmPools[3].name` -> `lvmPools[].name`: the catalogue's form of a path.
pub(super) fn rule_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

fn show(value: &Value) -> String {
    let text = match value {
        // a URL may carry a password (dbConnectionURL of an SQL database)
        Value::String(s) => crate::linstor::toml::redact_url(s),
        other => other.to_string(),
    };
    if text.chars().count() <= MAX_VALUE {
        return text;
    }
    let cut: String = text.chars().take(MAX_VALUE).collect();
    format!("{cut}…")
}

impl Ledger {
    fn push(&mut self, kind: Kind, name: &str, path: &str, value: &Value, outcome: Outcome, detail: String) {
        self.fields.push(FieldOutcome {
            resource: format!("{} {name}", kind.name()),
            field: path.to_string(),
            value: show(value),
            outcome,
            detail,
        });
    }

    /// The catalogue's words for `path` (a field the catalogue lacks is a bug the field tests catch).
    fn words(kind: Kind, path: &str) -> Option<Handling> {
        rule(kind, &rule_path(path)).map(|r| r.handling)
    }

    /// Carried into v2 where the catalogue says.
    pub fn converted(&mut self, kind: Kind, name: &str, path: &str, value: &Value) {
        let detail = match Self::words(kind, path) {
            Some(Handling::Converted(to)) | Some(Handling::NotConverted(to)) => to.to_string(),
            None => String::new(),
        };
        self.push(kind, name, path, value, Outcome::Converted, detail);
    }

    /// Carried into v2, said in other words than the catalogue's.
    pub fn converted_as(&mut self, kind: Kind, name: &str, path: &str, value: &Value, detail: String) {
        self.push(kind, name, path, value, Outcome::Converted, detail);
    }

    /// Nothing to carry: v2 does the same by default.
    pub fn v2_default(&mut self, kind: Kind, name: &str, path: &str, value: &Value, why: &str) {
        self.push(kind, name, path, value, Outcome::V2Default, why.to_string());
    }

    /// Not converted: the catalogue says what to do.
    pub fn not_converted(&mut self, kind: Kind, name: &str, path: &str, value: &Value) {
        let detail = match Self::words(kind, path) {
            Some(Handling::NotConverted(what)) | Some(Handling::Converted(what)) => what.to_string(),
            None => "not a field of the Piraeus v1.10.8 schema: check by hand what it did".to_string(),
        };
        self.push(kind, name, path, value, Outcome::NotConverted, detail);
    }

    /// Not converted, for a reason of this value.
    pub fn not_converted_because(&mut self, kind: Kind, name: &str, path: &str, value: &Value, why: String) {
        self.push(kind, name, path, value, Outcome::NotConverted, why);
    }

    /// Everything recorded so far.
    pub fn fields(&self) -> &[FieldOutcome] {
        &self.fields
    }

    pub fn into_fields(self) -> Vec<FieldOutcome> {
        self.fields
    }
}
