//! The `Idempotency-Key` header of `POST /api/v1/runs`: a retried request with the same key
//! returns the run the first one started. The type states what a key may be for both the check
//! and the OpenAPI document.

use axum::http::HeaderMap;
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::http::error::{ApiError, ApiResult};

/// The header's name.
pub const HEADER: &str = "idempotency-key";

/// A key: 1 to 200 visible ASCII characters (no spaces), e.g. a UUID or `migrate-2026-11-24`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    const MAX_LEN: usize = 200;
    const PATTERN: &str = "^[!-~]{1,200}$";

    /// The key of a request, if it has one; 400 when the header is not a valid key.
    pub fn from_headers(headers: &HeaderMap) -> ApiResult<Option<IdempotencyKey>> {
        let Some(value) = headers.get(HEADER) else {
            return Ok(None);
        };
        let bytes = value.as_bytes();
        let visible = bytes.iter().all(|b| (b'!'..=b'~').contains(b));
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN || !visible {
            return Err(ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {} visible ASCII characters ({})",
                Self::MAX_LEN,
                Self::PATTERN
            )));
        }
        Ok(Some(IdempotencyKey(String::from_utf8_lossy(bytes).into_owned())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl PartialSchema for IdempotencyKey {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(Self::MAX_LEN))
            .pattern(Some(Self::PATTERN))
            .into()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn key(value: &[u8]) -> ApiResult<Option<IdempotencyKey>> {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_bytes(value).unwrap());
        IdempotencyKey::from_headers(&headers)
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(IdempotencyKey::from_headers(&HeaderMap::new()).unwrap(), None);
        let ok = key(b"migrate-2026-11-24").unwrap().unwrap();
        assert_eq!(ok.into_string(), "migrate-2026-11-24");
        assert!(key(&[b'k'; 200]).unwrap().is_some());
        for bad in [&b""[..], &[b'k'; 201], b"a b", b"caf\xc3\xa9", b"tab\there"] {
            assert!(matches!(key(bad), Err(ApiError::BadRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn the_pattern_says_what_the_check_does() {
        let schema = serde_json::to_value(IdempotencyKey::schema()).unwrap();
        assert_eq!(schema["pattern"], "^[!-~]{1,200}$");
        assert_eq!(schema["maxLength"], 200);
        let pattern_len = IdempotencyKey::PATTERN
            .trim_end_matches("}$")
            .rsplit(',')
            .next()
            .unwrap();
        assert_eq!(pattern_len.parse::<usize>().unwrap(), IdempotencyKey::MAX_LEN);
    }
}
