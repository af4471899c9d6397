//! Feeds arbitrary JSON to the PATCH parser and engine in the order `PATCH /Users/{id}` uses.
//! It parses the PatchOp, applies it to a stored user and validates the result as a whole User.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scim::{Meta, PatchRequest, UserResource, apply_patch};
use serde_json::Value;

static USER: LazyLock<Value> = LazyLock::new(scim_fuzz::sample_user);

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(request) = PatchRequest::from_json(&body) else {
        return;
    };
    let Ok(patched) = apply_patch(&USER, &request) else {
        return;
    };
    let Ok(resource) = UserResource::from_json(&patched) else {
        return;
    };

    // The service stores `to_json` of the validated resource and validates it again on every
    // read and on the next PATCH, so a stored user must parse back to the same resource.
    let meta = Meta {
        resource_type: "User".into(),
        created: Default::default(),
        last_modified: Default::default(),
        location: String::new(),
        version: String::new(),
    };
    let mut stored = resource.to_json("", &meta);
    if let Some(object) = stored.as_object_mut() {
        object.remove("id");
        object.remove("meta");
    }
    let reread = UserResource::from_json(&stored).unwrap_or_else(|error| {
        panic!("stored form of a valid user failed validation: {error}; stored: {stored}")
    });
    let without_password = UserResource {
        password: None,
        ..resource
    };
    assert!(
        reread == without_password,
        "stored form reads back differently: {stored}"
    );
});
