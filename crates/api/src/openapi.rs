use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Writ API",
        description = "Electronic-warrant lifecycle for law-enforcement agencies. Every error is \
                       RFC 9457 application/problem+json.",
        license(name = "Apache-2.0")
    ),
    paths(crate::routes::health::healthz, crate::routes::health::readyz),
    components(schemas(crate::error::Problem)),
    tags((name = "operations", description = "Health and readiness"))
)]
pub struct ApiDoc;

/// The OpenAPI document as served and as committed to openapi/openapi.json.
pub fn document_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into());
    json.push('\n');
    json
}
