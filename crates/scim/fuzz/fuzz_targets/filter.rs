//! Feeds arbitrary text to the SCIM filter parser, which reads `filter` query parameters
//! straight from the client, and evaluates every filter it accepts against a stored user.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static USER: LazyLock<Value> = LazyLock::new(scim_fuzz::sample_user);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = scim::parse_filter(text) {
        // The result does not matter. Evaluation must finish without a panic or a stack
        // overflow on any filter that the parser accepted.
        let _ = filter.matches(&USER);
    }
});
