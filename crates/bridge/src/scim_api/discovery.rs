//! Service provider discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and
//! `/Schemas`. They advertise exactly what this service implements, because clients and test
//! suites build their requests from them.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use scim::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, ScimError, USER_SCHEMA};
use serde_json::{Value, json};

use super::respond::{base_url, scim_response};
use super::users::MAX_PAGE_SIZE;
use super::{ScimApiError, ScimCaller};
use crate::app::AppState;

const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

fn tenant_base(headers: &HeaderMap, caller: &ScimCaller) -> String {
    format!("{}/scim/v2/{}", base_url(headers), caller.tenant)
}

pub async fn service_provider_config(
    caller: ScimCaller,
    headers: HeaderMap,
) -> Result<Response, ScimApiError> {
    let base = tenant_base(&headers, &caller);
    let body = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "documentationUri": "https://github.com/enablement-bridge/enablement-bridge#readme",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_PAGE_SIZE },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A per-tenant SCIM token created with `enablement-bridge scim-token create`.",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        }
    });
    Ok(scim_response(StatusCode::OK, &body))
}

fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A person provisioned by the tenant's identity provider",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{ "schema": ENTERPRISE_USER_SCHEMA, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") }
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A team of users",
            "schema": GROUP_SCHEMA,
            "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") }
        }),
    ]
}

pub async fn list_resource_types(
    caller: ScimCaller,
    headers: HeaderMap,
) -> Result<Response, ScimApiError> {
    let resources = resource_types(&tenant_base(&headers, &caller));
    let total = resources.len();
    Ok(scim_response(
        StatusCode::OK,
        &scim::list_response(resources, total, 1),
    ))
}

pub async fn get_resource_type(
    caller: ScimCaller,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ScimApiError> {
    resource_types(&tenant_base(&headers, &caller))
        .into_iter()
        .find(|resource| resource["id"] == id.as_str())
        .map(|resource| scim_response(StatusCode::OK, &resource))
        .ok_or_else(|| ScimError::not_found(format!("ResourceType {id} not found")).into())
}

/// One attribute definition (RFC 7643 §7).
struct Attribute {
    name: &'static str,
    kind: &'static str,
    multi_valued: bool,
    required: bool,
    case_exact: bool,
    mutability: &'static str,
    returned: &'static str,
    uniqueness: &'static str,
    sub_attributes: Vec<Attribute>,
    canonical_values: &'static [&'static str],
    reference_types: &'static [&'static str],
}

fn attribute(name: &'static str, kind: &'static str) -> Attribute {
    Attribute {
        name,
        kind,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: "readWrite",
        returned: "default",
        uniqueness: "none",
        sub_attributes: Vec::new(),
        canonical_values: &[],
        reference_types: &[],
    }
}

fn string(name: &'static str) -> Attribute {
    attribute(name, "string")
}

impl Attribute {
    fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    fn mutability(mut self, mutability: &'static str) -> Self {
        self.mutability = mutability;
        self
    }
    fn returned(mut self, returned: &'static str) -> Self {
        self.returned = returned;
        self
    }
    fn unique(mut self, uniqueness: &'static str) -> Self {
        self.uniqueness = uniqueness;
        self
    }
    fn sub(mut self, sub_attributes: Vec<Attribute>) -> Self {
        self.sub_attributes = sub_attributes;
        self
    }
    fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    fn references(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }

    fn to_json(&self) -> Value {
        let mut value = json!({
            "name": self.name,
            "type": self.kind,
            "multiValued": self.multi_valued,
            "description": self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        });
        if !self.sub_attributes.is_empty() {
            value["subAttributes"] =
                Value::Array(self.sub_attributes.iter().map(Attribute::to_json).collect());
        }
        if !self.canonical_values.is_empty() {
            value["canonicalValues"] = json!(self.canonical_values);
        }
        if !self.reference_types.is_empty() {
            value["referenceTypes"] = json!(self.reference_types);
        }
        value
    }
}

/// The sub-attributes of `emails`, `phoneNumbers` and `roles`.
fn multi_value(types: &'static [&'static str]) -> Vec<Attribute> {
    vec![
        string("value"),
        string("display"),
        string("type").canonical(types),
        attribute("primary", "boolean"),
    ]
}

fn user_attributes() -> Vec<Attribute> {
    vec![
        string("userName").required().unique("server"),
        attribute("name", "complex").sub(vec![
            string("formatted"),
            string("familyName"),
            string("givenName"),
            string("middleName"),
            string("honorificPrefix"),
            string("honorificSuffix"),
        ]),
        string("displayName"),
        string("nickName"),
        attribute("profileUrl", "reference").references(&["external"]),
        string("title"),
        string("userType"),
        string("preferredLanguage"),
        string("locale"),
        string("timezone"),
        attribute("active", "boolean"),
        string("password")
            .mutability("writeOnly")
            .returned("never")
            .case_exact(),
        attribute("emails", "complex")
            .multi()
            .sub(multi_value(&["work", "home", "other"])),
        attribute("phoneNumbers", "complex")
            .multi()
            .sub(multi_value(&[
                "work", "home", "mobile", "fax", "pager", "other",
            ])),
        attribute("roles", "complex").multi().sub(multi_value(&[])),
    ]
}

fn enterprise_attributes() -> Vec<Attribute> {
    vec![
        string("employeeNumber"),
        string("costCenter"),
        string("organization"),
        string("division"),
        string("department"),
        attribute("manager", "complex").sub(vec![
            attribute("value", "string").case_exact(),
            attribute("$ref", "reference").references(&["User"]),
            string("displayName").mutability("readOnly"),
        ]),
    ]
}

fn group_attributes() -> Vec<Attribute> {
    vec![
        string("displayName").required().unique("server"),
        attribute("members", "complex").multi().sub(vec![
            string("value").mutability("immutable").case_exact(),
            attribute("$ref", "reference")
                .references(&["User"])
                .mutability("immutable"),
            // Derived from the member's own name, so what a client sends is not kept.
            string("display").mutability("readOnly"),
            string("type").canonical(&["User"]).mutability("immutable"),
        ]),
    ]
}

fn schemas(base: &str) -> Vec<Value> {
    let schema = |id: &str, name: &str, description: &str, attributes: Vec<Attribute>| {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attributes.iter().map(Attribute::to_json).collect::<Vec<_>>(),
            "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") }
        })
    };
    vec![
        schema(USER_SCHEMA, "User", "User account", user_attributes()),
        schema(
            ENTERPRISE_USER_SCHEMA,
            "EnterpriseUser",
            "Enterprise User",
            enterprise_attributes(),
        ),
        schema(GROUP_SCHEMA, "Group", "Group", group_attributes()),
    ]
}

pub async fn list_schemas(
    caller: ScimCaller,
    headers: HeaderMap,
) -> Result<Response, ScimApiError> {
    let resources = schemas(&tenant_base(&headers, &caller));
    let total = resources.len();
    Ok(scim_response(
        StatusCode::OK,
        &scim::list_response(resources, total, 1),
    ))
}

pub async fn get_schema(
    caller: ScimCaller,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ScimApiError> {
    schemas(&tenant_base(&headers, &caller))
        .into_iter()
        .find(|schema| schema["id"] == id.as_str())
        .map(|schema| scim_response(StatusCode::OK, &schema))
        .ok_or_else(|| ScimError::not_found(format!("Schema {id} not found")).into())
}

/// Discovery endpoints are read-only: writes get 405 in the SCIM error schema.
pub async fn read_only(_state: State<AppState>) -> ScimApiError {
    ScimApiError::Scim(ScimError::new(
        405,
        None,
        "discovery endpoints are read-only; use GET",
    ))
}

/// Any other path under a tenant's SCIM root: 404 in the SCIM error schema, so clients parse it.
pub async fn unknown_endpoint(_state: State<AppState>, uri: axum::http::Uri) -> ScimApiError {
    ScimApiError::Scim(ScimError::not_found(format!(
        "no SCIM endpoint at {}",
        uri.path()
    )))
}
