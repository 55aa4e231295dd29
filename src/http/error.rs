//! The one error type of the HTTP layer. Every failure becomes `{"error": "..."}` with the right
//! status; server-side failures are logged with the request id and shown only as
//! "internal error" plus that id, never with their internals.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::observe::current_request_id;
use crate::cluster::ClusterError;
use crate::engine::EngineError;

/// What the API and the pages can answer with instead of a result.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (unparseable JSON, a bad query parameter or header).
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// The request names a host this server does not answer for (421 Misdirected Request).
    #[error("{0}")]
    Misdirected(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The action does not fit the current state (or another run holds the controller).
    #[error("{message}")]
    Conflict { message: String, run_id: Option<String> },
    #[error("request body is too large")]
    PayloadTooLarge,
    /// The request body did not arrive in time (`HttpSettings::body_timeout`).
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// Too many failed authentication attempts; carries the wait for `Retry-After`.
    #[error("too many failed authentication attempts; retry in {} s", super::auth::limiter::retry_after_secs(*.0))]
    TooManyRequests(std::time::Duration),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but invalid input.
    #[error("{0}")]
    Unprocessable(String),
    /// A byte range outside the file; carries the file size for `Content-Range`.
    #[error("range not satisfiable")]
    RangeNotSatisfiable(u64),
    /// The Kubernetes API refused or failed a request.
    #[error("{0}")]
    Cluster(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The JSON body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// The run that holds the controller or that the conflicting request refers to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Quote this when reporting a server error; it is in the server's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Cluster(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body shown to the client; logs server errors.
    pub fn body(&self) -> ErrorBody {
        let status = self.status();
        let request_id = status.is_server_error().then(current_request_id).flatten();
        let error = match self {
            ApiError::Internal(e) => {
                tracing::error!(
                    request_id = request_id.as_deref(),
                    error = format!("{e:#}"),
                    "internal error"
                );
                "internal error".to_string()
            }
            other => {
                if status.is_server_error() {
                    tracing::warn!(
                        request_id = request_id.as_deref(),
                        status = status.as_u16(),
                        "{other}"
                    );
                }
                other.to_string()
            }
        };
        let run_id = match self {
            ApiError::Conflict { run_id, .. } => run_id.clone(),
            _ => None,
        };
        ErrorBody {
            error,
            run_id,
            request_id,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status(), axum::Json(self.body())).into_response();
        match self {
            ApiError::Unauthorized => {
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests(wait) => {
                let secs = super::auth::limiter::retry_after_secs(wait);
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            ApiError::RangeNotSatisfiable(size) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    res.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        res
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(what) => ApiError::NotFound(what),
            EngineError::Conflict { message, run_id } => ApiError::Conflict { message, run_id },
            EngineError::Invalid(message) => ApiError::Unprocessable(message),
            EngineError::Cluster(e) => e.into(),
            EngineError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        match e {
            // a free-form API failure may carry addresses and payloads: keep it in the log
            ClusterError::Api(detail) => {
                tracing::warn!(
                    request_id = current_request_id().as_deref(),
                    "Kubernetes API error: {detail}"
                );
                ApiError::Cluster("the Kubernetes API request failed".into())
            }
            other => ApiError::Cluster(format!("the Kubernetes API refused the request: {other}")),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::BadRequest(format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => ApiError::Unprocessable(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            JsonRejection::BytesRejection(e) if body_timed_out(&e) => ApiError::RequestTimeout,
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

/// Whether a body failed because its deadline passed (tower-http's `TimeoutError` somewhere in
/// the chain of causes).
fn body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// `axum::Json` whose rejections use [`ErrorBody`].
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
