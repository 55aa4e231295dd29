//! The extractor for every state-changing form: it rejects cross-site posts and checks the
//! session's CSRF token before the handler sees the fields.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::PageError;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::ApiError;

/// A urlencoded form whose `csrf` field matched the caller's session.
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = req
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)?;
        let cross_site =
            req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site");
        if cross_site {
            return Err(ApiError::Forbidden("cross-site form posts are not accepted".into()).into());
        }
        let urlencoded = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !urlencoded {
            return Err(ApiError::UnsupportedMediaType("expected a urlencoded form".into()).into());
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        // a bearer token cannot be sent by another site's form; a cookie can
        if let Some(session) = &caller.session {
            let CsrfField { csrf } =
                serde_urlencoded::from_bytes(&body).unwrap_or(CsrfField { csrf: String::new() });
            if !session.csrf_matches(&csrf) {
                return Err(ApiError::Forbidden(
                    "the form's security token is missing or expired: reload the page and try again".into(),
                )
                .into());
            }
        }
        let fields =
            serde_urlencoded::from_bytes(&body).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        Ok(CsrfForm(fields))
    }
}
