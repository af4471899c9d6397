//! Module details with a just-in-time link, and the learning objects of a module.

use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
};
use serde_json::{Value, json};

use crate::{
    error::ApiError,
    fixtures::ModuleFixture,
    routes::auth::authenticate,
    state::{AppState, Company},
};

/// Module types whose learning objects MindTickle serves; others get 400.
const LEARNING_OBJECT_TYPES: [&str; 3] = ["COURSE", "UPDATE", "ASSESSMENT"];

/// `GET /api/v2/jit/series/{series_id}/entity/{module_id}`: the module as the series list
/// shows it, plus `url`, `tags` and `version`.
pub(crate) async fn module_details(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((series_id, module_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let company = state
        .companies
        .get(&company_id)
        .filter(|c| c.fixture.series.iter().any(|s| s.id == series_id))
        .ok_or_else(|| ApiError::not_found(format!("Series not found: {series_id}")))?;
    let module = company
        .fixture
        .modules
        .iter()
        .find(|m| m.id == module_id && m.series_id == series_id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Module not found: {module_id} in series {series_id}"
            ))
        })?;

    let tags: Vec<Value> = module
        .tags
        .iter()
        .map(|tag| json!({ "tagName": tag }))
        .collect();
    Ok(Json(json!({
        "id": module.id,
        "name": module.name,
        "moduleType": module.module_type,
        "description": module.description,
        "seriesId": module.series_id,
        "url": learner_url(company, module),
        "tags": { "values": tags },
        "version": module.version,
    })))
}

/// Builds the learner link in the pattern live integrations have seen.
// NOTE: the live `url` is a single sign-on link whose query is not public; the emulator
// serves the plain learner URL.
fn learner_url(company: &Company, module: &ModuleFixture) -> String {
    format!(
        "https://{}/new/ui/learner/{}/{}/consume?series={}",
        company.fixture.ls_url,
        module.module_type.to_ascii_lowercase(),
        module.id,
        module.series_id
    )
}

/// `GET /api/v2/entity/{module_id}/learning_objects`: `{learningObjects: [...]}` for COURSE,
/// UPDATE and ASSESSMENT modules, 400 `Module type not supported` for any other type.
pub(crate) async fn learning_objects(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(module_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut state = app.shared.lock();
    let company_id = authenticate(&app, &mut state, &headers, false)?;
    let company = state.companies.get(&company_id);
    let module = company
        .and_then(|c| c.fixture.modules.iter().find(|m| m.id == module_id))
        .ok_or_else(|| ApiError::not_found(format!("Module not found: {module_id}")))?;
    if !LEARNING_OBJECT_TYPES.contains(&module.module_type.as_str()) {
        return Err(ApiError::bad_request("Module type not supported"));
    }
    let ls_url = company.map_or("", |c| c.fixture.ls_url.as_str());
    Ok(Json(
        json!({ "learningObjects": synthesize_learning_objects(ls_url, module) }),
    ))
}

/// Derives learning objects from the module, because fixtures do not list them: one content
/// object for every module, and two multiple-choice questions for an ASSESSMENT.
// NOTE: proposed content; the field names follow what one live integration reads.
fn synthesize_learning_objects(ls_url: &str, module: &ModuleFixture) -> Vec<Value> {
    let content_id = derived_id(&module.id, 0);
    let mut objects = vec![json!({
        "id": content_id,
        "type": "content",
        "media": {
            "id": derived_id(&module.id, 100),
            "type": "DOCUMENT",
            "title": module.name,
            "url": format!("https://{ls_url}/media/{content_id}"),
            "transcription_url": null,
            "htmlsrc": null,
        },
    })];
    if module.module_type == "ASSESSMENT" {
        for number in 1..=2u64 {
            let correct = number % 2;
            let options: Vec<Value> = (0..3u64)
                .map(|order| {
                    json!({
                        "option": order.to_string(),
                        "text": format!("Answer {} to question {number}", order + 1),
                        "isCorrect": order == correct,
                        "order": order,
                    })
                })
                .collect();
            objects.push(json!({
                "id": derived_id(&module.id, number),
                "type": "MULTIPLE_CHOICE",
                "question": format!("Question {number} of {}", module.name),
                "options": options,
                "answer": correct.to_string(),
            }));
        }
    }
    objects
}

/// Derives a stable 19-digit id from a module id and an index, so repeated reads match.
fn derived_id(module_id: &str, index: u64) -> String {
    // 64-bit FNV-1a; any stable hash works since the id only has to be repeatable.
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in module_id.bytes().chain(index.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    (1_000_000_000_000_000_000 + hash % 9_000_000_000_000_000_000).to_string()
}
