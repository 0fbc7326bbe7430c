//! The answers of herald's request guards, added to every operation they
//! apply to in the OpenAPI document (rather than to each handler's
//! annotation): `421` for a `Host` herald does not answer to
//! ([`super::hosts`]), `403` for a cross-site state change ([`super::cross_site`]),
//! and, where a request has a body, `413` for a `Content-Length` over the
//! route's limit ([`super::body_limits`]) and `408` for a body that stops
//! arriving ([`super::front_door::body_timeout`]). An answer an operation
//! already documents gets the guard's case added to its description.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::Ref;
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};

/// `modifiers(&GuardAnswers)` of [`super::openapi::ApiDoc`].
pub struct GuardAnswers;

const CROSS_SITE: &str = "Cross-site request refused: the request carries an `Origin` that is neither herald's own nor allowed by --cors-origins";
const TOO_LARGE: &str = "Content-Length announces a body over the route's limit (--max-message-bytes, or --batch-max-bytes for batches); refused before the body is read";
const UNKNOWN_HOST: &str = "The request's Host is not one herald answers to (--allowed-hosts; on loopback, loopback names only); refused before it runs";
const BODY_TIMEOUT: &str = "No part of the request body arrived for --http-body-timeout (default 30s); the connection is closed";

impl utoipa::Modify for GuardAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let reads = [&mut item.get].into_iter().map(|op| (op, false));
            let changes = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .map(|op| (op, true));
            for (op, changes_state) in reads.chain(changes) {
                let Some(op) = op else { continue };
                add(op, "421", UNKNOWN_HOST);
                if changes_state {
                    add(op, "403", CROSS_SITE);
                }
                if changes_state && op.request_body.is_some() {
                    add(op, "408", BODY_TIMEOUT);
                    add(op, "413", TOO_LARGE);
                }
            }
        }
    }
}

/// Adds a problem+json answer, or the case to the one documented.
fn add(op: &mut Operation, status: &str, description: &str) {
    match op.responses.responses.get_mut(status) {
        Some(RefOr::T(existing)) if !existing.description.contains(description) => {
            existing.description = format!("{}. Also: {description}", existing.description);
        }
        Some(_) => {}
        None => {
            let problem = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", problem)
                .build();
            op.responses
                .responses
                .insert(status.to_owned(), RefOr::T(response));
        }
    }
}
