//! The committed OpenAPI document is the one the code generates, and the
//! running server serves it, with its docs page, without the internet.

use herald::http::openapi::ApiDoc;

const COMMITTED: &str = include_str!("../openapi/openapi.json");

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = ApiDoc::pretty_json();
    assert!(
        generated == COMMITTED,
        "openapi/openapi.json is out of date: regenerate it with\n\n    cargo run -- openapi --write openapi/openapi.json\n"
    );
}

#[test]
fn the_document_is_openapi_3_1_and_documents_every_route() {
    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/topics/{topic}", &["post", "get"][..]),
        ("/topics/{topic}/events", &["get"]),
        ("/events", &["get"]),
        ("/topics/{topic}/messages", &["get"]),
        ("/topics", &["get"]),
        ("/topics/{topic}/presence", &["get"]),
        ("/ws", &["get"]),
        ("/subscriptions", &["post", "get"]),
        ("/subscriptions/{id}", &["get", "patch", "delete"]),
        ("/dead-letters", &["get"]),
        ("/dead-letters/{id}", &["get", "delete"]),
        ("/dead-letters/{id}/redrive", &["post"]),
        ("/dead-letters/redrive", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/openapi.json", &["get"]),
    ] {
        for m in methods {
            let op = &paths[path][*m];
            assert!(op.is_object(), "{m} {path} is not documented");
            assert!(op["summary"].is_string(), "{m} {path} has no summary");
            let responses = op["responses"].as_object().unwrap();
            // Every operation that can fail says how, with the Problem schema.
            if path != "/healthz" && path != "/openapi.json" {
                // 431 comes from hyper itself, before the router, with no body.
                let problem = responses
                    .iter()
                    .filter(|(s, _)| (s.starts_with('4') || s.starts_with('5')) && *s != "431")
                    .all(|(_, r)| {
                        r["content"]["application/problem+json"]["schema"]["$ref"]
                            == "#/components/schemas/Problem"
                    });
                assert!(
                    problem
                        && responses
                            .keys()
                            .any(|s| s.starts_with('4') || s.starts_with('5')),
                    "{m} {path}"
                );
            }
        }
    }
    for sse in ["/topics/{topic}/events", "/events"] {
        assert!(paths[sse]["get"]["responses"]["200"]["content"]["text/event-stream"].is_object());
    }
}

/// OpenAPI requires operation ids to be unique: code generators (the client
/// libraries' among them) key operations by them.
#[test]
fn every_operation_id_is_unique() {
    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    let mut seen = std::collections::HashMap::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .expect("every operation has an id");
            if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id:?} is used by {other} and by {method} {path}");
            }
        }
    }
}

/// A seek's `to` is `"earliest"`, `"head"` or a message id, not an object.
#[test]
fn the_seek_target_is_a_point_or_an_id() {
    let doc: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["SeekRequest"]["properties"]["to"]["$ref"],
        "#/components/schemas/SeekTarget"
    );
    let to = format!("{} {}", schemas["SeekTarget"], schemas["SeekPoint"]);
    assert!(
        to.contains("earliest") && to.contains("head") && to.contains("integer"),
        "{to}"
    );
}
