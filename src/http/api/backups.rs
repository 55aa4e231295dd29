//! Backups: the list, and the download of one file by its id (never by a path from the
//! request) with `Content-Length`, `Content-Disposition`, an ETag and a `Repr-Digest` (RFC 9530)
//! from its SHA-256, conditional requests and single byte ranges (206, 416).

use std::io::SeekFrom;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Path;
use super::logs::safe_name;
use crate::engine::BackupView;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody, Json};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_backups))
        .routes(routes!(download_backup))
}

/// Every backup the service has made, newest first (the service never deletes one).
#[utoipa::path(
    get,
    path = "/api/v1/backups",
    tag = "backups",
    responses(
        (status = 200, description = "Backups", body = Vec<BackupView>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn list_backups(State(state): State<AppState>) -> ApiResult<Json<Vec<BackupView>>> {
    Ok(Json(
        state
            .engine
            .backups()
            .await?
            .iter()
            .map(BackupView::from)
            .collect(),
    ))
}

/// A byte range of a file of `size` bytes, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// Parses a `Range` header for a file of `size` bytes. `Ok(None)`: serve the whole file (no
/// header, another unit, or several ranges, which RFC 9110 lets a server ignore);
/// `Err`: 416.
pub fn parse_range(value: &str, size: u64) -> Result<Option<ByteRange>, ApiError> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let bad = || ApiError::RangeNotSatisfiable(size);
    let (first, last) = spec.trim().split_once('-').ok_or_else(bad)?;
    let range = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| bad())?;
            if n == 0 || size == 0 {
                return Err(bad());
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }
        }
        (a, b) => {
            let start: u64 = a.parse().map_err(|_| bad())?;
            let end: u64 = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                b.parse().map_err(|_| bad())?
            };
            if start >= size || end < start {
                return Err(bad());
            }
            ByteRange {
                start,
                end: end.min(size - 1),
            }
        }
    };
    Ok(Some(range))
}

/// `sha-256=:<base64>:` from a hex SHA-256.
pub fn repr_digest(sha256_hex: &str) -> Option<String> {
    let raw = hex::decode(sha256_hex).ok()?;
    Some(format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
}

/// Every backup is a `linstor-database` export, a JSON document (validated when it was copied).
const BACKUP_MEDIA_TYPE: &str = "application/json";

/// The body of a backup download, for the OpenAPI document.
pub struct BackupDocument;

impl PartialSchema for BackupDocument {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The linstor-database export (`linstor_version`, `exported_from`, `tables`, ...), byte for byte \
                 as the tool wrote it; its SHA-256 is the ETag",
            ))
            .into()
    }
}

impl ToSchema for BackupDocument {}

fn etag_matches(header_value: Option<&HeaderValue>, etag: &str) -> bool {
    header_value.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
    })
}

/// Downloads a backup file.
#[utoipa::path(
    get,
    path = "/api/v1/backups/{id}",
    tag = "backups",
    params(
        ("id" = String, Path, description = "Backup id"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. bytes=0-1023"),
    ),
    responses(
        (status = 200, description = "The file", content_type = "application/json", body = inline(BackupDocument),
            headers(
                ("ETag" = String, description = "The SHA-256 of the file, quoted"),
                ("Repr-Digest" = String, description = "`sha-256=:<base64>:` (RFC 9530)"),
                ("Content-Disposition" = String, description = "`attachment` with the file name"),
            )),
        (status = 206, description = "One byte range of the file (a part of the JSON document)",
            content(("application/json")),
            headers(("Content-Range" = String, description = "`bytes <first>-<last>/<size>`"))),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such backup", body = ErrorBody),
        (status = 416, description = "Range not satisfiable", body = ErrorBody),
    )
)]
pub async fn download_backup(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (backup, path) = state.engine.backup(&id).await?;
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::error!(backup = %id, path = %path.display(), "backup file is missing");
            return Err(ApiError::NotFound(format!("file of backup {id}")));
        }
        Err(e) => {
            return Err(ApiError::Internal(
                anyhow::Error::new(e).context("failed to open backup file"),
            ));
        }
    };
    let size = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .len();
    let etag = format!("\"{}\"", backup.sha256);
    let mut h = HeaderMap::new();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.into()))?,
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Some(digest) = repr_digest(&backup.sha256).and_then(|d| HeaderValue::from_str(&d).ok()) {
        h.insert("repr-digest", digest);
    }
    if etag_matches(headers.get(header::IF_NONE_MATCH), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    let disposition = format!("attachment; filename=\"{}\"", safe_name(&backup.file_name));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|e| ApiError::Internal(e.into()))?,
    );
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(BACKUP_MEDIA_TYPE));

    // If-Range with another ETag: the client's part is stale, send everything
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if if_range_ok => parse_range(v, size)?,
        _ => None,
    };
    let (status, start, len) = match range {
        Some(r) => {
            let content_range = format!("bytes {}-{}/{size}", r.start, r.end);
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).map_err(|e| ApiError::Internal(e.into()))?,
            );
            (StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1)
        }
        None => (StatusCode::OK, 0, size),
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    let body = Body::from_stream(ReaderStream::new(file.take(len)));
    Ok((status, h, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s| parse_range(s, 100).map_err(|e| e.to_string());
        assert_eq!(r("bytes=0-9").unwrap(), Some(ByteRange { start: 0, end: 9 }));
        assert_eq!(r("bytes=90-").unwrap(), Some(ByteRange { start: 90, end: 99 }));
        assert_eq!(r("bytes=-10").unwrap(), Some(ByteRange { start: 90, end: 99 }));
        assert_eq!(r("bytes=95-200").unwrap(), Some(ByteRange { start: 95, end: 99 }));
        assert_eq!(r("bytes=0-1,5-6").unwrap(), None);
        assert_eq!(r("items=0-1").unwrap(), None);
        for bad in ["bytes=100-", "bytes=5-4", "bytes=x-1", "bytes=-0", "bytes=7"] {
            assert!(r(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_is_base64_of_raw_sha256() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            repr_digest(hex).unwrap(),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
    }
}
