//! Access control in the OpenAPI document: the bearer scheme (and its
//! query and cookie forms), and the `401`/`403`/`429` answers, added to
//! every operation that is not open.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr};

/// Operations anyone may call, with or without access control.
const OPEN: &[&str] = &["/healthz", "/readyz", "/openapi.json"];

/// Operations that count against a per-client limit (`429`).
const LIMITED: &[&str] = &[
    "/topics/{topic}",
    "/topics/{topic}/batch",
    "/topics/{topic}/events",
    "/events",
];

pub struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("a JWT or an API token (hrd_…)")
                    .description(Some(
                        "With access control on (--auth-jwt-secret, --auth-jwt-key or --anonymous)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("access_token"))),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("herald_token"))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if OPEN.contains(&path.as_str()) {
                continue;
            }
            let limited = LIMITED.contains(&path.as_str());
            for op in operations(item) {
                secure(op, limited && is_limited(path, op));
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Of `/topics/{topic}`, only the publish (`POST`) is rate limited.
fn is_limited(path: &str, op: &Operation) -> bool {
    path != "/topics/{topic}" || op.summary.as_deref() == Some("Publish a message")
}

fn secure(op: &mut Operation, limited: bool) {
    // Any one of the three carries the token; the empty requirement says
    // a request may also come without one (`--anonymous`, or no auth).
    op.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("access_token", Vec::<String>::new()),
        SecurityRequirement::new("cookie", Vec::<String>::new()),
        SecurityRequirement::default(),
    ]);
    let answers = &mut op.responses.responses;
    answers.insert(
        "401".into(),
        problem(
            "No valid token (missing, malformed, expired, not yet valid, wrong audience, revoked); `WWW-Authenticate: Bearer`",
            None,
        ),
    );
    answers.insert(
        "403".into(),
        problem(
            "The token is valid but its scopes do not cover this topic, pattern or action (the detail names it)",
            None,
        ),
    );
    if limited {
        answers.insert(
            "429".into(),
            problem(
                "Past --rate-limit-publish or --max-streams-per-client for this token (or address); retry after `Retry-After` seconds",
                Some("Retry-After"),
            ),
        );
    }
}

fn problem(description: &str, header: Option<&str>) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(super::error::PROBLEM_JSON, content);
    if let Some(name) = header {
        response = response.header(
            name,
            HeaderBuilder::new()
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::Integer),
                ))
                .description(Some("Seconds to wait"))
                .build(),
        );
    }
    RefOr::T(response.build())
}
