//! The admin REST API under `/api/v1/rooms`: list rooms and participants, kick, end a room, set metadata.
//! Every call needs `Authorization: Bearer <[auth] admin_token>`; with no token configured it is off.

use axum::{
    Json, Router,
    extract::{Path, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use convene_conference::RoomSnapshot;
use serde::Serialize;

use crate::room::{AdminError, Rooms};

#[derive(Clone)]
struct Admin {
    rooms: Rooms,
    token: String,
}

/// Errors as the admin API shows them: a status and `{"code", "message"}`.
#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    Disabled,
    NotFound(&'static str),
    Invalid {
        code: String,
        message: String,
    },
    /// The request is fine but the server cannot do it (e.g. no recorder).
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized".to_owned(),
                "missing or wrong bearer token".to_owned(),
            ),
            Self::Disabled => (
                StatusCode::NOT_FOUND,
                "not_found".to_owned(),
                "the admin API is disabled ([auth] admin_token is empty)".to_owned(),
            ),
            Self::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found".to_owned(),
                format!("no such {what}"),
            ),
            Self::Invalid { code, message } => (StatusCode::BAD_REQUEST, code, message),
            Self::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable".to_owned(),
                message,
            ),
        };
        let mut response = (
            status,
            Json(serde_json::json!({"code": code, "message": message})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NoRoom => Self::NotFound("room"),
            AdminError::NoParticipant => Self::NotFound("participant"),
            AdminError::Metadata(e) => Self::Invalid {
                code: serde_json::to_value(e.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                message: e.message,
            },
        }
    }
}

/// The admin routes. `admin_token` empty: every route answers 404.
pub fn router(rooms: Rooms, admin_token: &str) -> Router {
    let state = Admin {
        rooms,
        token: admin_token.to_owned(),
    };
    Router::new()
        .route("/api/v1/rooms", get(list))
        .route("/api/v1/rooms/{room}", get(show).delete(end))
        .route("/api/v1/rooms/{room}/participants/{id}", delete(kick))
        .route("/api/v1/rooms/{room}/metadata/{key}", put(set_metadata))
        .route(
            "/api/v1/rooms/{room}/recording",
            post(start_recording).delete(stop_recording),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

async fn authorize(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    if admin.token.is_empty() {
        return ApiError::Disabled.into_response();
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time, so the token cannot be guessed byte by byte from response times.
    if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), admin.token.as_bytes())
        .is_err()
    {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// Room names in admin URLs are compared like the ones participants use.
fn canonical(rooms: &Rooms, room: &str) -> Result<String, ApiError> {
    convene_conference::canonical_room_name(room, rooms.config().room_name_max_len)
        .map_err(|_| ApiError::NotFound("room"))
}

#[derive(Serialize)]
struct RoomList {
    rooms: Vec<RoomSnapshot>,
}

async fn list(State(admin): State<Admin>) -> Json<RoomList> {
    Json(RoomList {
        rooms: admin.rooms.list().await,
    })
}

async fn show(
    State(admin): State<Admin>,
    Path(room): Path<String>,
) -> Result<Json<RoomSnapshot>, ApiError> {
    let room = canonical(&admin.rooms, &room)?;
    Ok(Json(admin.rooms.snapshot(&room).await?))
}

async fn end(State(admin): State<Admin>, Path(room): Path<String>) -> Result<StatusCode, ApiError> {
    let room = canonical(&admin.rooms, &room)?;
    admin.rooms.end(&room).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kick(
    State(admin): State<Admin>,
    Path((room, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = canonical(&admin.rooms, &room)?;
    admin.rooms.kick(&room, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_metadata(
    State(admin): State<Admin>,
    Path((room, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let room = canonical(&admin.rooms, &room)?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::Invalid {
            code: "bad_json".into(),
            message: format!("the body must be a JSON value: {e}"),
        })?;
    admin.rooms.set_metadata(&room, key, value).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn start_recording(
    State(admin): State<Admin>,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    recording(&admin, &room, true).await
}

async fn stop_recording(
    State(admin): State<Admin>,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    recording(&admin, &room, false).await
}

async fn recording(admin: &Admin, room: &str, start: bool) -> Result<StatusCode, ApiError> {
    let room = canonical(&admin.rooms, room)?;
    match admin.rooms.recording(&room, start).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(message) => Err(ApiError::Unavailable(message)),
    }
}
