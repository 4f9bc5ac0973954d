//! The OpenAPI document of the read API, served at `/api/v1/openapi.json` and made from
//! the handlers' own annotations and the answer types, so it cannot drift from the code.
//! The agents' probing endpoints are left out: they are for `edgewatch agent`
//! (docs/probing.md); their path-tracing calls are in (tag `agents`, agent token).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{agent_traces, graph, health, route_api};

/// Every error answer's body.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and what to change.
    pub error: String,
}

/// The error answers every endpoint may give (a description for the document: the
/// answers themselves are made by `ApiError`).
#[allow(dead_code)]
#[derive(Debug, utoipa::IntoResponses)]
pub enum Errors {
    /// A parameter is malformed; the message names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// A read token is configured and the request has none, or another.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// No such node, host or data center.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The database cannot be reached just now; retry later.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "edgewatch",
        description = "The service-dependency graph: who talks to whom, who cannot reach whom, since when. \
                       Timestamps are UTC, RFC 3339. Every `at` parameter asks about the graph as it was then.",
    ),
    paths(
        graph::nodes,
        graph::edges,
        graph::broken,
        graph::deps,
        graph::dependents,
        graph::blast,
        graph::spof,
        graph::path,
        graph::history_edges,
        graph::diff,
        graph::incidents,
        route_api::show,
        route_api::diff,
        route_api::changes,
        health::healthz,
        health::readyz,
        agent_traces::claim,
        agent_traces::runs,
    ),
    components(schemas(ErrorBody)),
    modifiers(&ReadToken),
    security((), ("read_token" = [])),
    tags(
        (name = "graph", description = "Nodes, edges and what is broken"),
        (name = "topology", description = "Dependency questions on a snapshot of the graph"),
        (name = "history", description = "The graph as it was, and what changed"),
        (name = "routes", description = "Path history between host pairs: hops, windows compared, route changes"),
        (name = "health", description = "Liveness and readiness of the server"),
        (name = "agents", description = "Agents' path tracing (docs/paths.md, \"What is traced\"); agent tokens"),
    )
)]
pub struct ApiDoc;

/// The optional read token (`[api] read_token` in the config file).
#[derive(Debug)]
struct ReadToken;

impl Modify for ReadToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "read_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The token `edgewatch agent-token create NODE` makes.
        components.add_security_scheme(
            "agent_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/v1/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
