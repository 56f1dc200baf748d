//! The API's one error type and the extractors that turn bad requests into it.
//!
//! Every failure answers `{"error": "...", "code": n}`. Bad input gets a 4xx naming what is
//! wrong; a failure of the hub itself gets a 500 whose cause is logged but not returned,
//! because store and driver messages may reveal internals and help no caller.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An API failure: a status code and a message for the caller.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What the caller is told.
    pub message: String,
    /// Seconds for a `Retry-After` header (429s).
    pub retry_after: Option<u64>,
    /// Also answer the CPA's error field, `message` (its two routes: a CPA client reads it).
    pub cpa: bool,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for humans.
    pub error: String,
    /// The same text under the CPA's name, on the CPA's two routes (`…/metrics`, `…/evaluation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP status code, repeated for clients that only keep the body.
    pub code: u16,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None, cpa: false }
    }

    /// The same error in the CPA's shape as well: `{"error", "message", "code"}`.
    pub fn cpa(mut self) -> Self {
        self.cpa = true;
        self
    }

    /// The same error, telling the caller when to retry.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 422: well-formed, but the values do not make sense together.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 500: logs `cause` and tells the caller only that the hub failed.
    pub fn internal(what: &str, cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, source = ?cause.source(), "{what}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error while trying to {what}; see the hub's log"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.cpa.then(|| self.message.clone());
        let body = ErrorBody { error: self.message, message, code: self.status.as_u16() };
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scalehub\""));
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<scalehub_store::StoreError> for ApiError {
    fn from(e: scalehub_store::StoreError) -> Self {
        match e {
            scalehub_store::StoreError::BadCursor => {
                Self::bad_request("invalid pagination cursor: pass back nextCursor unchanged, with the same sort")
            }
            scalehub_store::StoreError::InvalidOverride(why) => Self::unprocessable(format!("invalid override: {why}")),
            scalehub_store::StoreError::Closed => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down")
            }
            other => Self::internal("access the database", &other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let message = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "expected a request with Content-Type: application/json".to_owned()
            }
            _ => r.body_text(),
        };
        Self::new(r.status(), message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request(r.body_text())
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s (400 syntax, 413 size, 415 type, 422 shape).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// `axum::extract::Query` whose rejections are 400 [`ApiError`]s.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// `axum::extract::Path` whose rejections are 400 [`ApiError`]s.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The JSON 404 for paths under `/api/v1` that name no endpoint.
pub async fn no_such_endpoint() -> ApiError {
    ApiError::not_found("no such API endpoint")
}

/// The JSON 405 for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint")
}
