//! `POST/GET /tokens`, `DELETE /tokens/{id}`: API tokens (admin only).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{ApiId, ApiJson, QueryPairs};
use super::json::Json;
use crate::auth::Caller;
use crate::auth::api_token::{self, IssueError, TokenSpec};
use crate::domain::Timestamp;
use crate::storage::tokens::StoredToken;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": "billing", "publish": ["orders.**"], "subscribe": ["orders.**", "users.{sub}.**"], "expires": "90d"}))]
pub struct CreateToken {
    /// Who holds it: fills `{sub}` in its patterns, and names it in logs.
    #[schema(max_length = 256)]
    pub subject: Option<String>,
    /// Topic patterns it may publish to (`*` one level, `**` the rest,
    /// `{sub}` its subject).
    #[serde(default)]
    pub publish: Vec<String>,
    /// Topic patterns it may read (streams, history, webhooks).
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Admins may do everything, including managing tokens.
    #[serde(default)]
    pub admin: bool,
    /// A duration from now (`"90d"`) or an RFC 3339 time; never when absent.
    pub expires: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: i64,
    /// The token: shown only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub subject: Option<String>,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    pub admin: bool,
    pub created: String,
    pub expires: Option<String>,
}

/// While access control is off every caller is an admin: tokens made then
/// would outlive the open phase as admin tokens nobody chose. They come
/// from `herald token create` then.
fn require_access_control(state: &AppState) -> Result<(), ApiError> {
    if state.auth.enabled() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "access-control-off",
        "Access control is off",
        "API tokens are managed here only while access control is on (--auth-jwt-secret, --auth-jwt-key or --anonymous); use `herald token create` to make the first one",
    ))
}

fn view(t: StoredToken, token: Option<String>) -> TokenView {
    let list = |s: &str| serde_json::from_str(s).unwrap_or_default();
    TokenView {
        id: t.id,
        token,
        subject: (!t.subject.is_empty()).then_some(t.subject),
        publish: list(&t.publish),
        subscribe: list(&t.subscribe),
        admin: t.admin,
        created: Timestamp(t.created_us).to_rfc3339(),
        expires: t.expires_us.map(|us| Timestamp(us).to_rfc3339()),
    }
}

#[utoipa::path(
    post, path = "/tokens", operation_id = "create_token", tag = "access", summary = "Create an API token (admin)",
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created; `token` is shown only here", body = TokenView),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "The body is too large", content_type = "application/problem+json", body = Problem),
        (status = 415, description = "The body is not JSON", content_type = "application/problem+json", body = Problem),
        (status = 409, description = "Access control is off: tokens are managed with `herald token` then", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    caller.require_admin("creating tokens")?;
    require_access_control(&state)?;
    let invalid = |d: String| ApiError::bad_request("invalid-token-spec", "Invalid token", d);
    let expires = body
        .expires
        .as_deref()
        .map(api_token::parse_expiry)
        .transpose()
        .map_err(invalid)?;
    let spec = TokenSpec {
        subject: body.subject,
        publish: body.publish,
        subscribe: body.subscribe,
        admin: body.admin,
        expires,
    };
    let (id, token) = api_token::issue(state.store.as_ref(), spec)
        .await
        .map_err(|e| match e {
            IssueError::Invalid(d) => invalid(d),
            IssueError::Store(e) => e.into(),
        })?;
    let stored = state
        .store
        .token(id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(view(stored, Some(token)))))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<i64>,
}

#[utoipa::path(
    get, path = "/tokens", operation_id = "list_tokens", tag = "access", summary = "List API tokens that are not revoked (admin)",
    params(
        ("after" = Option<i64>, Query, description = "Only ids above this (the `next` of the previous page)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "A page, by id; without the tokens themselves", body = TokenPage),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 409, description = "Access control is off: tokens are managed with `herald token` then", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryPairs,
) -> Result<Json<TokenPage>, ApiError> {
    caller.require_admin("listing tokens")?;
    require_access_control(&state)?;
    let limit = query.number("limit", 1, 1000)?.unwrap_or(100);
    let after = query.after_id("token")?;
    let tokens = state.store.tokens(after, limit).await?;
    let next = (tokens.len() == limit as usize)
        .then(|| tokens.last().map(|t| t.id))
        .flatten();
    Ok(Json(TokenPage {
        tokens: tokens.into_iter().map(|t| view(t, None)).collect(),
        next,
    }))
}

/// Revokes the token: refused from then on, and its open streams end on
/// every node within `--auth-revocation-poll`.
#[utoipa::path(
    delete, path = "/tokens/{id}", tag = "access", summary = "Revoke an API token (admin)",
    params(("id" = i64, Path, description = "Token id", minimum = 1)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Invalid input (the detail says what)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such token, or revoked already", content_type = "application/problem+json", body = Problem),
        (status = 409, description = "Access control is off: tokens are managed with `herald token` then", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", content_type = "application/problem+json", body = Problem, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiId(id): ApiId,
) -> Result<StatusCode, ApiError> {
    caller.require_admin("revoking tokens")?;
    require_access_control(&state)?;
    if !state.store.revoke_token(id, Timestamp::now()).await? {
        return Err(ApiError::not_found(format!("no token {id}")));
    }
    state.auth.revoked_here(id);
    Ok(StatusCode::NO_CONTENT)
}
